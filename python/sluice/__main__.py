"""The `sluice` console script (and `python -m sluice`): the bundled binary with the same
arguments, its exit code and signals its own (exec), SLUICE_PYTHON set to this interpreter."""
from __future__ import annotations

import os
import sys

from sluice import SluiceError, _binary


def main() -> None:
    try:
        binary = _binary.find()
    except SluiceError as e:
        print(f"sluice: error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(binary, [binary, *sys.argv[1:]], _binary.environment())
    except OSError as e:  # not a program for this machine, no permission, ...: say so, no traceback
        print(f"sluice: error: cannot run {binary}: {e.strerror or e}", file=sys.stderr)
        sys.exit(126)


if __name__ == "__main__":
    main()
