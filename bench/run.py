"""``python bench/run.py [options]``: the same as ``python -m bench [options]``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for `import bench`

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
