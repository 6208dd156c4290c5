"""Entry point of the fresh-process resume: ``python -m benchmarks._child '<job json>'``."""

import sys

from benchmarks.scenarios import child_main

if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
