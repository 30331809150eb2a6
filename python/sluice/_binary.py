"""Where the sluice binary is, and how it is started from Python.

The wheel bundles it at sluice/_bin/sluice (its shared libraries in sluice/_lib, found through its
RUNPATH); elsewhere none is bundled, so the binary is then the one env SLUICE_BIN names, else, in
a `make install` layout (<prefix>/share/sluice/python/sluice), <prefix>/bin/sluice, else the
source checkout's build/sluice (`make build`).
"""
from __future__ import annotations

import os
import pathlib
import sys

_PACKAGE = pathlib.Path(__file__).resolve().parent
BUNDLED = _PACKAGE / "_bin" / "sluice"
_CHECKOUT_BUILD = _PACKAGE.parent.parent / "build" / "sluice"
# `make install PREFIX=p` puts this package at p/share/sluice/python/sluice, the binary at p/bin/sluice.
_INSTALLED = (_PACKAGE.parents[3] / "bin" / "sluice"
              if len(_PACKAGE.parents) > 3 and _PACKAGE.parent.name == "python"
              and _PACKAGE.parents[1].name == "sluice" and _PACKAGE.parents[2].name == "share" else None)


def _executable(path: pathlib.Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find() -> str:
    """The path of the sluice binary: the bundled one, else env SLUICE_BIN, else <prefix>/bin/sluice
    of a `make install` layout, else the source checkout's build/sluice. Raises sluice.SluiceError naming what was tried when none is there."""
    if _executable(BUNDLED):
        return str(BUNDLED)
    named = os.environ.get("SLUICE_BIN")
    if named:
        if _executable(pathlib.Path(named)):
            return named
        from sluice import SluiceError
        raise SluiceError(f"SLUICE_BIN={named} is not an executable file: point it at a built sluice "
                          "(build/sluice after `make build`) or unset it")
    if _INSTALLED is not None:
        if _executable(_INSTALLED):
            return str(_INSTALLED)
        from sluice import SluiceError
        raise SluiceError(f"no sluice binary: this package is installed under {_PACKAGE.parents[3]} "
                          f"(make install), but {_INSTALLED} is not an executable file; install again "
                          "or set SLUICE_BIN")
    if _executable(_CHECKOUT_BUILD):
        return str(_CHECKOUT_BUILD)
    from sluice import SluiceError
    raise SluiceError(f"no sluice binary: none bundled at {BUNDLED} (install the package with "
                      f"`pip install .` from the repository), SLUICE_BIN is not set, and "
                      f"{_CHECKOUT_BUILD} is not built (`make build`)")


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The binary's environment: `base` (default os.environ) with SLUICE_PYTHON, the interpreter
    that runs a pipeline's .py files, set to this one unless the caller chose another. This one
    imports this package, so the definer (sluice._define) it runs is the one installed beside the
    binary."""
    env = dict(os.environ if base is None else base)
    env.setdefault("SLUICE_PYTHON", sys.executable)
    return env
