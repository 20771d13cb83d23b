"""`python -m hf_seq_cli ...` runs the `hf-seq` command."""

import sys

from hf_seq_cli import main


sys.exit(main())
