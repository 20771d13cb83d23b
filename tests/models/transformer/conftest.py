"""Fixtures for the TransformerLM tests."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run on one thread: the test models are tiny, and on a busy machine OpenMP threads waiting for each other at
    every operation cost more than they give (a 25-step Trainer run went from ~3 s to ~30 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
