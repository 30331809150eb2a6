"""Unit tests of the DataFrame layer (python/sluice/_define): the SQL it renders, and its refusals.
Pure Python; the rendered SQL is also checked by `sluice validate` (test_validate.py)."""
import pathlib
import sys

PYTHON_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(PYTHON_ROOT) not in sys.path:
    sys.path.insert(0, str(PYTHON_ROOT))
