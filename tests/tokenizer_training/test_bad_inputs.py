"""Every bad input fails with an error naming the problem, and leaves no output folder (or temporary folder) behind."""

import unicodedata
from pathlib import Path

import pytest

import hf_seq
from tokenizer_training import train_tokenizer


REVIEWS_TRAIN = Path(hf_seq.__file__).parent / "sample_data" / "reviews_sample_train.txt"


def assert_nothing_written(output_dir):
    assert not output_dir.exists()
    assert not [path.name for path in output_dir.parent.iterdir() if path.name.startswith(f".{output_dir.name}.")]


def test_missing_file(tmp_path):
    output_dir = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="no_such_file.txt"):
        train_tokenizer(files=[REVIEWS_TRAIN, tmp_path / "no_such_file.txt"], vocab_size=2000, output_dir=output_dir)
    assert_nothing_written(output_dir)


@pytest.mark.parametrize("content", ["", "\n\n  \n\t\n"])
def test_empty_corpus_file(tmp_path, content):
    empty = tmp_path / "empty.txt"
    empty.write_text(content, encoding="utf-8")
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match="Empty corpus"):
        train_tokenizer(files=[empty], output_dir=output_dir)
    assert_nothing_written(output_dir)


@pytest.mark.parametrize("texts", [[], ["", "   ", "\n"]])
def test_empty_corpus_iterator(tmp_path, texts):
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match="Empty corpus"):
        train_tokenizer(texts=iter(texts), output_dir=output_dir)
    assert_nothing_written(output_dir)


def test_file_that_is_not_utf8(tmp_path):
    first_line = "첫 줄은 괜찮다\n".encode()
    cp949 = tmp_path / "cp949.txt"
    cp949.write_bytes(first_line + "이 줄은 CP949".encode("cp949") + b"\n")
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=rf"cp949\.txt is not UTF-8 text.*byte offset {len(first_line)} \(line 2\)"):
        train_tokenizer(files=[cp949], output_dir=output_dir)
    assert_nothing_written(output_dir)


def test_invalid_byte_is_located_across_read_chunks(tmp_path, monkeypatch):
    from tokenizer_training import corpus

    monkeypatch.setattr(corpus, "_CHUNK_BYTES", 4)  # splits the 3-byte Hangul characters across reads
    valid = tmp_path / "valid.txt"
    valid.write_text("가나다라\n마바사\n", encoding="utf-8")
    assert corpus.check_text_files([valid]) == [valid]

    broken = tmp_path / "broken.txt"
    before = "가나다\n라".encode()
    broken.write_bytes(before + b"\xff" + "마".encode())
    with pytest.raises(ValueError, match=rf"0xff at byte offset {len(before)} \(line 2\)"):
        corpus.check_text_files([broken])


def test_non_string_text_names_its_position(tmp_path):
    with pytest.raises(TypeError, match="#2 is a bytes"):
        train_tokenizer(texts=["영화", "좋다", b"bytes"], vocab_size=2000)
    with pytest.raises(TypeError, match="not a single string"):
        train_tokenizer(texts="영화 좋다", vocab_size=2000)


def test_vocab_smaller_than_special_and_byte_tokens_fails_before_training(tmp_path):
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match="need at least 261"):
        train_tokenizer(files=[tmp_path / "not even read.txt"], vocab_size=200, output_dir=output_dir)
    with pytest.raises(ValueError, match="need at least 263"):
        train_tokenizer(files=[REVIEWS_TRAIN], vocab_size=262, cls_token="<cls>", mask_token="<mask>")
    assert_nothing_written(output_dir)


def test_vocab_smaller_than_alphabet_names_the_alphabet_size(tmp_path):
    output_dir = tmp_path / "out"
    lines = REVIEWS_TRAIN.read_text(encoding="utf-8").splitlines()
    # The alphabet the trainer sees: NFC-normalised, stripped lines with spaces turned into "▁" by Metaspace.
    pre_tokenized = [unicodedata.normalize("NFC", line).strip().replace(" ", "▁") for line in lines]
    alphabet_size = len(set("".join(pre_tokenized)))
    with pytest.raises(ValueError, match=rf"alphabet \({alphabet_size} distinct characters\).*limit_alphabet"):
        train_tokenizer(files=[REVIEWS_TRAIN], vocab_size=600, output_dir=output_dir)
    assert_nothing_written(output_dir)

    # The suggested fix works: keep the most frequent characters, the rest become bytes.
    tokenizer = train_tokenizer(files=[REVIEWS_TRAIN], vocab_size=600, limit_alphabet=300)
    assert len(tokenizer) == 600
    rare_text = "鬱 ꙮ 희귀"
    assert tokenizer.decode(tokenizer(rare_text)["input_ids"], skip_special_tokens=True) == rare_text


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"algorithm": "unigram"}, "Unknown algorithm 'unigram'"),
        ({"normalization": "nfd"}, "Unknown normalization 'nfd'"),
        ({"padding_side": "middle"}, "padding_side"),
        ({"pad_token": "<s>"}, "distinct"),
        ({"cls_token": ""}, "cls_token must be a non-empty string"),
        ({"algorithm": "word", "limit_alphabet": 100}, "limit_alphabet applies to algorithm='bpe' only"),
        ({"texts": ["영화"]}, "exactly one corpus"),
    ],
)
def test_bad_settings(tmp_path, arguments, message):
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=message):
        train_tokenizer(**{"files": [REVIEWS_TRAIN], "vocab_size": 2000, "output_dir": output_dir, **arguments})
    assert_nothing_written(output_dir)


def test_no_corpus_at_all():
    with pytest.raises(ValueError, match="exactly one corpus"):
        train_tokenizer(vocab_size=2000)


def test_missing_text_column_lists_the_columns(tmp_path):
    nsmc = Path(hf_seq.__file__).parent / "sample_data" / "nsmc_sample_train.txt"
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=r"'review' not found.*\['id', 'document', 'label'\]"):
        train_tokenizer(files=[nsmc], text_column="review", vocab_size=2000, output_dir=output_dir)
    assert_nothing_written(output_dir)


def test_dataset_dict_is_refused_with_a_hint():
    import datasets

    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["영화 좋다"]})})
    with pytest.raises(TypeError, match="DatasetDict pick a split"):
        train_tokenizer(dataset=splits, text_column="text", vocab_size=2000)


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n \n"])
def test_a_file_holding_only_a_byte_order_mark_is_an_empty_corpus(tmp_path, content):
    bom_only = tmp_path / "bom.txt"
    bom_only.write_bytes(content)
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match="Empty corpus"):
        train_tokenizer(files=[bom_only], vocab_size=300, output_dir=output_dir)
    assert_nothing_written(output_dir)


def test_a_table_with_a_header_and_no_rows_says_so(tmp_path):
    header_only = tmp_path / "ratings.txt"
    header_only.write_text("id\tdocument\tlabel\n", encoding="utf-8")
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=r"ratings\.txt has a header but no rows"):
        train_tokenizer(files=[header_only], text_column="document", vocab_size=300, output_dir=output_dir)
    assert_nothing_written(output_dir)


def test_a_tsv_row_with_an_extra_tab_names_the_line(tmp_path):
    tsv = tmp_path / "ratings.txt"
    tsv.write_text("id\tdocument\tlabel\n1\t좋은 영화\t1\n2\t탭이\t들어간 리뷰\t0\n", encoding="utf-8")
    output_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=r"ratings\.txt line 3 has 4 tab-separated fields, the header 3"):
        train_tokenizer(files=[tsv], text_column="document", vocab_size=300, output_dir=output_dir)
    assert_nothing_written(output_dir)
