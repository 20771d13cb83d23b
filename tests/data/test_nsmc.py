"""load_nsmc / load_nsmc_files: the Hub dataset's schema, quotes kept, empty documents as "", clear errors."""

import shutil

import pytest
from datasets import ClassLabel, Value

from hf_seq.data import NSMC_FEATURES, load_nsmc, load_nsmc_files, sample_data_path


# Quotes at the start, in the middle and unbalanced, an empty document, and a document that looks like a number.
TINY_TSV = 'id\tdocument\tlabel\n101\t"최고" 라는 말밖에\t1\n102\t\t0\n103\t그냥 "그저 그런" 영화"\t0\n104\t10\t1\n'


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_quotes_and_empty_documents_with_the_hub_schema(tmp_path):
    path = write(tmp_path / "tiny.txt", TINY_TSV)
    dataset = load_nsmc_files({"train": str(path)}, cache_dir=str(tmp_path / "cache"))["train"]
    assert dataset.features == NSMC_FEATURES
    assert dataset.features["id"] == Value("string")
    assert dataset.features["label"] == ClassLabel(names=["negative", "positive"])
    assert dataset["id"] == ["101", "102", "103", "104"]
    assert dataset["document"] == ['"최고" 라는 말밖에', "", '그냥 "그저 그런" 영화"', "10"]
    assert dataset["label"] == [1, 0, 0, 1]


def test_default_is_the_shipped_sample(tmp_path):
    dataset = load_nsmc(cache_dir=str(tmp_path / "cache"))
    assert sorted(dataset) == ["test", "train"]
    assert (len(dataset["train"]), len(dataset["test"])) == (4000, 1000)
    assert dataset["train"].features == NSMC_FEATURES
    assert set(dataset["test"]["label"]) == {0, 1}
    assert all(isinstance(document, str) for document in dataset["train"]["document"])


def test_a_directory_with_the_published_file_names(tmp_path):
    data_dir = tmp_path / "nsmc"
    data_dir.mkdir()
    write(data_dir / "ratings_train.txt", TINY_TSV)
    shutil.copy(sample_data_path("nsmc_sample_test.txt"), data_dir / "ratings_test.txt")
    dataset = load_nsmc(str(data_dir), cache_dir=str(tmp_path / "cache"))
    assert (len(dataset["train"]), len(dataset["test"])) == (4, 1000)
    assert dataset["train"]["document"][1] == ""


def test_bad_inputs_fail_clearly(tmp_path):
    cache_dir = str(tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_nsmc_files({"test": str(tmp_path / "missing.txt")}, cache_dir=cache_dir)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(FileNotFoundError, match="ratings_train.txt"):
        load_nsmc(str(empty_dir), cache_dir=cache_dir)
    bad_header = write(tmp_path / "header.txt", "id\ttext\tlabel\n1\tx\t1\n")
    with pytest.raises(ValueError, match="not an NSMC-format file"):
        load_nsmc_files(str(bad_header), cache_dir=cache_dir)
    bad_label = write(tmp_path / "label.txt", "id\tdocument\tlabel\n1\tx\t5\n")
    with pytest.raises(ValueError, match="label"):
        load_nsmc_files(str(bad_label), cache_dir=cache_dir)
    with pytest.raises(ValueError, match="is a file"):
        load_nsmc(str(bad_label), cache_dir=cache_dir)


def test_a_row_with_an_extra_tab_names_the_file_and_line(tmp_path):
    extra_tab = write(tmp_path / "tab.txt", TINY_TSV + "105\t탭이\t들어간 리뷰\t1\n")
    with pytest.raises(ValueError, match=r"tab\.txt line 6 has 4 tab-separated fields.*replace"):
        load_nsmc_files(str(extra_tab), cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("content", ["id\tdocument\tlabel\n", "\ufeffid\tdocument\tlabel\n", ""])
def test_a_file_without_rows_says_so(tmp_path, content):
    path = write(tmp_path / "rows.txt", content)
    with pytest.raises(ValueError, match=r"rows\.txt (has no rows|is empty)"):
        load_nsmc_files(str(path), cache_dir=str(tmp_path / "cache"))


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "cp949.txt"
    path.write_bytes(TINY_TSV.encode("utf-8") + "105\t한국어\t1\n".encode("cp949"))
    with pytest.raises(ValueError, match=r"cp949\.txt is not UTF-8 text.*line 6.*iconv"):
        load_nsmc_files(str(path), cache_dir=str(tmp_path / "cache"))


def test_a_label_other_than_0_or_1_names_the_line(tmp_path):
    path = write(tmp_path / "label.txt", TINY_TSV + "105\t좋다\tpositive\n")
    with pytest.raises(ValueError, match=r"label\.txt line 6: label 'positive' is not 0 or 1"):
        load_nsmc_files(str(path), cache_dir=str(tmp_path / "cache"))


def test_a_byte_order_mark_before_the_header_is_read_as_utf8(tmp_path):
    path = write(tmp_path / "bom.txt", "\ufeff" + TINY_TSV)
    dataset = load_nsmc_files(str(path), cache_dir=str(tmp_path / "cache"))["test"]
    assert dataset.column_names == ["id", "document", "label"] and dataset["id"][0] == "101"
