"""Run a script in a fresh interpreter where hf_seq cannot be imported, as on a machine without the package."""

import json
import os
import subprocess
import sys
import textwrap


# Marking a module as None in sys.modules makes every `import` of it fail with ImportError.
_BLOCK_HF_SEQ = """
import sys
sys.modules["hf_seq"] = None
sys.modules["tokenizer_training"] = None
try:
    import hf_seq  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("hf_seq is importable: this run would not show that remote code works on its own")
"""


def run_without_hf_seq(script, workdir, extra_env=None, timeout=300, capture_stderr=False):
    """Run `script` in a subprocess (cwd `workdir`) that cannot import hf_seq; return the JSON its last line prints.

    With `capture_stderr`, the returned dict also holds everything else the script printed, under "output". The
    subprocess has no standard input, so a prompt fails instead of waiting.
    """
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update({"HF_HOME": os.path.join(workdir, "hf_home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"})
    env.update(extra_env or {})
    code = _BLOCK_HF_SEQ + textwrap.dedent(script)
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise AssertionError(f"remote-code subprocess failed:\n{result.stdout}\n{result.stderr}")
    *printed, last_line = result.stdout.strip().splitlines()
    answer = json.loads(last_line)
    if capture_stderr:
        answer["output"] = "\n".join(printed) + "\n" + result.stderr
    return answer
