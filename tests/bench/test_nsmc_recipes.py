"""bench/nsmc_recipes: each recipe file is the flags of one README results row, read exactly as the typed command.

The typed commands below are the ones the README's NSMC results table was produced with (after `--data_dir`), by
the card each row writes. A recipe that drifts from its command (a flag missing, a value changed, a value read
as another type) fails here, as does a recipe without a row or a row without a recipe.
"""

import json
import os
import shlex
import subprocess
import sys

import pytest


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(REPO, "bench")
RECIPES = os.path.join(BENCH, "nsmc_recipes")
sys.path.insert(0, BENCH)  # the bench scripts import their siblings by name, as when run from bench/

import nsmc_recipe  # noqa: E402


# The README's commands, by the card each row writes (flags after `--data_dir ../shared/data`).
OLD_COMMANDS = {
    "lstm-nsmc": "--family lstm --pretrain_max_steps 2500 --finetune_epochs 1",
    "lstm-nsmc-llrd0.38": "--family lstm --finetune_epochs 1 --layerwise_lr_decay 0.38",
    "lstm-nsmc-2ep": "--family lstm --finetune_epochs 2",
    "lstm-long-nsmc-2ep": "--continue_from runs/nsmc_pretrained/lstm-lm --name lstm-long --pretrain_max_steps 8000 --finetune_epochs 2",
    "lstm-long-nsmc-2ep-unfreeze0.1": "--continue_from runs/nsmc_pretrained/lstm-lm --name lstm-long --pretrain_max_steps 8000 --finetune_epochs 2 --gradual_unfreezing 0.1",
    "lstm-backward-nsmc-2ep": "--continue_from runs/nsmc_pretrained/lstm-long-lm --name lstm-backward --reading_direction backward --pretrain_max_steps 5500 --finetune_epochs 2",
    "lstm-fwd-bwd-nsmc-ensemble": "--name lstm-fwd-bwd --ensemble lstm-long-nsmc-2ep lstm-backward-nsmc-2ep",
    "lstm-long-fwd-fwd-nsmc-ensemble": "--name lstm-long-fwd-fwd --ensemble lstm-long-nsmc-2ep lstm-long-nsmc-2ep-unfreeze0.1",
    "lstm-longer-nsmc-2ep": "--continue_from runs/nsmc_pretrained/lstm-long-lm --name lstm-longer --pretrain_max_steps 5000 --finetune_epochs 2",
    "lstm-backward-longer-nsmc-2ep": "--continue_from runs/nsmc_pretrained/lstm-backward-lm --name lstm-backward-longer --reading_direction backward --pretrain_max_steps 5000 --finetune_epochs 2",
    "lstm-longer-fwd-bwd-nsmc-ensemble": "--name lstm-longer-fwd-bwd --ensemble lstm-longer-nsmc-2ep lstm-backward-longer-nsmc-2ep",
    "lstm-longer-nsmc-concat-2ep": "--continue_from runs/nsmc_pretrained/lstm-long-lm --name lstm-longer --pretrain_max_steps 5000 --finetune_epochs 2 --pooling concat",
    "lstm-backward-longer-nsmc-concat-2ep": "--continue_from runs/nsmc_pretrained/lstm-backward-lm --name lstm-backward-longer --reading_direction backward --pretrain_max_steps 5000 --finetune_epochs 2 --pooling concat",
    "lstm-longer-fwd-bwd-concat-nsmc-ensemble": "--name lstm-longer-fwd-bwd-concat --ensemble lstm-longer-nsmc-concat-2ep lstm-backward-longer-nsmc-concat-2ep",
    "lstm-backward-longer-nsmc-concat-3ep": "--continue_from runs/nsmc_pretrained/lstm-backward-lm --name lstm-backward-longer --reading_direction backward --pretrain_max_steps 5000 --finetune_epochs 3 --pooling concat",
    "lstm-longer-nsmc-concat-3ep": "--continue_from runs/nsmc_pretrained/lstm-long-lm --name lstm-longer --pretrain_max_steps 5000 --finetune_epochs 3 --pooling concat",
    "lstm-longer-fwd-bwd-concat-3ep-nsmc-ensemble": "--name lstm-longer-fwd-bwd-concat-3ep --ensemble lstm-longer-nsmc-concat-3ep lstm-backward-longer-nsmc-concat-3ep",
    "transformer-nsmc": "--family transformer --pretrain_max_steps 1400",
    "transformer-nsmc-lr0.0002": "--family transformer --pretrain_max_steps 1400 --finetune_learning_rate 2e-4",
    "rnn-tanh-nsmc-scratch": "--family rnn --from_scratch --finetune_epochs 1",
    "bilstm-nsmc-scratch": "--family lstm --bidirectional --from_scratch --finetune_epochs 1",
    "rnn-tanh-nsmc-scratch-last": "--family rnn --from_scratch --pooling last --finetune_epochs 1",
    "lstm-nsmc-scratch-last": "--family lstm --from_scratch --pooling last --finetune_epochs 1",
    "gru-nsmc-scratch": "--family gru --from_scratch --finetune_epochs 1",
    "lstm-nsmc-scratch": "--family lstm --from_scratch --finetune_epochs 1",
    "transformer-nsmc-scratch": "--family transformer --from_scratch --finetune_epochs 1",
}


def recipe_path(stem):
    return os.path.join(RECIPES, f"{stem}.json")


def typed(command):
    return nsmc_recipe.read_args(["--data_dir", "../shared/data", *shlex.split(command)])[1]


def from_recipe(stem, *flags):
    return nsmc_recipe.read_args(["--data_dir", "../shared/data", "--recipe", recipe_path(stem), *flags])[1]


def test_one_recipe_per_row():
    stems = sorted(name.removesuffix(".json") for name in os.listdir(RECIPES) if name.endswith(".json"))
    assert stems == sorted(OLD_COMMANDS)


@pytest.mark.parametrize("stem", sorted(OLD_COMMANDS))
def test_a_recipe_reads_as_its_typed_command(stem):
    old, new = typed(OLD_COMMANDS[stem]), from_recipe(stem)
    recorded = nsmc_recipe.recorded_command(new)
    assert recorded == nsmc_recipe.recorded_command(old)
    # What results.jsonl records, byte for byte: same keys in the same order, 2.0 and not 2.
    assert json.dumps(recorded) == json.dumps(nsmc_recipe.recorded_command(old))
    assert "recipe" not in recorded and "hub_organization" not in recorded
    assert new.recipe == recipe_path(stem)


@pytest.mark.parametrize("stem", sorted(OLD_COMMANDS))
def test_a_recipe_writes_the_card_it_is_named_after(stem):
    args = from_recipe(stem)
    card = nsmc_recipe.ensemble_name(args) if args.ensemble else nsmc_recipe.classifier_name(args)
    assert card == stem


def test_the_command_line_overrides_the_recipe():
    assert from_recipe("lstm-nsmc-2ep").finetune_epochs == 2.0
    assert from_recipe("lstm-nsmc-2ep", "--finetune_epochs", "3").finetune_epochs == 3.0
    # wherever the flag stands: the recipe's flags are read first
    args = nsmc_recipe.read_args(["--finetune_epochs", "3", "--recipe", recipe_path("lstm-nsmc-2ep")])[1]
    assert args.finetune_epochs == 3.0
    assert from_recipe("lstm-fwd-bwd-nsmc-ensemble", "--ensemble", "a", "b", "c").ensemble == ["a", "b", "c"]


@pytest.mark.parametrize(
    "recipe, message",
    [
        ({"familly": "lstm"}, "'familly' is not a flag"),
        ({"recipe": "other.json"}, "not another recipe"),
        ({"from_scratch": "yes"}, "from_scratch is a switch"),
        ({"finetune_epochs": None}, "is not a value a flag takes"),
        ({"finetune_epochs": "two"}, "invalid float value"),
        ({"family": "lstmm"}, "invalid choice"),
        (["--family", "lstm"], "one JSON object of flags"),
    ],
)
def test_a_bad_recipe_is_refused(tmp_path, capsys, recipe, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(recipe), encoding="utf-8")
    with pytest.raises(SystemExit):
        nsmc_recipe.read_args(["--recipe", str(path)])
    assert message in capsys.readouterr().err


def test_a_missing_recipe_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        nsmc_recipe.read_args(["--recipe", str(tmp_path / "none.json")])
    assert "--recipe" in capsys.readouterr().err


def test_a_switch_set_false_stays_off(tmp_path):
    path = tmp_path / "off.json"
    path.write_text(json.dumps({"family": "gru", "from_scratch": False}), encoding="utf-8")
    assert nsmc_recipe.read_args(["--recipe", str(path)])[1].from_scratch is False


@pytest.mark.parametrize(
    "stem, message",
    [
        ("lstm-fwd-bwd-nsmc-ensemble", "no finished classifier folder"),
        ("lstm-long-nsmc-2ep", "not a finished LM folder"),
    ],
)
def test_the_rules_apply_to_a_recipe(tmp_path, monkeypatch, capsys, stem, message):
    monkeypatch.chdir(tmp_path)  # no runs/ here: no finished members, no LM to continue from
    with pytest.raises(SystemExit):
        nsmc_recipe.parse_args(["--data_dir", "data", "--recipe", recipe_path(stem)])
    assert message in capsys.readouterr().err


def test_the_rules_apply_to_a_typed_command(capsys):
    with pytest.raises(SystemExit):
        nsmc_recipe.parse_args(["--data_dir", "data", "--family", "lstm", "--bidirectional"])
    assert "--bidirectional is for recurrent from-scratch classifiers" in capsys.readouterr().err


def test_the_hub_organization_is_named_in_one_place():
    assert nsmc_recipe.hub_id(typed("--family lstm"), "lstm-nsmc") == f"{nsmc_recipe.HUB_ORGANIZATION}/lstm-nsmc"
    assert nsmc_recipe.hub_id(typed("--family lstm --hub_organization me"), "lstm-nsmc") == "me/lstm-nsmc"
    organization = nsmc_recipe.HUB_ORGANIZATION
    for script in ("bench_nsmc_pretrained.py", "nsmc_lineage.py", "nsmc_recipe.py"):
        with open(os.path.join(BENCH, script), encoding="utf-8") as handle:
            source = handle.read()
        assert f"{organization}/" not in source, f"{script} spells out a Hub id"
        assert source.count(f'"{organization}"') == (script == "nsmc_recipe.py"), script  # the constant only


def test_help_runs():
    result = subprocess.run(
        [sys.executable, os.path.join(BENCH, "bench_nsmc_pretrained.py"), "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "--recipe" in result.stdout and "--cards_only" in result.stdout


def test_resume_is_not_recorded_in_the_command():
    for stem in ("lstm-nsmc", "lstm-longer-nsmc-concat-3ep"):
        resumed = from_recipe(stem, "--resume")
        assert resumed.resume is True
        assert nsmc_recipe.recorded_command(resumed) == nsmc_recipe.recorded_command(from_recipe(stem))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--family", "lstm"], "no complete checkpoint in runs/nsmc_pretrained/lstm-lm"),
        (["--family", "transformer"], "rerun a Transformer row from the start"),
        (["--family", "gru", "--from_scratch"], "this run pretrains nothing"),
    ],
)
def test_resume_needs_an_interrupted_recurrent_pretraining(tmp_path, monkeypatch, capsys, flags, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        nsmc_recipe.parse_args(["--data_dir", "data", "--resume", *flags])
    assert message in capsys.readouterr().err


def test_resume_continues_from_the_lm_folder_and_keeps_it(tmp_path, monkeypatch):
    import bench_nsmc_pretrained

    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "runs" / "nsmc_pretrained" / "lstm-lm" / "checkpoint-1000"
    checkpoint.mkdir(parents=True)
    (checkpoint / "checkpoint_complete.json").write_text('{"global_step": 1000}', encoding="utf-8")
    calls = []
    monkeypatch.setattr(
        bench_nsmc_pretrained, "pretrain", lambda training_args, **kwargs: calls.append((training_args, kwargs))
    )
    for flags in ([], ["--resume"]):
        args = nsmc_recipe.parse_args(["--data_dir", "data", "--recipe", recipe_path("lstm-nsmc"), *flags])
        bench_nsmc_pretrained.pretrain_language_model(args, "tokenizer", "reviews")
    (fresh_args, fresh), (resumed_args, resumed) = calls
    assert fresh["overwrite_output_dir"] is True and fresh_args.resume_from_checkpoint is None
    assert resumed["overwrite_output_dir"] is False and resumed_args.resume_from_checkpoint == "latest"
    assert resumed_args.output_dir == os.path.join("runs", "nsmc_pretrained", "lstm-lm")
