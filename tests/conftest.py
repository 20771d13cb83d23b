"""Fixtures shared by every test folder.

A local Hugging Face Hub (tests/support/hub_server.py) starts here, before any test module imports
huggingface_hub or transformers: huggingface_hub reads HF_ENDPOINT and HF_HUB_DISABLE_XET once, at import. Every
Hub call a test makes (on purpose or not) therefore reaches 127.0.0.1, never the internet. HF_HOME is a temporary
folder, so no test reads or writes the user's cache or saved token.
"""

import os
import shutil
import tempfile

import pytest

from tests.support.hub_server import HubServer


# token -> user name, for the local Hub.
HUB_TOKENS = {"hf_alice_token": "alice", "hf_bob_token": "bob"}

_HUB = HubServer(HUB_TOKENS).start()
_HF_HOME = tempfile.mkdtemp(prefix="hf-seq-tests-hf-home-")
os.environ.update(
    {"HF_ENDPOINT": _HUB.url, "HF_HUB_DISABLE_XET": "1", "HF_HOME": _HF_HOME, "HF_HUB_DISABLE_TELEMETRY": "1"}
)
for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.pop(_name, None)


def pytest_unconfigure(config):
    _HUB.stop()
    shutil.rmtree(_HF_HOME, ignore_errors=True)


@pytest.fixture
def hub():
    """The local Hub (`HubServer`; `hub.url` is HF_ENDPOINT), emptied before the test. Tokens: `HUB_TOKENS`."""
    _HUB.reset()
    return _HUB


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run every test on one torch thread: the test models are tiny, and OpenMP threads waiting for each other at
    every operation cost more than they give (on a busy 2-core machine a 25-step Trainer run went from ~3 s to ~30 s).
    Subprocesses the tests launch get OMP_NUM_THREADS=1 for the same reason."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
