"""Two CPU processes (gloo) under torchrun: identical parameters on both ranks after training (Trainer and the
TBPTT loop), and evaluation that counts every example exactly once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hf_seq.training import evaluate_model


WORKER = os.path.join(os.path.dirname(__file__), "worker_distributed.py")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIME_LIMIT_SECONDS = 300


def child_pids(parent_pid):
    """PIDs whose parent is parent_pid (torchrun's workers), read from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == parent_pid:
                children.append(int(entry))
    return children


def run_bounded(command, env, timeout):
    """Run torchrun; past the timeout, SIGTERM it (it forwards to its workers), then SIGKILL any worker left."""
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        workers = child_pids(process.pid)
        process.send_signal(signal.SIGTERM)
        time.sleep(3)
        for pid in workers + [process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        output, _ = process.communicate()
        pytest.fail(f"the 2-process run did not finish in {timeout} s:\n{output[-3000:]}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to bound the launched processes")
def test_two_processes_train_identical_parameters_and_evaluate_each_example_once(
    tokenizer_dir, nsmc_dir, text_files, tmp_path
):
    os.makedirs(tmp_path / "classifier")
    (tmp_path / "classifier" / "stale.json").write_text("{}")  # left by another run: the worker overwrites it
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": REPO_ROOT}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        WORKER,
        tokenizer_dir,
        nsmc_dir,
        text_files[0],
        str(tmp_path),
    ]
    returncode, output = run_bounded(command, env, TIME_LIMIT_SECONDS)
    assert returncode == 0, output[-3000:]

    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    # Really two processes of one job (torchrun without CPU forcing would start two separate world-1 runs).
    assert [result["world_size"] for result in results] == [2, 2]
    assert {result["rank"] for result in results} == {0, 1}
    assert results[0]["classifier_digest"] == results[1]["classifier_digest"]
    assert results[0]["lm_digest"] == results[1]["lm_digest"]
    # Emptied once by the main process; each checkpoint marked complete once both ranks had written their part.
    assert not os.path.exists(tmp_path / "classifier" / "stale.json")
    for step in (2, 4):
        checkpoint = tmp_path / "classifier" / f"checkpoint-{step}"
        assert {"rng_state_0.pth", "rng_state_1.pth", "checkpoint_complete.json"} <= set(os.listdir(checkpoint))

    with open(os.path.join(nsmc_dir, "ratings_test.txt"), encoding="utf-8") as handle:
        test_size = len(handle.read().splitlines()) - 1
    single_process = evaluate_model(str(tmp_path / "classifier"), os.path.join(nsmc_dir, "ratings_test.txt"))
    assert single_process["n"] == test_size
    for result in results:
        assert result["classifier_eval_n"] == test_size
        assert result["evaluate_metrics"] == single_process
        assert result["classifier_eval_accuracy"] == single_process["accuracy"]
