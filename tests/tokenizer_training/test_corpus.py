import pytest

from tokenizer_training import check_text_files, iter_dataset_texts, load_text_column


def test_tsv_column_keeps_quotes_empty_cells_and_na_strings(tmp_path):
    tsv = tmp_path / "ratings.txt"
    rows = ['1\t"따옴표로 시작하는 리뷰\t1', "2\t\t0", "3\tNA\t1", '4\t그냥 "인용" 리뷰"\t0', "5\t1234\t1"]
    tsv.write_text("id\tdocument\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")

    dataset = load_text_column([tsv], "document")

    assert dataset["document"] == ['"따옴표로 시작하는 리뷰', "", "NA", '그냥 "인용" 리뷰"', "1234"]


def test_csv_and_jsonl_columns(tmp_path):
    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text('text,label\n"쉼표, 있는 리뷰",1\n보통 리뷰,0\n', encoding="utf-8")
    jsonl_file = tmp_path / "reviews.jsonl"
    jsonl_file.write_text('{"text": "제이슨 리뷰", "label": 1}\n{"text": null, "label": 0}\n', encoding="utf-8")

    assert load_text_column([csv_file], "text")["text"] == ["쉼표, 있는 리뷰", "보통 리뷰"]
    assert list(iter_dataset_texts(load_text_column([jsonl_file], "text"), "text")) == ["제이슨 리뷰"]
    with pytest.raises(ValueError, match="mix formats"):
        load_text_column([csv_file, jsonl_file], "text")
    with pytest.raises(ValueError, match=r"'review' not found.*\['text', 'label'\]"):
        load_text_column([jsonl_file], "review")


def test_unparsable_csv_names_the_file(tmp_path):
    csv_file = tmp_path / "broken.csv"
    csv_file.write_text('text,label\n"never closed quote,1\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"Could not read .*broken\.csv.* as CSV"):
        load_text_column([csv_file], "text")


def test_iter_dataset_texts_needs_an_existing_column():
    import datasets

    dataset = datasets.Dataset.from_dict({"document": ["가", None, "나"]})
    assert list(iter_dataset_texts(dataset, "document", batch_size=2)) == ["가", "나"]
    with pytest.raises(ValueError, match="needs `text_column`"):
        list(iter_dataset_texts(dataset, None))
    with pytest.raises(ValueError, match=r"'text' not found.*\['document'\]"):
        list(iter_dataset_texts(dataset, "text"))


def test_check_text_files_rejects_folders_and_nothing(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        check_text_files([tmp_path])
    with pytest.raises(ValueError, match="No training files"):
        check_text_files([])
