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


def run_without_hf_seq(script, workdir, extra_env=None, timeout=300):
    """Run `script` in a subprocess (cwd `workdir`) that cannot import hf_seq; return the JSON its last line prints."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update({"HF_HOME": os.path.join(workdir, "hf_home"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"})
    env.update(extra_env or {})
    code = _BLOCK_HF_SEQ + textwrap.dedent(script)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise AssertionError(f"remote-code subprocess failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])
