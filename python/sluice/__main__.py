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
    os.execve(binary, [binary, *sys.argv[1:]], _binary.environment())


if __name__ == "__main__":
    main()
