"""Publishing a trained model on the Hugging Face Hub: weights, tokenizer, modelling code and card in one commit.

`push_model(model_dir, repo_id)` takes a folder written by `save_pretrained` (plus what the training pipeline wrote
next to it), renders a model card from that run data (`hf_seq.model_card`), and uploads everything with one
`HfApi.create_commit`, so the repo never holds weights without their code or card. Because the folder holds the
modelling code listed in `config.json`'s `auto_map`, `from_pretrained(repo_id, trust_remote_code=True)` works
where hf-seq is not installed.

The token comes from the `token` argument, `HF_TOKEN` or `hf auth login`, exactly as for huggingface_hub. It is
only ever sent in the Authorization header: it is not logged, not written anywhere, and a push is refused if any
file about to be uploaded contains it. Nothing is written into the local folder.
"""

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import validate_repo_id

from .model_card import LOSS_CURVE_FILE, plot_loss_curve, read_run_data, render_model_card


logger = logging.getLogger(__name__)

# Pickled files are never pushed: the weights go as safetensors, pickles run code when loaded, and Trainer's
# training_args.bin could hold the hub token a run was given.
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
_RELATIVE_IMPORT = re.compile(r"^\s*from\s+\.(\w+)\s+import\s", flags=re.MULTILINE)


class PushError(RuntimeError):
    """The Hub refused or failed a push; the message names the repo and the reason, never the token."""


@dataclass
class PushResult:
    """What was (or, for a dry run, would be) pushed."""

    repo_id: str
    revision: str
    files: list[str]  # paths in the repo, README.md (the card) included
    card: ModelCard
    commit_oid: str | None = None  # None for a dry run
    commit_url: str | None = None
    skipped: list[str] = field(default_factory=list)  # local files left out, with the reason


def _network_errors() -> tuple[type[Exception], ...]:
    """Exceptions for a lost connection, from the HTTP library huggingface_hub uses (httpx2 from 2.x, httpx before)."""
    errors: list[type[Exception]] = [ConnectionError]
    for module_name in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module_name).TransportError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def collect_model_files(model_dir: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """The files of `model_dir` to upload, and the ones left out (with why). Checks the folder is publishable.

    Raises FileNotFoundError / ValueError naming what is missing: config.json, safetensors weights, or a code
    file that `auto_map` or another code file needs for `trust_remote_code=True` loading.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"model folder {model_dir} does not exist (or is not a folder)")
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir} holds no config.json: is it a folder written by save_pretrained?")

    files, skipped = [], []
    for path in sorted(model_dir.iterdir()):
        if path.name.startswith("."):
            skipped.append(f"{path.name} (hidden)")
        elif path.is_dir():
            skipped.append(f"{path.name}/ (sub-folders such as Trainer checkpoints are not published)")
        elif path.suffix in PICKLE_SUFFIXES:
            skipped.append(f"{path.name} (pickle: only safetensors weights are published)")
        elif path.name in ("README.md", LOSS_CURVE_FILE):
            skipped.append(f"{path.name} (replaced by the card rendered from the run data)")
        else:
            files.append(path)
    names = {path.name for path in files}

    index_name = "model.safetensors.index.json"
    if index_name in names:
        shards = set(json.loads((model_dir / index_name).read_text())["weight_map"].values())
        missing = sorted(shards - names)
        if missing:
            raise FileNotFoundError(f"{model_dir}: {index_name} lists weight shards that are missing: {missing}")
    elif "model.safetensors" not in names:
        pickled = [s.split(" ")[0] for s in skipped if "pickle" in s]
        hint = f" (found {pickled}: re-save with save_pretrained to get safetensors)" if pickled else ""
        raise FileNotFoundError(f"{model_dir} holds no model.safetensors weights{hint}")

    # The code `trust_remote_code=True` loads: every module auto_map names and every module those import.
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    auto_map = config.get("auto_map")
    if not auto_map:
        raise ValueError(
            f"{model_dir}/config.json has no auto_map: save the model with hf_seq imported so that "
            "save_pretrained writes the modelling code and its auto_map next to the weights"
        )
    # An auto_map value is "module.Class" ("repo--module.Class" for code in another repo), or a list of them
    # (tokenizers: [slow, fast], either may be null).
    references = [r for value in auto_map.values() for r in (value if isinstance(value, list) else [value]) if r]
    needed = {reference.split("--")[-1].rsplit(".", 1)[0] + ".py" for reference in references}
    checked = set()
    while needed - checked:
        module = sorted(needed - checked)[0]
        checked.add(module)
        if module not in names:
            raise FileNotFoundError(
                f"{model_dir} lacks {module}, which trust_remote_code loading needs "
                f"(named by config.json's auto_map or imported by another code file)"
            )
        needed |= {f"{name}.py" for name in _RELATIVE_IMPORT.findall((model_dir / module).read_text(encoding="utf-8"))}
    return files, skipped


def push_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    license: str | None = None,
    language: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
    dry_run: bool = False,
) -> PushResult:
    """Push the model saved in `model_dir` to `repo_id`: weights, tokenizer, code, run data and card, in one commit.

    Args:
        model_dir: folder written by `save_pretrained` (config.json with auto_map, model.safetensors, the code
            files; tokenizer files and run data such as trainer_state.json / run_info.json when present).
        repo_id: `"namespace/name"`; a bare `"name"` goes to the token owner's namespace.
        private: create the repo private. An existing public repo is not pushed to with `private=True`.
        revision: branch to commit to (created from main if missing); `None` means main.
        token: Hub token; defaults to `HF_TOKEN` or the one saved by `hf auth login`.
        license, language: card metadata, overriding run_info.json's (nothing is filled in when neither has one).
        commit_message: defaults to a summary of the model.
        endpoint: Hub URL; defaults to `HF_ENDPOINT` or https://huggingface.co.
        dry_run: render the card and list the files without contacting the Hub.

    Raises:
        FileNotFoundError / ValueError: the folder or the arguments cannot make a publishable model.
        PushError: the Hub refused the push (bad token, no write access, invalid card, ...) or the connection was
            lost. The local folder is never modified.
    """
    files, skipped = collect_model_files(model_dir)
    if revision is not None and not revision.strip():
        raise ValueError("revision must be a branch name or None (for main)")
    branch = revision or "main"

    token = token or get_token()
    if not dry_run and not token:
        raise PushError("no Hugging Face token: set HF_TOKEN or run `hf auth login` before pushing")
    api = HfApi(endpoint=endpoint, token=token, library_name="hf-seq")

    network_errors = _network_errors()
    try:
        # whoami first: a bad token fails here with a clear 401, before anything is created.
        user = None if dry_run else api.whoami()["name"]
        if "/" not in repo_id and user:
            repo_id = f"{user}/{repo_id}"
        validate_repo_id(repo_id)

        run = read_run_data(model_dir)
        loss_curve = plot_loss_curve(run.log_history)
        card = render_model_card(
            run, repo_id, license=license, language=language, loss_curve_file=LOSS_CURVE_FILE if loss_curve else None
        )
        uploads = {path.name: path.read_bytes() for path in files}
        uploads["README.md"] = str(card).encode("utf-8")
        if loss_curve:
            uploads[LOSS_CURVE_FILE] = loss_curve
        if token:
            leaking = sorted(name for name, content in uploads.items() if token.encode() in content)
            if leaking:
                raise PushError(f"refusing to push to {repo_id}: {leaking} contain(s) your access token")
        result = PushResult(repo_id=repo_id, revision=branch, files=sorted(uploads), card=card, skipped=skipped)
        if dry_run:
            return result

        api.create_repo(repo_id, private=private, exist_ok=True)
        if private and not api.repo_info(repo_id).private:
            raise PushError(
                f"{repo_id} already exists and is public: refusing to push with private=True "
                "(make the repo private on the Hub first, or push without private)"
            )
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        logger.info("pushing %d files to %s (branch %s) as %s", len(uploads), repo_id, branch, user)
        commit = api.create_commit(
            repo_id,
            [CommitOperationAdd(path_in_repo=name, path_or_fileobj=content) for name, content in uploads.items()],
            commit_message=commit_message or f"Upload {run.family} {run.architecture} with hf-seq",
            commit_description="Files: " + ", ".join(sorted(uploads)),
            revision=branch,
        )
    except PushError:
        raise
    except HfHubHTTPError as error:
        raise _explain_http_error(error, repo_id, branch, api.endpoint) from error
    except network_errors as error:
        # A refused connection sent nothing; a connection lost mid-request may have lost only the answer.
        if "ConnectError" in type(error).__name__ or isinstance(error, ConnectionRefusedError):
            outcome = f"could not reach the Hub at {api.endpoint} to push to {repo_id}"
            aftermath = "nothing was committed"
        else:
            outcome = f"lost the connection to the Hub at {api.endpoint} while pushing to {repo_id}"
            aftermath = "the commit may or may not have been made: check the repo, then push again"
        raise PushError(
            f"{outcome} ({type(error).__name__}: {error}). The local folder {model_dir} is unchanged; {aftermath}."
        ) from error
    except ValueError as error:
        if "Invalid metadata in README.md" in str(error):  # raised by the Hub's /api/validate-yaml check
            raise PushError(f"the Hub rejected the model card metadata for {repo_id}: {error}") from error
        raise
    logger.info("pushed %s: %s", repo_id, commit.commit_url)
    result.commit_oid, result.commit_url = commit.oid, commit.commit_url
    return result


def _explain_http_error(error: HfHubHTTPError, repo_id: str, branch: str, endpoint: str) -> PushError:
    status = error.response.status_code if error.response is not None else None
    server_message = f": {error.server_message}" if getattr(error, "server_message", None) else ""
    if status == 401:
        return PushError(
            f"the Hub at {endpoint} refused the token (401 Unauthorized) while pushing to {repo_id}: "
            "check HF_TOKEN or run `hf auth login` again"
        )
    if status == 403:
        return PushError(
            f"the token may not write to {repo_id} (403 Forbidden){server_message}. Push to your own "
            "namespace or ask its owner for write access"
        )
    if isinstance(error, RevisionNotFoundError):
        return PushError(f"branch {branch!r} of {repo_id} was not found (404){server_message}")
    if isinstance(error, RepositoryNotFoundError):
        return PushError(f"{repo_id} was not found or is not visible with this token (404)")
    return PushError(f"the Hub at {endpoint} answered {status} while pushing to {repo_id}{server_message}")
