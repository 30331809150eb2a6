"""Run `sluice test` from Python: find the binary, list a folder's fixture cases, run them.

The cases are the tests/*.yaml files beside a pipeline (README.md "Testing pipelines"); the
binary runs them without a broker. The pytest plugin (sluice.pytest_plugin) is built on these.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SluiceFixtureError", "CaseOutcome", "find_binary", "list_cases", "run_case", "run_tests"]

# `sluice test` exit codes: 0 every case passed, 1 a case failed, 2 a bad fixture or command line.
EXIT_FAILED = 1
EXIT_BAD_FIXTURE = 2


class SluiceFixtureError(Exception):
    """A fixture the binary refused (its message names the file and line), or no binary."""


@dataclass
class CaseOutcome:
    id: str
    passed: bool
    output: str  # what `sluice test` printed for the case: PASS/FAIL line, notes and the diff
    returncode: int


def find_binary() -> str:
    """The sluice binary: $SLUICE_BIN, else sluice._binary.find() (the pip package), else PATH."""
    env = os.environ.get("SLUICE_BIN")
    if env:
        if not os.access(env, os.X_OK):
            raise SluiceFixtureError(f"SLUICE_BIN={env} is not an executable file")
        return env
    try:
        binary = importlib.import_module("sluice._binary")
    except ImportError:
        binary = None
    if binary is not None and hasattr(binary, "find"):
        found = binary.find()
        if found:
            return str(found)
    found = shutil.which("sluice")
    if found:
        return found
    raise SluiceFixtureError(
        "no sluice binary: set SLUICE_BIN to its path, install the sluice package, or put sluice on PATH"
    )


def _run(args: list[str], binary: str | None) -> subprocess.CompletedProcess:
    return subprocess.run([binary or find_binary(), "test", *args], capture_output=True, text=True, check=False)


def list_cases(path: str | os.PathLike, *, binary: str | None = None) -> list[str]:
    """The ids (`<file>::<case name>`, the file relative to `path`) of the cases under `path`."""
    done = _run([str(path), "--list"], binary)
    if done.returncode != 0:
        raise SluiceFixtureError(done.stderr.strip() or done.stdout.strip())
    return [line for line in done.stdout.splitlines() if line]


def run_case(path: str | os.PathLike, case_id: str, *, binary: str | None = None) -> CaseOutcome:
    """Runs the case `case_id` of `path`; a fixture the binary refuses raises SluiceFixtureError."""
    done = _run([str(path), "--case", case_id], binary)
    if done.returncode == EXIT_BAD_FIXTURE:
        raise SluiceFixtureError((done.stdout + done.stderr).strip())
    return CaseOutcome(case_id, done.returncode == 0, done.stdout + done.stderr, done.returncode)


def run_tests(
    path: str | os.PathLike,
    *,
    k: str | None = None,
    junit_xml: str | os.PathLike | None = None,
    binary: str | None = None,
) -> subprocess.CompletedProcess:
    """`sluice test path [-k k] [--junit-xml file]`, its output captured; the caller reads returncode."""
    args = [str(path)]
    if k:
        args += ["-k", k]
    if junit_xml:
        args += ["--junit-xml", str(Path(junit_xml))]
    return _run(args, binary)
