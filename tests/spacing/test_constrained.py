import pytest
import torch
from transformers import LogitsProcessorList

from hf_seq.models.seq2seq_rnn import Seq2SeqRNNConfig, Seq2SeqRNNForConditionalGeneration
from hf_seq.spacing import SpacingLogitsProcessor, characters_with_spaces


SPACE, EOS, START, PAD = 4, 3, 2, 0


def random_model(attention="general", input_feeding=True):
    torch.manual_seed(0)
    config = Seq2SeqRNNConfig(
        vocab_size=20,
        embedding_size=8,
        hidden_size=16,
        encoder_layers=1,
        decoder_layers=1,
        attention=attention,
        input_feeding=input_feeding,
        pad_token_id=PAD,
        bos_token_id=START,
        eos_token_id=EOS,
        decoder_start_token_id=START,
    )
    return Seq2SeqRNNForConditionalGeneration(config).eval()


def test_processor_allows_only_the_next_character_or_a_space():
    processor = SpacingLogitsProcessor([[7, 8, 9]], space_token_id=SPACE, eos_token_id=EOS)
    scores = torch.zeros(1, 20)
    allowed = lambda written: set(  # noqa: E731
        torch.nonzero(processor(torch.tensor([[START, *written]]), scores) > -1e30)[:, 1].tolist()
    )
    assert allowed([]) == {7}  # no space before the first character
    assert allowed([7]) == {8, SPACE}
    assert allowed([7, SPACE]) == {8}  # never two spaces in a row
    assert allowed([7, 8, 9]) == {EOS}  # no space after the last character


def test_processor_refuses_a_source_holding_the_space_token():
    with pytest.raises(ValueError, match="without spaces"):
        SpacingLogitsProcessor([[7, SPACE]], space_token_id=SPACE, eos_token_id=EOS)


@pytest.mark.parametrize("num_beams", [1, 3])
@pytest.mark.parametrize("attention,input_feeding", [("general", True), ("none", False), ("concat", True)])
def test_an_untrained_decoder_only_copies_the_source(num_beams, attention, input_feeding):
    model = random_model(attention, input_feeding)
    sources = [[5, 6, 7, 8, 9, 10], [11, 12], [13]]
    input_ids = torch.tensor([source + [PAD] * (6 - len(source)) for source in sources])
    attention_mask = (input_ids != PAD).long()
    processor = SpacingLogitsProcessor(sources, space_token_id=SPACE, eos_token_id=EOS, num_beams=num_beams)
    generated = model.generate(
        input_ids,
        attention_mask=attention_mask,
        max_new_tokens=13,
        num_beams=num_beams,
        do_sample=False,
        logits_processor=LogitsProcessorList([processor]),
    )
    for source, row in zip(sources, generated[:, 1:].tolist()):
        row = row[: row.index(EOS)] if EOS in row else row
        assert [token for token in row if token != SPACE] == source


def test_unconstrained_decoder_of_a_random_model_does_change_characters():
    # What the processor prevents: without it, an untrained decoder writes other ids than the source's.
    model = random_model()
    source = [5, 6, 7, 8, 9, 10]
    generated = model.generate(torch.tensor([source]), max_new_tokens=13, do_sample=False)
    written = [token for token in generated[0, 1:].tolist() if token not in (SPACE, EOS, PAD)]
    assert written != source


def test_characters_with_spaces_rebuilds_from_the_source_characters():
    assert characters_with_spaces("가나다", [7, SPACE, 8, 9, EOS], SPACE, EOS) == "가 나다"
    assert characters_with_spaces("가나다", [7, SPACE], SPACE, EOS) == "가 나다"  # cut short: the rest unspaced
