"""``python -m gristmill.report RUN_DIR``: (re)write a run's report.html and print its path."""

import sys
from pathlib import Path

from gristmill.report import write_report

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m gristmill.report RUN_DIR")
    print(write_report(Path(sys.argv[1])))
