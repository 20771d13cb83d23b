"""`restore_spacing`: put the spaces back into texts with a spacing tagger or a seq2seq spacing model.

Whatever the model, the characters never change: each text's whitespace is removed, the model decides after which
characters a space goes, and the output is built from the input's own characters. So, for every text,
`remove_spaces(output) == remove_spaces(text)` (with the seq2seq model this needs `constrained=True`, the default).
"""

import copy
import os
from dataclasses import dataclass, replace

import torch
from transformers import AutoModelForSeq2SeqLM, AutoModelForTokenClassification, LogitsProcessorList

from ..quantization import quantize_dynamic_int8
from ..training.common import load_tokenizer
from .constrained import SpacingLogitsProcessor, characters_with_spaces
from .data import normalize_spacing, remove_spaces, spaced_text
from .tagger import CharacterIds


# The token a seq2seq spacing model writes for a space: the word-boundary marker of tokenizer_training's tokenizers.
SPACE_TOKEN = "▁"
# How a tagger's probabilities become spaces: each gap on its own (a space where it is the likelier label), or per
# text, the spaces that maximise the text's expected space F1 (`expected_f1_spaces`).
DECISIONS = ("argmax", "expected_f1")


@dataclass
class SpacingModel:
    """A loaded spacing model: the network, its tokenizer, and whether it is a seq2seq model or a tagger."""

    model: torch.nn.Module
    tokenizer: object
    is_seq2seq: bool

    def __post_init__(self):
        self.character_ids = CharacterIds(self.tokenizer)  # built once: the vocabulary lookup of every call

    @property
    def space_token_id(self) -> int:
        return space_token_id(self.tokenizer)


def space_token_id(tokenizer) -> int:
    """The id of the space token (`▁`) of a character tokenizer; an error naming the fix when it has none."""
    token_id = tokenizer.get_vocab().get(SPACE_TOKEN)
    if token_id is None:
        raise ValueError(
            f"the tokenizer has no {SPACE_TOKEN!r} token for spaces: train it with tokenizer_training (algorithm "
            "'char'), whose tokenizers mark word starts with it"
        )
    return token_id


def load_spacing_model(
    model: "str | os.PathLike | SpacingModel", trust_remote_code: bool = False, int8: bool = False
) -> SpacingModel:
    """A `SpacingModel` from a folder saved by the spacing trainers (weights, config and tokenizer), or as is.

    With `int8`, its recurrent and linear layers are quantised to dynamic int8 (`hf_seq.quantization`) for the CPU;
    a `SpacingModel` passed in is copied first, never changed.
    """
    if isinstance(model, SpacingModel):
        return replace(model, model=quantize_dynamic_int8(copy.deepcopy(model.model))) if int8 else model
    folder = os.fspath(model)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"model folder not found: {folder} (give a folder saved by the spacing trainers)")
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"{folder} holds no config.json: give the folder a spacing model was saved to")
    from transformers import AutoConfig

    import hf_seq  # noqa: F401  (registers hf-seq's model families with the Auto classes)

    config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
    auto_class = AutoModelForSeq2SeqLM if is_seq2seq else AutoModelForTokenClassification
    if not is_seq2seq and getattr(config, "num_labels", None) != 2:
        raise ValueError(f"{folder} is not a spacing tagger: it has {config.num_labels} labels, a tagger has 2")
    network = auto_class.from_pretrained(folder, trust_remote_code=trust_remote_code).eval()
    if int8:
        network = quantize_dynamic_int8(network)
    tokenizer = load_tokenizer(folder, trust_remote_code=trust_remote_code)
    return SpacingModel(model=network, tokenizer=tokenizer, is_seq2seq=is_seq2seq)


def restore_spacing(
    texts,
    model: "str | os.PathLike | SpacingModel",
    batch_size: int = 64,
    num_beams: int = 1,
    constrained: bool = True,
    show_progress: bool = False,
    int8: bool = False,
    decision: str = "argmax",
):
    """Texts with their spaces restored (a list for a list, a string for a string).

    Args:
        texts: a string or a list of strings; whitespace already in them is removed and decided again.
        model: a folder saved by `train_spacing_tagger` / `train_spacing_seq2seq`, or a loaded `SpacingModel`.
        batch_size: texts per forward pass (they are sorted by length first, so batches carry little padding).
        num_beams: seq2seq only: beam search width (1: greedy).
        constrained: seq2seq only: allow the decoder only the next source character or a space (always True for
            the guarantee above; False measures what the decoder writes on its own).
        show_progress: a progress bar over the batches, on stderr.
        int8: run the model quantised to dynamic int8 on the CPU (about twice as fast for the taggers of
            docs/spacing.md, at the same F1). To restore many calls' worth, quantise once:
            `load_spacing_model(folder, int8=True)`, and pass that.
        decision: taggers only: "argmax" (a space where the tagger finds it likelier than none) or "expected_f1"
            (per text, the spaces that maximise its expected space F1 under the tagger's probabilities: more
            spaces where the tagger is unsure).
    """
    single, texts = isinstance(texts, str), _checked_texts(texts)
    _check_batch_size(batch_size)
    if decision not in DECISIONS:
        raise ValueError(f"unknown decision {decision!r}: choose one of {', '.join(DECISIONS)}")
    spacing_model = load_spacing_model(model, int8=int8)
    if spacing_model.is_seq2seq and decision != "argmax":
        raise ValueError(f"decision={decision!r} is for taggers: a seq2seq model decides as it decodes; leave it out")
    characters = [remove_spaces(text) for text in texts]
    batches = _length_sorted_batches(characters, batch_size)
    if show_progress:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="Restoring spaces", unit="batch")
    restored = [""] * len(texts)
    for batch in batches:
        batch_characters = [characters[index] for index in batch]
        if spacing_model.is_seq2seq:
            outputs = _restore_with_seq2seq(spacing_model, batch_characters, num_beams, constrained)
        else:
            outputs = _restore_with_tagger(spacing_model, batch_characters, decision)
        for index, output in zip(batch, outputs):
            restored[index] = output
    return restored[0] if single else restored


def space_probabilities(texts, model: "str | os.PathLike | SpacingModel", batch_size: int = 64, int8: bool = False):
    """Per text, a tagger's probability of a space after each of its characters (a list of floats for a string,
    a list of such lists for a list of strings).

    Whitespace already in a text is removed first, so the i-th value is the gap after the i-th character of
    `remove_spaces(text)`; the last value is the tagger's own too, though `restore_spacing` never puts a space
    there. `restore_spacing(..., decision="argmax")` spaces exactly the gaps whose probability is above 0.5.

    Args:
        texts: a string or a list of strings.
        model: a folder saved by `train_spacing_tagger`, or a loaded `SpacingModel` of a tagger.
        batch_size: texts per forward pass (sorted by length first, as in `restore_spacing`).
        int8: run the tagger quantised to dynamic int8 on the CPU.
    """
    single, texts = isinstance(texts, str), _checked_texts(texts)
    _check_batch_size(batch_size)
    spacing_model = load_spacing_model(model, int8=int8)
    if spacing_model.is_seq2seq:
        raise ValueError("space_probabilities needs a spacing tagger: a seq2seq model gives no probability per gap")
    characters = [remove_spaces(text) for text in texts]
    probabilities = [[] for _ in texts]
    for batch in _length_sorted_batches(characters, batch_size):
        batch_characters = [characters[index] for index in batch]
        logits, _ = _tagger_logits(spacing_model, batch_characters)
        rows = logits.float().softmax(dim=-1)[..., 1].tolist()
        for index, text, row in zip(batch, batch_characters, rows):
            probabilities[index] = row[: len(text)]
    return probabilities[0] if single else probabilities


def _checked_texts(texts) -> list[str]:
    """`texts` as a list (a string becomes a list of one); an error naming the first item that is no string."""
    texts = [texts] if isinstance(texts, str) else list(texts)
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__}, not a string: give texts as strings")
    return texts


def _check_batch_size(batch_size) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def _length_sorted_batches(characters: list[str], batch_size: int) -> list[list[int]]:
    """The indices of the texts, sorted by length and cut into batches (so batches carry little padding)."""
    order = sorted(range(len(characters)), key=lambda index: len(characters[index]))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def _padded_batch(id_rows, pad_token_id):
    """`input_ids` and `attention_mask` of rows padded on the right (one id at least, so empty texts still run)."""
    length = max(1, max(len(ids) for ids in id_rows))
    input_ids = torch.full((len(id_rows), length), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(id_rows), length), dtype=torch.long)
    for row, ids in enumerate(id_rows):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def _restore_with_tagger(spacing_model: SpacingModel, batch_characters: list[str], decision: str) -> list[str]:
    """A space after each character the tagger labels `space` (`decision="argmax"`), or after the characters
    `expected_f1_spaces` picks from the tagger's probabilities."""
    logits, attention_mask = _tagger_logits(spacing_model, batch_characters)
    if decision == "expected_f1":
        lengths = attention_mask.sum(dim=-1, keepdim=True)
        gaps = torch.arange(attention_mask.shape[-1]) < lengths - 1  # a gap after each character but the last
        labels = expected_f1_spaces(logits.float().softmax(dim=-1)[..., 1], gaps).long().tolist()
    else:
        labels = logits.argmax(dim=-1).tolist()
    return [spaced_text(text, row[: len(text)]) for text, row in zip(batch_characters, labels)]


def _tagger_logits(spacing_model: SpacingModel, batch_characters: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The tagger's logits for a batch of texts (padded on the right), and the batch's attention mask."""
    id_rows = [spacing_model.character_ids(text) for text in batch_characters]
    input_ids, attention_mask = _padded_batch(id_rows, spacing_model.tokenizer.pad_token_id)
    with torch.inference_mode():
        logits = spacing_model.model(input_ids=input_ids, attention_mask=attention_mask).logits
    return logits, attention_mask


def expected_f1_spaces(space_probabilities: torch.Tensor, gaps: torch.Tensor) -> torch.Tensor:
    """Per row, the gaps to put a space in that maximise the row's expected space F1.

    `space_probabilities[i, j]`: the probability of a space in gap j of text i; `gaps`: a bool tensor of the same
    shape, True where a gap exists. For any number k, the best k gaps are the k likeliest; with the gaps taken as
    independent, spacing them scores about 2 * (the sum of their probabilities) / (k + the sum over all gaps) in
    expectation (the ratio of the expected overlap to the expected sizes), and spacing none scores the probability
    that no gap is a space (the F1 of two empty sets is 1). The best k is kept: a bool tensor like `gaps`.
    """
    probabilities = space_probabilities.double().masked_fill(~gaps, 0.0)
    ranked, order = probabilities.sort(dim=-1, descending=True)
    counts = torch.arange(1, probabilities.shape[-1] + 1, dtype=probabilities.dtype)
    expected_f1 = 2 * ranked.cumsum(dim=-1) / (counts + probabilities.sum(dim=-1, keepdim=True))
    expected_f1 = expected_f1.masked_fill(counts > gaps.sum(dim=-1, keepdim=True), -1.0)
    no_space = (1 - probabilities).prod(dim=-1, keepdim=True)
    best_count = torch.cat([no_space, expected_f1], dim=-1).argmax(dim=-1, keepdim=True)
    ranks = torch.empty_like(order).scatter_(-1, order, torch.arange(order.shape[-1]).expand_as(order))
    return (ranks < best_count) & gaps


def _restore_with_seq2seq(spacing_model, batch_characters, num_beams, constrained) -> list[str]:
    """The decoder writes the text with its spaces, constrained (or not) to the source's characters."""
    tokenizer, network = spacing_model.tokenizer, spacing_model.model
    id_rows = [spacing_model.character_ids(text) for text in batch_characters]
    input_ids, attention_mask = _padded_batch(id_rows, tokenizer.pad_token_id)
    space_id, eos_id = spacing_model.space_token_id, network.config.eos_token_id
    # At most one space between two characters, then eos.
    max_new_tokens = 2 * max(len(ids) for ids in id_rows) + 1
    processors = LogitsProcessorList()
    if constrained:
        processors.append(SpacingLogitsProcessor(id_rows, space_id, eos_id, num_beams=num_beams))
    with torch.inference_mode():
        generated = network.generate(
            input_ids,
            attention_mask=attention_mask,
            max_new_tokens=max_new_tokens,
            num_beams=num_beams,
            do_sample=False,
            logits_processor=processors,
        )
    outputs = []
    for text, row in zip(batch_characters, generated[:, 1:].tolist()):
        if constrained:
            outputs.append(characters_with_spaces(text, row, space_id, eos_id))
        else:
            outputs.append(_decoded_text(tokenizer, row, space_id, eos_id))
    return outputs


def _decoded_text(tokenizer, output_ids, space_id, eos_id) -> str:
    """What an unconstrained decoder wrote, token by token (its characters may differ from the source's)."""
    tokens = []
    for token in output_ids:
        if token == eos_id:
            break
        if token == tokenizer.pad_token_id:
            continue
        tokens.append(" " if token == space_id else tokenizer.convert_ids_to_tokens(token))
    return normalize_spacing("".join(tokens))
