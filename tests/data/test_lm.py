"""LM corpora: tokenisation with datasets, fixed blocks, contiguous BPTT streams and their sampler, streaming."""

import pytest
import torch

from hf_seq.data import (
    BPTTStreamDataset,
    StreamingBPTTBatches,
    StreamOrderSampler,
    batchify,
    bptt_dataloader,
    corpus_token_ids,
    group_into_blocks,
    load_text_files,
    tokenize_corpus,
)


DOCUMENTS = ["재밌어요 정말", "", "별로였다", "배우 연기가 좋았고 음악도 좋았다", "   ", "그냥 그래요", "최고의 영화"]


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(DOCUMENTS) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def tokenized(text_file, tiny_tokenizer, tmp_path):
    return tokenize_corpus(load_text_files(text_file, cache_dir=str(tmp_path / "cache")), tiny_tokenizer)["train"]


def test_tokenize_corpus_drops_empty_lines_and_ends_documents_with_eos(tokenized, tiny_tokenizer):
    real_documents = [document for document in DOCUMENTS if document.strip()]
    assert len(tokenized) == len(real_documents)
    for ids, document in zip(tokenized["input_ids"], real_documents):
        assert ids == tiny_tokenizer(document)["input_ids"] + [tiny_tokenizer.eos_token_id]


def test_reverse_gives_each_document_back_to_front_then_eos(text_file, tiny_tokenizer, tmp_path):
    backward = tokenize_corpus(
        load_text_files(text_file, cache_dir=str(tmp_path / "cache")), tiny_tokenizer, reverse=True
    )["train"]
    real_documents = [document for document in DOCUMENTS if document.strip()]
    for ids, document in zip(backward["input_ids"], real_documents, strict=True):
        assert ids == tiny_tokenizer(document)["input_ids"][::-1] + [tiny_tokenizer.eos_token_id]


def test_corpus_token_ids_concatenates_in_order(tokenized):
    expected = [token for ids in tokenized["input_ids"] for token in ids]
    assert corpus_token_ids(tokenized).tolist() == expected
    assert corpus_token_ids(tokenized.select([2, 0])).tolist() == tokenized["input_ids"][2] + tokenized["input_ids"][0]


def test_group_into_blocks_cuts_equal_blocks_of_the_concatenation(tokenized):
    blocks = group_into_blocks(tokenized, block_size=5)
    concatenation = [token for ids in tokenized["input_ids"] for token in ids]
    assert all(len(block) == 5 for block in blocks["input_ids"])
    assert len(blocks) == len(concatenation) // 5
    assert [token for block in blocks["input_ids"] for token in block] == concatenation[: len(blocks) * 5]
    with pytest.raises(ValueError, match="block_size"):
        group_into_blocks(tokenized, block_size=1)


def test_batchify_lays_out_contiguous_streams():
    streams = batchify(torch.arange(23), num_streams=4)
    assert streams.tolist() == [list(range(0, 5)), list(range(5, 10)), list(range(10, 15)), list(range(15, 20))]
    with pytest.raises(ValueError, match="too few"):
        batchify(torch.arange(5), num_streams=4)


def test_consecutive_batches_continue_every_stream_with_shifted_targets():
    token_ids = torch.arange(1000, 1103)  # 103 tokens: 4 streams of 25, windows of 7 (the last one of 3)
    loader = bptt_dataloader(token_ids, batch_size=4, bptt=7)
    streams = batchify(token_ids, 4)
    inputs = torch.cat([batch["input_ids"] for batch in loader], dim=1)
    targets = torch.cat([batch["target_ids"] for batch in loader], dim=1)
    assert inputs.tolist() == streams[:, :-1].tolist()
    assert targets.tolist() == streams[:, 1:].tolist()
    assert [batch["input_ids"].shape[1] for batch in loader] == [7, 7, 7, 3]


def test_each_process_reads_its_own_streams_and_all_tokens_are_read_once():
    token_ids = torch.arange(200)
    dataset = BPTTStreamDataset(token_ids, num_streams=6, bptt=5)
    per_rank = []
    for rank in range(3):
        loader = bptt_dataloader(token_ids, batch_size=2, bptt=5, num_replicas=3, rank=rank)
        per_rank.append(torch.cat([batch["input_ids"] for batch in loader], dim=1))
    # Rank r holds streams 2r and 2r+1, each read in order from its first to its last input.
    assert torch.cat(per_rank).tolist() == dataset.streams[:, :-1].tolist()
    with pytest.raises(ValueError, match="evenly"):
        StreamOrderSampler(dataset, num_replicas=4, rank=0)


def test_streaming_gives_the_same_tokens_and_blocks(text_file, tiny_tokenizer, tmp_path):
    in_memory = tokenize_corpus(load_text_files(text_file, cache_dir=str(tmp_path / "cache")), tiny_tokenizer)
    streamed = tokenize_corpus(load_text_files(text_file, streaming=True), tiny_tokenizer)
    assert [example["input_ids"] for example in streamed["train"]] == in_memory["train"]["input_ids"]
    streamed_blocks = [example["input_ids"] for example in group_into_blocks(streamed, 4)["train"]]
    assert streamed_blocks == group_into_blocks(in_memory, 4)["train"]["input_ids"]


def test_streaming_bptt_batches_keep_each_stream_a_contiguous_run_of_documents():
    documents = [
        list(range(start, start + length))
        for start, length in [(0, 9), (100, 4), (200, 12), (300, 6), (400, 8), (500, 10), (600, 5)]
    ]
    batches = list(StreamingBPTTBatches(documents, num_streams=2, bptt=3))
    assert batches and all(batch["input_ids"].shape == (2, 3) for batch in batches)
    for stream in range(2):
        inputs = torch.cat([batch["input_ids"][stream] for batch in batches]).tolist()
        targets = torch.cat([batch["target_ids"][stream] for batch in batches]).tolist()
        assert targets[:-1] == inputs[1:]  # each window continues where the previous one stopped
        # The stream is whole documents, one after another, in corpus order.
        fed = [document for document in documents if document[0] in inputs]
        assert [token for document in fed for token in document][: len(inputs)] == inputs
    first_tokens = {batches[0]["input_ids"][stream, 0].item() for stream in range(2)}
    assert first_tokens == {0, 100}
    with pytest.raises(ValueError, match="bptt"):
        StreamingBPTTBatches(documents, num_streams=2, bptt=0)


def test_bad_inputs_fail_clearly(tmp_path, tiny_tokenizer, text_file):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_text_files({"train": str(tmp_path / "missing.txt")})
    with pytest.raises(ValueError, match="column"):
        tokenize_corpus(
            load_text_files(text_file, cache_dir=str(tmp_path / "cache")), tiny_tokenizer, text_column="document"
        )


def test_a_text_file_that_is_not_utf8_names_the_file_and_line(tmp_path):
    path = tmp_path / "cp949.txt"
    path.write_bytes("첫 줄\n".encode() + "둘째 줄".encode("cp949") + b"\n")
    with pytest.raises(ValueError, match=r"cp949\.txt is not UTF-8 text.*\(line 2\).*iconv"):
        load_text_files({"train": str(path)}, cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("content", [b"", b"\n  \n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n"])
def test_a_text_file_without_text_says_so(tmp_path, content):
    path = tmp_path / "blank.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"blank\.txt has no text"):
        load_text_files({"test": str(path)}, cache_dir=str(tmp_path / "cache"))
