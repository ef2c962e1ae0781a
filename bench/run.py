"""``python bench/run.py [options]``: the same as ``python -m bench [options]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for `import bench`

from bench.target import apply_target

if __name__ == "__main__":
    apply_target(sys.argv[1:])  # before numba is imported (by fastbp, through the cli)
    from bench.cli import main

    sys.exit(main())
