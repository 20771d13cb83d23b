"""A seeded table of generated `hf-seq` argument vectors over every subcommand (hypothesis is not installed), each
run in-process on tiny CPU models. Every case must end in exit status 0, 1 (`hf-seq <cmd>: error: ...`) or 2 (a
usage error), with no Python traceback, a JSON-valid metrics line when it succeeds, and no change to any file
outside the output folder it was given (a folder's code runs only with --trust_remote_code)."""

import io
import json
import os
import random
import shutil
import traceback

import pytest

from hf_seq.cli import main
from hf_seq.data import sample_data_path
from tests.support.tiny_models import save_tiny_models


SEED = 19
QUIET = [
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
    "--use_cpu",
    "true",
    "--dataloader_pin_memory",
    "false",
]
TINY = "embedding_size=8,hidden_size=8,num_hidden_layers=1"

# Value pools: "{name}" is a path of the sandbox (see `sandbox`), "{out}" the case's own output folder. Sizes stay
# small even when valid (a fuzz case must take well under a second or two).
MODELS = [
    "{lm}",
    "{lm}",
    "{classifier}",
    "{classifier}",
    "{tokenizer}",
    "{missing}",
    "{text}",
    "{empty_dir}",
    "{truncated_lm}",
    "{untrusted}",
]
TEXT_FILES = [
    "{text}",
    "{nsmc_test}",
    "{missing}",
    "{cp949}",
    "{empty}",
    "{bom}",
    "{header_only}",
    "{extra_tab}",
    "{empty_dir}",
]
OUTPUT_DIRS = ["{out}", "{out}", "{out}/nested/deeper", "{out_file}", "{out_nonempty}"]
COMMAND_FLAGS = {
    "evaluate": {
        "--model": MODELS,
        "--test_file": TEXT_FILES,
        "--max_length": ["8", "1", "0", "-5", "x"],
        "--block_size": ["8", "2", "1", "0"],
        "--bptt": ["5", "1", "0", "-1"],
        "--stateful": ["true", "false", "no?"],
        "--subword_samples": ["0", "1", "-1"],
        "--subword_dropout": ["0.1", "0", "1", "nan"],
        "--per_device_eval_batch_size": ["4", "1", "0", "-2"],
        "--trust_remote_code": [None],
        "--no_such_flag": [None],
    },
    "generate": {
        "--model": MODELS,
        "--prompt": ["영화", "", "😀😀", "긴 " * 100],
        "--max_new_tokens": ["3", "1", "0", "-1", "x"],
        "--num_return_sequences": ["1", "2", "0", "-1"],
        "--do_sample": ["true", "false"],
        "--top_k": ["0", "5", "-1"],
        "--top_p": ["0.9", "1", "0", "1.5", "nan"],
        "--temperature": ["1", "0.5", "0", "-1", "inf"],
        "--seed": ["0", "-1", "x"],
        "--trust_remote_code": [None],
    },
    "train-tokenizer": {
        "--train_files": TEXT_FILES + ["{text} {nsmc_test}"],
        "--text_column": ["document", "nope"],
        "--output_dir": OUTPUT_DIRS,
        "--algorithm": ["bpe", "char", "word", "xyz"],
        "--vocab_size": ["600", "300", "0", "-1", "x", "100000"],
        "--min_frequency": ["2", "0", "-1"],
        "--normalization": ["nfc", "nfkc", "none", "nfd"],
        "--limit_alphabet": ["200", "0", "-5"],
        "--cls_token": ["<cls>", "", "<s>"],
        "--mask_token": ["<mask>", "<0x41>"],
        "--add_eos_token": [None],
        "--no_bos_token": [None],
        "--model_max_length": ["16", "0", "-1"],
        "--padding_side": ["left", "up"],
        "--overwrite": [None],
    },
    "pretrain": {
        "--train_file": ["{text}", "{text}", "{cp949}", "{empty}", "{missing}"],
        "--tokenizer": ["{tokenizer}", "{tokenizer}", "{lm}", "{missing}", "{empty_dir}"],
        "--output_dir": OUTPUT_DIRS,
        "--model_name_or_path": ["{lm}", "{classifier}", "{untrusted}", "{missing}"],
        "--model_type": ["lstm", "gru", "transformer", "bogus"],
        "--config_overrides": [TINY, TINY, "hidden_size=abc", "no_such_field=1", "hidden_size"],
        "--loop": ["auto", "trainer", "tbptt", "x"],
        "--block_size": ["8", "0"],
        "--bptt": ["4", "0", "-1"],
        "--per_device_train_batch_size": ["2", "0"],
        "--learning_rate": ["0.01", "-1", "nan"],
    },
    "finetune": {
        "--model_name_or_path": ["{lm}", "{classifier}", "{untrusted}", "{missing}", "{truncated_lm}"],
        "--tokenizer": ["{tokenizer}", "{missing}"],
        "--model_type": ["lstm", "bogus"],
        "--config_overrides": [TINY],
        "--data": ["{nsmc_dir}", "{nsmc_dir}", "{bad_nsmc_dir}", "{empty_dir}", "{missing}"],
        "--output_dir": OUTPUT_DIRS,
        "--max_length": ["16", "1", "0", "-5"],
        "--task": ["sequence-classification", "token-classification", "bogus"],
        "--subword_dropout": ["0", "0.1", "1.5"],
        "--layerwise_lr_decay": ["1", "0.5", "0", "-1"],
        "--gradual_unfreezing": ["0", "0.5", "-1"],
        "--weight_averaging": ["0", "0.5", "-1"],
        "--per_device_train_batch_size": ["4", "0"],
    },
    "push": {
        "--model": ["{lm}", "{classifier}", "{missing}", "{text}", "{untrusted}"],
        "--repo_id": ["alice/tiny", "not a repo id", ""],
        "--dry_run": [None, None, None],
        "--license": ["apache-2.0", "???"],
        "--language": ["ko", ""],
        "--private": [None],
    },
    "predict": {
        "--model": MODELS + ["{classifier} {classifier}", "{classifier} {lm}"],
        "--input": TEXT_FILES,
        "--output": ["{out}/predictions.tsv", "{out}/predictions.jsonl", "{out}/nested/deeper/p.tsv", "{out}"],
        "--text_column": ["document", "nope", ""],
        "--input_format": ["text", "tsv", "jsonl", "csv"],
        "--columns": ["id,label,prob_positive", "id,nope", ""],
        "--subword_samples": ["0", "2", "-1", "x"],
        "--batch_size": ["4", "1", "0", "-3"],
        "--max_new_tokens": ["2", "0"],
        "--overwrite": [None],
        "--trust_remote_code": [None],
    },
    "demo": {
        "--vocab_size": ["0", "-5", "x", "100"],
        "--output_dir": OUTPUT_DIRS,
        "--lm_epochs": ["0.01", "0", "-1"],
        "--hidden_size": ["8", "0"],
        "--num_threads": ["1", "0", "-1"],
        "--overwrite": [None],
    },
}
# A valid vector per command (two for evaluate: a language model and a classifier); each case is one of them with
# 0 to 3 flags set (or replaced) from the pools above, so bad values are met one or two at a time, deep in a run.
BASELINES = {
    "evaluate": [
        ["--model", "{lm}", "--test_file", "{text}"],
        ["--model", "{classifier}", "--test_file", "{nsmc_test}"],
    ],
    "generate": [["--model", "{lm}", "--max_new_tokens", "3"]],
    "train-tokenizer": [
        ["--train_files", "{text}", "--output_dir", "{out}", "--vocab_size", "600", "--limit_alphabet", "200"]
    ],
    "pretrain": [
        [
            "--train_file",
            "{text}",
            "--tokenizer",
            "{tokenizer}",
            "--output_dir",
            "{out}",
            "--config_overrides",
            TINY,
            "--bptt",
            "4",
            "--per_device_train_batch_size",
            "2",
        ]
    ],
    "finetune": [
        [
            "--model_name_or_path",
            "{lm}",
            "--data",
            "{nsmc_dir}",
            "--output_dir",
            "{out}",
            "--per_device_train_batch_size",
            "4",
            "--max_length",
            "16",
        ]
    ],
    "push": [["--model", "{lm}", "--repo_id", "alice/tiny", "--dry_run"]],
    "predict": [
        ["--model", "{classifier}", "--input", "{nsmc_test}", "--output", "{out}/predictions.tsv"],
        ["--model", "{lm}", "--input", "{text}", "--max_new_tokens", "2"],
    ],
    # The vocabulary size is always one the demo refuses before training (pool above), so a case stays fast.
    "demo": [["--vocab_size", "100", "--output_dir", "{out}"]],
}
# Flags added as they are, to keep the training commands to one step on the CPU.
FIXED = {
    "evaluate": ["--use_cpu", "true", "--report_to", "none"],
    "pretrain": ["--max_steps", "1", *QUIET],
    "finetune": ["--max_steps", "1", *QUIET],
}
CASES_PER_COMMAND = {
    "evaluate": 25,
    "generate": 25,
    "train-tokenizer": 25,
    "pretrain": 10,
    "finetune": 10,
    "push": 6,
    "predict": 16,
    "demo": 3,
}
TOP_LEVEL_CASES = [[], ["--help"], ["no-such-command"], ["-x", "evaluate"]]


def mutate(baseline, flags, rng):
    """`baseline` (a list of flags and values) with 0 to 3 flags drawn from `flags` set to one of their values."""
    settings = {}
    for item in baseline:
        if item.startswith("--"):
            settings[item] = []
            flag = item
        else:
            settings[flag].append(item)
    for flag in rng.sample(sorted(flags), k=min(len(flags), rng.choice([0, 1, 1, 2, 2, 3]))):
        value = rng.choice(flags[flag])
        settings[flag] = [] if value is None else value.split(" ") if value.startswith("{") else [value]
    if settings and rng.random() < 0.05:
        del settings[rng.choice(sorted(settings))]  # now and then a required flag is missing
    return [part for flag, values in settings.items() for part in (flag, *values)]


def generate_cases(seed=SEED):
    """The seeded table: a list of argument vectors (with "{...}" placeholders for the sandbox's paths)."""
    rng = random.Random(seed)
    cases = list(TOP_LEVEL_CASES)
    for command, count in CASES_PER_COMMAND.items():
        for _ in range(count):
            argv = mutate(rng.choice(BASELINES[command]), COMMAND_FLAGS[command], rng)
            cases.append([command, *argv, *FIXED.get(command, [])])
    return cases


CASES = generate_cases()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """The inputs every case reads, under one folder whose files must never change: paths by placeholder name."""
    root = tmp_path_factory.mktemp("fuzz")
    inputs = root / "inputs"
    inputs.mkdir()
    paths = save_tiny_models(str(inputs / "models"))
    with open(sample_data_path("nsmc_sample_test.txt"), encoding="utf-8") as handle:
        header, *rows = handle.read().splitlines()
    nsmc_dir = inputs / "nsmc"
    nsmc_dir.mkdir()
    (nsmc_dir / "ratings_train.txt").write_text("\n".join([header, *rows[:40]]) + "\n", encoding="utf-8")
    (nsmc_dir / "ratings_test.txt").write_text("\n".join([header, *rows[40:60]]) + "\n", encoding="utf-8")
    bad_nsmc_dir = shutil.copytree(nsmc_dir, inputs / "bad_nsmc")
    with open(bad_nsmc_dir / "ratings_train.txt", "a", encoding="utf-8") as handle:
        handle.write("1\t탭이\t들어간 리뷰\t1\n")
    with open(sample_data_path("reviews_sample_valid.txt"), encoding="utf-8") as handle:
        reviews = handle.read().splitlines()[:60]
    files = {
        "text": "\n".join(reviews) + "\n",
        "nsmc_test": (nsmc_dir / "ratings_test.txt").read_text("utf-8"),
        "empty": "",
        "bom": "\ufeff",
        "header_only": header + "\n",
        "extra_tab": header + "\n1\t탭\t리뷰\t0\n",
    }
    for name, text in files.items():
        paths[name] = str(inputs / f"{name}.txt")
        (inputs / f"{name}.txt").write_text(text, encoding="utf-8")
    paths["cp949"] = str(inputs / "cp949.txt")
    (inputs / "cp949.txt").write_bytes("첫 줄\n".encode() + "둘째 줄".encode("cp949") + b"\n")
    paths["truncated_lm"] = str(shutil.copytree(paths["lm"], inputs / "truncated_lm"))
    weights = inputs / "truncated_lm" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    untrusted = shutil.copytree(paths["lm"], inputs / "untrusted")
    config = json.loads((untrusted / "config.json").read_text())
    (untrusted / "config.json").write_text(json.dumps({**config, "model_type": "someone_elses_lstm"}))
    code = untrusted / "configuration_recurrent.py"
    code.write_text(f"open({str(root / 'code_ran')!r}, 'w').close()\n" + code.read_text())
    (inputs / "empty_dir").mkdir()
    paths.update(
        untrusted=str(untrusted),
        empty_dir=str(inputs / "empty_dir"),
        missing=str(inputs / "missing"),
        nsmc_dir=str(nsmc_dir),
        bad_nsmc_dir=str(bad_nsmc_dir),
    )
    (root / "cwd").mkdir()
    return root, paths


def snapshot(root):
    """(size, mtime) of every file and folder under `root` except the cases' output folders."""
    state = {}
    for directory, folders, files in os.walk(root):
        if directory == str(root):
            folders.remove("outputs")  # the output folders, and their parent that each case adds to
        for name in folders + files:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            state[path] = (info.st_size, info.st_mtime_ns)
    return state


def case_output_dir(root, index):
    """A fresh output folder for case `index`, and beside it the existing file and non-empty folder it may get."""
    out = root / "outputs" / f"case-{index:03d}"
    out.parent.mkdir(exist_ok=True)
    (out.parent / f"case-{index:03d}-file").write_text("not a folder")
    (out.parent / f"case-{index:03d}-nonempty").mkdir()
    (out.parent / f"case-{index:03d}-nonempty" / "notes.txt").write_text("keep me")
    return out


def resolve(argv, paths, out):
    places = {**paths, "out": str(out), "out_file": f"{out}-file", "out_nonempty": f"{out}-nonempty"}
    return [value.format(**places) if "{" in value else value for value in argv]


def run_case(argv, capsys):
    """(exit status, stdout, stderr, traceback of an exception that escaped `main`, or None)."""
    escaped = None
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    except BaseException:  # noqa: BLE001 - what the fuzz looks for: anything that would print a traceback
        status, escaped = None, traceback.format_exc()
    captured = capsys.readouterr()
    if isinstance(status, str):  # SystemExit("hf-seq x: error: ..."): Python prints it and exits with status 1
        assert "\n" not in status.strip(), f"the error is not one line:\n{status}"
        return 1, captured.out, captured.err + status, escaped
    return status or 0, captured.out, captured.err, escaped


def strict_json(line):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(line, parse_constant=refuse)


@pytest.mark.parametrize(
    "index", range(len(CASES)), ids=[f"{i:03d}-{c[0] if c else 'none'}" for i, c in enumerate(CASES)]
)
def test_every_argument_vector_ends_cleanly_and_touches_only_its_output(sandbox, capsys, monkeypatch, index):
    root, paths = sandbox
    out = case_output_dir(root, index)
    argv = resolve(CASES[index], paths, out)
    monkeypatch.chdir(root / "cwd")  # a command writing to its working folder shows up in the snapshot
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n" * 10))  # were there a question, it would get a yes
    before = snapshot(root)

    status, stdout, stderr, escaped = run_case(argv, capsys)

    assert escaped is None, f"hf-seq {' '.join(argv)}\n{escaped}"
    assert status in (0, 1, 2) and "Traceback" not in stderr, f"hf-seq {' '.join(argv)}: {status}\n{stderr}"
    assert "[y/N]" not in stdout + stderr, f"hf-seq {' '.join(argv)} asked a question"
    if status == 1:
        assert len([line for line in stderr.splitlines() if ": error: " in line]) == 1, stderr
    if status == 0 and argv[:1] in (["evaluate"], ["pretrain"], ["finetune"]):
        strict_json(stdout.splitlines()[-1])
    trusted = "--trust_remote_code" in argv
    if trusted and (root / "code_ran").exists():
        (root / "code_ran").unlink()  # allowed: the user asked for the folder's code to run
    after = snapshot(root)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    assert changed == [], f"hf-seq {' '.join(argv)} changed files outside its output folder: {changed}"
