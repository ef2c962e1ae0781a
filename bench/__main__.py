"""``python -m bench``: see bench/cli.py and bench/README.md."""

import sys

from .target import apply_target

apply_target(sys.argv[1:])  # before numba is imported (by fastbp, through the cli)

from .cli import main

sys.exit(main())
