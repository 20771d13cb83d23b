"""The `hf-seq` command line now lives in the top-level package `hf_seq_cli`, which starts without importing
torch (see its docstring for why it cannot live inside `hf_seq`). This module keeps `python -m hf_seq.cli ...`
(torchrun, accelerate launch) and `from hf_seq.cli import main` working."""

import sys

from hf_seq_cli import COMMANDS, main


__all__ = ["COMMANDS", "main"]

if __name__ == "__main__":
    sys.exit(main())
