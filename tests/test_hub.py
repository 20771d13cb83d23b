"""hf_seq.hub: push a saved model to a (local, real-HTTP) Hub and load it back by repo id.

The `hub` fixture (tests/conftest.py) is a stdlib HTTP server speaking the Hub API; HF_ENDPOINT points at it, so
the real huggingface_hub client, `from_pretrained` and `AutoTokenizer` run unchanged.
"""

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard, close_session
from huggingface_hub.errors import RepositoryNotFoundError
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

import hf_seq
from hf_seq.cli import main as cli_main
from hf_seq.hub import PushError, collect_model_files, push_model
from tests.conftest import HUB_TOKENS
from tests.support.hub_server import HubServer
from tests.support.remote_code import run_without_hf_seq


ALICE, BOB = "hf_alice_token", "hf_bob_token"
SAMPLE = Path(hf_seq.__file__).parent / "sample_data" / "reviews_sample_train.txt"
INPUT_IDS = torch.tensor([[2, 5, 17, 9, 33, 4, 12, 40]])


def _train_tokenizer(lines: list[str]) -> PreTrainedTokenizerFast:
    """A small BPE tokenizer, built with the tokenizers library directly (ids 0-3: <pad> <unk> <s> </s>)."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=300, limit_alphabet=150, special_tokens=["<pad>", "<unk>", "<s>", "</s>"], show_progress=False
    )
    backend.train_from_iterator(lines, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def _save_run(model_dir: Path, seed: int, tokenizer: PreTrainedTokenizerFast) -> None:
    """A tiny LSTM LM saved as the training pipeline would: weights, code, tokenizer and run data."""
    torch.manual_seed(seed)
    config = hf_seq.LSTMConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=16, num_hidden_layers=2)
    hf_seq.LSTMForCausalLM(config).eval().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    log_history = [{"step": 10, "loss": 5.2}, {"step": 20, "loss": 4.8}, {"step": 20, "eval_loss": 4.9}]
    (model_dir / "trainer_state.json").write_text(
        json.dumps(
            {
                "log_history": log_history,
                "train_batch_size": 8,
                "num_train_epochs": 1,
                "max_steps": 20,
                "global_step": 20,
            }
        )
    )
    (model_dir / "run_info.json").write_text(
        json.dumps(
            {
                "datasets": [{"name": "reviews_lm sample", "details": "6,000 shipped Korean reviews"}],
                "hyperparameters": {"learning_rate": 0.002},
                "language": "ko",
            }
        )
    )
    (model_dir / "training_args.bin").write_bytes(b"pickled TrainingArguments")  # never published


@pytest.fixture(scope="module")
def tokenizer():
    return _train_tokenizer(SAMPLE.read_text(encoding="utf-8").splitlines()[:300])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    path = tmp_path_factory.mktemp("run") / "tiny-lstm"
    _save_run(path, seed=0, tokenizer=tokenizer)
    return path


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(INPUT_IDS).logits


def _folder_fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_push_then_load_by_repo_id(hub, model_dir, tokenizer):
    result = push_model(model_dir, "alice/tiny-lstm", token=ALICE)

    main_files = hub.files("alice/tiny-lstm")
    assert set(main_files) == {".gitattributes", *result.files}
    for name in (
        "model.safetensors",
        "config.json",
        "modeling_recurrent.py",
        "configuration_recurrent.py",
        "cache_recurrent.py",
        "tokenizer.json",
        "README.md",
        "loss_curve.png",
        "trainer_state.json",
    ):
        assert name in main_files
    assert "training_args.bin" not in main_files
    assert main_files["model.safetensors"] == (model_dir / "model.safetensors").read_bytes()
    # Everything arrived in one commit on top of the repo's initial one.
    commits = HfApi().list_repo_commits("alice/tiny-lstm")
    assert [c.commit_id for c in commits][0] == result.commit_oid and len(commits) == 2

    loaded = AutoModelForCausalLM.from_pretrained("alice/tiny-lstm")
    assert type(loaded) is hf_seq.LSTMForCausalLM
    torch.testing.assert_close(
        _logits(loaded), _logits(hf_seq.LSTMForCausalLM.from_pretrained(model_dir)), rtol=0, atol=0
    )

    remote_tokenizer = AutoTokenizer.from_pretrained("alice/tiny-lstm")
    texts = SAMPLE.read_text(encoding="utf-8").splitlines()[300:310]
    assert remote_tokenizer.get_vocab() == tokenizer.get_vocab()
    assert remote_tokenizer(texts)["input_ids"] == tokenizer(texts)["input_ids"]
    assert remote_tokenizer.special_tokens_map == tokenizer.special_tokens_map


def test_remote_code_loads_where_hf_seq_cannot_be_imported(hub, model_dir, tmp_path):
    push_model(model_dir, "alice/remote-lstm", token=ALICE)
    script = f"""
        import json
        import torch
        from transformers import AutoModelForCausalLM
        model = AutoModelForCausalLM.from_pretrained("alice/remote-lstm", trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(torch.tensor({INPUT_IDS.tolist()})).logits
        print(json.dumps({{"module": type(model).__module__, "logits": logits.tolist()}}))
    """
    output = run_without_hf_seq(script, str(tmp_path), extra_env={"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"})
    assert output["module"].startswith("transformers_modules")
    expected = _logits(hf_seq.LSTMForCausalLM.from_pretrained(model_dir))
    torch.testing.assert_close(torch.tensor(output["logits"]), expected, rtol=0, atol=1e-6)


def test_push_to_a_branch_leaves_main_unchanged(hub, model_dir, tokenizer, tmp_path):
    push_model(model_dir, "alice/branchy", token=ALICE)
    main_head = hub.repo("alice/branchy").branches["main"]
    main_files = hub.files("alice/branchy")

    retrained = tmp_path / "retrained"
    _save_run(retrained, seed=1, tokenizer=tokenizer)
    result = push_model(retrained, "alice/branchy", token=ALICE, revision="experiment")

    assert result.revision == "experiment"
    assert hub.repo("alice/branchy").branches["main"] == main_head
    assert hub.files("alice/branchy") == main_files
    on_branch_files = hub.files("alice/branchy", "experiment")
    assert on_branch_files["model.safetensors"] == (retrained / "model.safetensors").read_bytes()
    on_branch = AutoModelForCausalLM.from_pretrained("alice/branchy", revision="experiment")
    on_main = AutoModelForCausalLM.from_pretrained("alice/branchy")
    torch.testing.assert_close(_logits(on_branch), _logits(hf_seq.LSTMForCausalLM.from_pretrained(retrained)))
    assert not torch.equal(_logits(on_branch), _logits(on_main))


def test_private_repo_is_invisible_without_the_token(hub, model_dir):
    push_model(model_dir, "alice/secret", token=ALICE, private=True)

    assert hub.repo("alice/secret").private
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=False).model_info("alice/secret")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=BOB).model_info("alice/secret")
    with pytest.raises(OSError, match="alice/secret"):
        AutoModelForCausalLM.from_pretrained("alice/secret", token=False)
    assert isinstance(AutoModelForCausalLM.from_pretrained("alice/secret", token=ALICE), hf_seq.LSTMForCausalLM)


def test_private_push_to_an_existing_public_repo_is_refused(hub, model_dir):
    push_model(model_dir, "alice/public", token=ALICE)
    head = hub.repo("alice/public").branches["main"]
    with pytest.raises(PushError, match="alice/public already exists and is public"):
        push_model(model_dir, "alice/public", token=ALICE, private=True)
    assert hub.repo("alice/public").branches["main"] == head


def test_bad_token_is_refused_with_401(hub, model_dir):
    with pytest.raises(PushError, match=r"refused the token \(401 Unauthorized\).*alice/nope") as error:
        push_model(model_dir, "alice/nope", token="hf_not_a_real_token")
    assert "hf_not_a_real_token" not in str(error.value)
    assert hub.repos == {}


def test_writing_to_another_namespace_is_refused_with_403(hub, model_dir):
    with pytest.raises(PushError, match=r"may not write to alice/bobs-attempt \(403 Forbidden\)"):
        push_model(model_dir, "alice/bobs-attempt", token=BOB)
    assert hub.repos == {}


def test_server_stopping_mid_push_gives_a_clear_error_and_keeps_the_folder(model_dir):
    before = _folder_fingerprint(model_dir)
    with HubServer(HUB_TOKENS) as dying_hub:
        dying_hub.stop_on_next_commit = True
        with pytest.raises(PushError, match="lost the connection to the Hub .* alice/interrupted"):
            push_model(model_dir, "alice/interrupted", token=ALICE, endpoint=dying_hub.url)
        # Nothing was committed: main still holds only the repo's initial commit.
        assert set(dying_hub.files("alice/interrupted")) == {".gitattributes"}
        # The Hub is gone now: a new push (from a fresh HTTP session, as in a new process) cannot connect at all.
        close_session()
        with pytest.raises(PushError, match="could not reach the Hub .* nothing was committed"):
            push_model(model_dir, "alice/interrupted", token=ALICE, endpoint=dying_hub.url)
    assert _folder_fingerprint(model_dir) == before


def test_token_is_never_written_or_logged(hub, model_dir, monkeypatch, caplog, capsys):
    monkeypatch.setenv("HF_TOKEN", ALICE)
    before = _folder_fingerprint(model_dir)
    with caplog.at_level(logging.DEBUG):
        result = push_model(model_dir, "alice/no-leak")
        assert cli_main(["push", "--model", str(model_dir), "--repo_id", "alice/no-leak", "--revision", "cli"]) == 0

    assert any("alice/no-leak" in record.getMessage() for record in caplog.records)  # logging did happen
    assert ALICE not in caplog.text
    captured = capsys.readouterr()
    assert "alice/no-leak" in captured.out and ALICE not in captured.out + captured.err
    assert ALICE not in str(result.card)
    for branch in ("main", "cli"):
        for name, content in hub.files("alice/no-leak", branch).items():
            assert ALICE.encode() not in content, name
    assert not any(ALICE in path for _, path in hub.requests)
    assert _folder_fingerprint(model_dir) == before  # the push wrote nothing into the saved folder


def test_a_folder_holding_the_token_is_not_pushed(hub, model_dir, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(model_dir, leaky)
    run_info = json.loads((leaky / "run_info.json").read_text())
    (leaky / "run_info.json").write_text(json.dumps({**run_info, "hub_token": ALICE}))
    with pytest.raises(PushError, match=r"\['run_info.json'\] contain\(s\) your access token"):
        push_model(leaky, "alice/leaky", token=ALICE)
    assert hub.repos == {}


def test_cli_push_errors_are_clear(hub, model_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(SystemExit, match="hf-seq push: error: .*401 Unauthorized"):
        cli_main(["push", "--model", str(model_dir), "--repo_id", "alice/cli"])
    with pytest.raises(SystemExit, match="does not exist"):
        cli_main(["push", "--model", str(tmp_path / "missing"), "--repo_id", "alice/cli"])
    assert hub.repos == {}


def test_dry_run_lists_files_and_card_without_contacting_the_hub(hub, model_dir, capsys):
    result = push_model(model_dir, "alice/dry", dry_run=True)
    assert result.commit_oid is None and hub.requests == []
    assert "README.md" in result.files and "training_args.bin" not in result.files
    assert any(s.startswith("training_args.bin") for s in result.skipped)
    assert cli_main(["push", "--model", str(model_dir), "--repo_id", "alice/dry", "--dry_run"]) == 0
    assert "# dry" in capsys.readouterr().out and hub.requests == []


@pytest.mark.parametrize(
    "damage, error, message",
    [
        (lambda d: (d / "model.safetensors").unlink(), FileNotFoundError, "no model.safetensors"),
        (lambda d: (d / "cache_recurrent.py").unlink(), FileNotFoundError, "lacks cache_recurrent.py"),
        (lambda d: (d / "config.json").unlink(), FileNotFoundError, "no config.json"),
        (
            lambda d: (d / "config.json").write_text(
                json.dumps({k: v for k, v in json.loads((d / "config.json").read_text()).items() if k != "auto_map"})
            ),
            ValueError,
            "no auto_map",
        ),
    ],
    ids=["no-weights", "missing-code-import", "no-config", "no-auto-map"],
)
def test_unpublishable_folders_are_refused_before_any_upload(hub, model_dir, tmp_path, damage, error, message):
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    damage(broken)
    with pytest.raises(error, match=message):
        push_model(broken, "alice/broken", token=ALICE)
    assert hub.requests == []


def validate_on_the_hub(card):
    """`ModelCard.validate()`: the Hub's /api/validate-yaml. huggingface_hub before 2.2 posts it to huggingface.co
    whatever HF_ENDPOINT says, so the request is made here as 2.2 makes it, to the local Hub."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session, hf_raise_for_status

    body = {"repoType": "model", "content": str(card)}
    response = get_session().post(
        f"{constants.ENDPOINT}/api/validate-yaml", json=body, headers={"Accept": "text/plain"}
    )
    hf_raise_for_status(response)


def test_pushed_card_validates_and_reads_back(hub, model_dir):
    push_model(model_dir, "alice/carded", token=ALICE, license="apache-2.0")
    card = ModelCard.load("alice/carded")
    validate_on_the_hub(card)
    assert card.data.license == "apache-2.0" and card.data.language == "ko"
    assert card.data.pipeline_tag == "text-generation" and card.data.library_name == "transformers"
    assert hub.files("alice/carded")["loss_curve.png"].startswith(b"\x89PNG")
    assert "![Training and evaluation loss](loss_curve.png)" in card.text
    # This run named no Hub dataset, so no dataset or model-index metadata is claimed.
    assert card.data.datasets is None and card.data.eval_results is None
    assert f"{hf_seq.LSTMForCausalLM.from_pretrained(model_dir).num_parameters():,}" in card.text


def test_invalid_license_is_rejected_by_the_hub(hub, model_dir):
    with pytest.raises(PushError, match="rejected the model card metadata"):
        push_model(model_dir, "alice/badlicense", token=ALICE, license="not-a-license")
    assert set(hub.files("alice/badlicense")) == {".gitattributes"}


def test_collect_model_files_skips_pickles_and_checkpoints(model_dir, tmp_path):
    folder = tmp_path / "with-checkpoints"
    shutil.copytree(model_dir, folder)
    (folder / "checkpoint-10").mkdir()
    (folder / "optimizer.pt").write_bytes(b"x")
    files, skipped = collect_model_files(folder)
    names = {path.name for path in files}
    assert {"model.safetensors", "config.json", "modeling_recurrent.py", "tokenizer.json"} <= names
    assert not names & {"optimizer.pt", "training_args.bin", "checkpoint-10"}
    assert {entry.split(" ")[0] for entry in skipped} == {"optimizer.pt", "training_args.bin", "checkpoint-10/"}
