"""bench/spacing_nsmc_subsets.py: the NSMC reviews of reviews_lm's train and valid, nothing held out trained on."""

import os
import sys

import pytest


BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "bench")
sys.path.insert(0, BENCH)  # the bench scripts import their siblings by name, as when run from bench/

import spacing_nsmc_subsets  # noqa: E402


def test_the_subsets_keep_nsmc_documents_and_leave_held_out_texts_out_of_train():
    train = ["정말 좋은 영화", "그냥 그랬다", "최고의 영화", "다시 보고 싶다", ""]
    valid = ["최고의 영화", "배우가 좋다", "별로였다"]
    test = ["다시 보고 싶다"]
    nsmc = ["정말 좋은 영화", "최고의 영화", "다시 보고 싶다", "배우가 좋다", ""]

    train_subset, valid_subset = spacing_nsmc_subsets.nsmc_subsets(train, valid, test, nsmc)

    assert train_subset == ["정말 좋은 영화"]  # "최고의 영화" is in valid, "다시 보고 싶다" in test
    assert valid_subset == ["최고의 영화", "배우가 좋다"]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "data"
    _write(str(root / "nsmc" / "ratings_train.txt"), "id\tdocument\tlabel\n1\t정말 좋은 영화\t1\n2\t배우가 좋다\t1\n")
    _write(str(root / "reviews_lm" / "train.txt"), "정말 좋은 영화\n그냥 그랬다\n")
    _write(str(root / "reviews_lm" / "valid.txt"), "배우가 좋다\n별로였다\n")
    _write(str(root / "reviews_lm" / "test.txt"), "재미없다\n")
    return root


def test_the_script_writes_both_files_and_never_replaces_them(data_dir, tmp_path, capsys):
    output_dir = tmp_path / "out"
    spacing_nsmc_subsets.main(["--data_dir", str(data_dir), "--output_dir", str(output_dir)])

    assert (output_dir / "train_nsmc.txt").read_text(encoding="utf-8") == "정말 좋은 영화\n"
    assert (output_dir / "valid_nsmc.txt").read_text(encoding="utf-8") == "배우가 좋다\n"
    with pytest.raises(SystemExit):
        spacing_nsmc_subsets.main(["--data_dir", str(data_dir), "--output_dir", str(output_dir)])
    assert "exists" in capsys.readouterr().err
    assert (output_dir / "train_nsmc.txt").read_text(encoding="utf-8") == "정말 좋은 영화\n"


def test_a_data_dir_without_the_files_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        spacing_nsmc_subsets.main(["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "out")])
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
