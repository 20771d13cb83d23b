"""The `hf-seq` command starts without torch: `--help` imports nothing heavy, `train-tokenizer` only tokenizers and
transformers' tokenizer classes. And `import hf_seq` still registers every family with the Auto classes, so a saved
folder loads with `AutoModelForCausalLM.from_pretrained` and no trust_remote_code. Each check runs in a fresh
interpreter (this one has imported everything already)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hf_seq.data import sample_data_path
from tests.support.tiny_models import save_tiny_models


REPOSITORY = Path(__file__).resolve().parents[1]
# What tokenizer training does not need: torch, transformers' model code, datasets (a second to import: only a
# --text_column corpus is read with it), and hf_seq (importing it registers the model families, which needs torch).
NOT_FOR_TOKENIZER_TRAINING = ("torch", "transformers.modeling_utils", "datasets", "hf_seq")


def run_python(code):
    """Run `code` in a fresh interpreter (repository on the path, no stdin); return the JSON its last line prints."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPOSITORY,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


def modules_after(statements, prefixes):
    """The modules named in `prefixes`, and their submodules, that running `statements` imported."""
    return run_python(
        "import json, sys\n" + statements + "\n"
        f"prefixes = {prefixes!r}\n"
        "print(json.dumps(sorted(name for name in sys.modules\n"
        "                        if any(name == prefix or name.startswith(prefix + '.') for prefix in prefixes))))"
    )


def test_help_imports_nothing_a_command_needs():
    prefixes = ("torch", "transformers", "datasets", "tokenizer_training", "hf_seq")
    assert modules_after("from hf_seq_cli import main\nmain(['--help'])", prefixes) == []


def test_train_tokenizer_imports_no_torch_nor_datasets(tmp_path):
    output_dir = tmp_path / "tok"
    loaded = modules_after(
        "from hf_seq_cli import main\n"
        f"main(['train-tokenizer', '--train_files', {sample_data_path('reviews_sample_valid.txt')!r}, "
        f"'--output_dir', {str(output_dir)!r}, '--vocab_size', '600', '--limit_alphabet', '200'])",
        NOT_FOR_TOKENIZER_TRAINING,
    )
    assert loaded == [] and (output_dir / "tokenizer.json").is_file()


def test_the_installed_command_s_entry_point_imports_no_torch():
    tomllib = pytest.importorskip("tomllib")
    with open(REPOSITORY / "pyproject.toml", "rb") as handle:
        entry_point = tomllib.load(handle)["project"]["scripts"]["hf-seq"]
    module, function = entry_point.split(":")
    assert modules_after(f"from {module} import {function}", ("torch",)) == []


def test_import_hf_seq_lets_auto_classes_load_a_saved_folder(tmp_path):
    folders = save_tiny_models(str(tmp_path))
    loaded = run_python(
        "import json, hf_seq\n"
        "from transformers import AutoModelForCausalLM\n"
        f"model = AutoModelForCausalLM.from_pretrained({folders['lm']!r})\n"
        "print(json.dumps([type(model).__module__, type(model).__name__]))"
    )
    assert loaded == ["hf_seq.models.recurrent.modeling_recurrent", "LSTMForCausalLM"]
