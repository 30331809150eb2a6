"""sluice from Python: run and check pipelines, read their Delta tables as Arrow.

    import sluice
    sluice.validate("pipelines/retail")            # the resolved graph, as `sluice validate` prints it
    sluice.graph("pipelines/retail")               # the lineage graph as data (dict)
    sluice.run("pipelines/retail", once=True)      # a triggered run: what Kafka holds now, then stop
    t = sluice.read_table("pipelines/retail/data/tables/orders", columns=["id"], filter="amount > 10")

Every call runs the sluice binary (sluice._binary.find(): the one the wheel bundles); Python only
starts it and reads what it writes (Arrow IPC for tables). A failure raises SluiceError with the
binary's message, its exit code and the file/line/column it names. This module imports nothing
heavy: pyarrow is imported by read_table only (the definer, `python -m sluice._define`, imports
this package too).
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence, Union

from sluice import _binary

__all__ = ["SluiceError", "RunResult", "run", "validate", "graph", "read_table", "version"]

PathLike = Union[str, os.PathLike]

# `<file>:<line>:<col>: error: ...` (SQL, pipeline.yaml) or `<file>:<line>: error: ...`; names in
# angle brackets (`<statement>`, `<expr 1>`) are not files.
_LOCATION = re.compile(r"^(?P<file>[^<\s:][^:\n]*):(?P<line>\d+)(?::(?P<column>\d+))?: (?:error|fatal)\b",
                       re.MULTILINE)


class SluiceError(Exception):
    """The sluice binary refused or failed. `message`: what it said (stderr, or why it could not
    start); `exit_code`: its exit status (None when it did not run); `file`/`line`/`column`: the
    first place its message names (an absolute path), else None; `command`: its argument list."""

    def __init__(self, message: str, *, exit_code: Optional[int] = None, file: Optional[str] = None,
                 line: Optional[int] = None, column: Optional[int] = None,
                 command: Sequence[str] = (), stdout: str = ""):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.file = file
        self.line = line
        self.column = column
        self.command = list(command)
        self.stdout = stdout

    @classmethod
    def _from_process(cls, command: Sequence[str], result: subprocess.CompletedProcess, cwd: str):
        message = (result.stderr or "").strip() or (result.stdout or "").strip() \
            or f"sluice exited with status {result.returncode} and said nothing"
        file = line = column = None
        found = _LOCATION.search(result.stderr or "")
        if found:
            # The binary names files relative to its working directory.
            file = os.path.normpath(os.path.join(cwd, found.group("file")))
            line = int(found.group("line"))
            column = int(found.group("column")) if found.group("column") else None
        return cls(message, exit_code=result.returncode, file=file, line=line, column=column,
                   command=command, stdout=result.stdout or "")


@dataclass
class RunResult:
    """What a finished `sluice run` printed (its progress summary and notices are on stderr)."""
    stdout: str
    stderr: str
    command: list = field(default_factory=list)


def _run(args: Sequence[str], *, timeout: Optional[float] = None,
         env: Optional[dict] = None) -> subprocess.CompletedProcess:
    command = [_binary.find(), *map(str, args)]
    cwd = os.getcwd()
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                env=_binary.environment(env), cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise SluiceError(f"sluice {args[0]} did not finish within {timeout} s (stopped)",
                          command=command) from e
    except OSError as e:
        raise SluiceError(f"cannot start {command[0]}: {e}", command=command) from e
    if result.returncode != 0:
        raise SluiceError._from_process(command, result, cwd)
    return result


def _folder(path: PathLike) -> str:
    return os.fspath(path)


def version() -> str:
    """The version of the sluice binary this package runs (`sluice --version`)."""
    return _run(["--version"]).stdout.split()[-1]


def validate(path: PathLike, *, infer_schemas: bool = False, timeout: Optional[float] = None) -> str:
    """Checks the pipeline folder's SQL and Python (no broker unless infer_schemas) and returns the
    resolved graph as `sluice validate` prints it. Raises SluiceError naming the file and line."""
    args = ["validate", _folder(path)]
    if infer_schemas:
        args.append("--infer-schemas")
    return _run(args, timeout=timeout).stdout


def graph(path: PathLike, *, timeout: Optional[float] = None) -> dict:
    """The pipeline's lineage graph as data: `sluice graph --format json` parsed (datasets with
    their kind, file, line, columns and the columns each comes from; flows; sources)."""
    out = _run(["graph", _folder(path), "--format", "json"], timeout=timeout).stdout
    return json.loads(out)


def run(path: PathLike, once: bool = True, full_refresh: Union[bool, Iterable[str]] = False, *,
        bootstrap_servers: Optional[str] = None, timeout: Optional[float] = None,
        env: Optional[dict] = None) -> RunResult:
    """Runs the pipeline folder. once=True (default): a triggered run, everything available at
    start, then return; once=False: continuous, until the process is stopped (or `timeout`, which
    stops it and raises). full_refresh: True resets every streaming table, a list of names those
    tables. bootstrap_servers overrides every Kafka cluster's. Raises SluiceError on failure."""
    args = ["run", _folder(path), "--progress", "never"]
    if once:
        args.append("--once")
    if bootstrap_servers is not None:
        args += ["--bootstrap-servers", bootstrap_servers]
    if full_refresh is True:
        args.append("--full-refresh")
    elif full_refresh is not False and full_refresh is not None:
        if isinstance(full_refresh, (str, bytes)):
            raise TypeError("full_refresh: True (every streaming table) or a list of table names, "
                            f"not the string {full_refresh!r} (write [{full_refresh!r}])")
        names = [str(n) for n in full_refresh]
        if not names:
            raise ValueError("full_refresh: an empty list resets nothing; pass False, True or names")
        # Last: the option takes every value after it.
        args += ["--full-refresh", *names]
    result = _run(args, timeout=timeout, env=env)
    return RunResult(stdout=result.stdout, stderr=result.stderr, command=list(args))


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def read_table(path_or_uri: PathLike, version: Optional[int] = None,
               columns: Optional[Sequence[str]] = None, filter: Optional[str] = None):
    """A Delta table (a folder holding _delta_log, or an s3://, gs://, az:// URI) as a
    pyarrow.Table, read by the sluice engine. version: time travel to that table version (None:
    the latest). columns: these columns, in this order (None: all). filter: a SQL predicate in
    sluice's dialect (`amount > 10 AND country = 'NL'`); the rows where it is true.
    Raises SluiceError when the table, version, column or predicate is not there or wrong."""
    import pyarrow as pa
    import pyarrow.ipc

    location = os.fspath(path_or_uri)
    if columns is not None:
        if isinstance(columns, (str, bytes)):
            raise TypeError(f"columns: a list of column names, not the string {columns!r}")
        columns = [str(c) for c in columns]
        if not columns:
            raise ValueError("columns: an empty list selects nothing; pass None for every column")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 0):
        raise ValueError(f"version: a table version (an int >= 0), not {version!r}")
    with tempfile.TemporaryDirectory(prefix="sluice-read-") as tmp:
        out = pathlib.Path(tmp) / "rows.arrow"
        if version is None:
            # One query: the engine skips files by partition values and statistics of the filter.
            select = ", ".join(_quote(c) for c in columns) if columns else "*"
            statement = f"SELECT {select} FROM delta.{_quote(location)}"
            if filter is not None:
                statement += f" WHERE ({filter})"
            _run(["sql", location, statement, "--output", out, "--format", "json", "--limit", "0"])
            return _read_ipc(pa, out)
        # Time travel: `sluice table export --version` (`sluice sql` has no VERSION AS OF), then
        # the predicate evaluated by the engine over those rows (`sluice eval`).
        _run(["table", "export", location, out, "--version", str(version)])
        table = _read_ipc(pa, out)
        if filter is not None:
            mask_file = pathlib.Path(tmp) / "mask.arrow"
            _run(["eval", "--input", out, "--output", mask_file, "--expr", filter])
            mask = _read_ipc(pa, mask_file).column(0)
            if not pa.types.is_boolean(mask.type):
                raise SluiceError(f"filter {filter!r} is not a predicate: it gives {mask.type}, not BOOLEAN")
            table = table.filter(mask, null_selection_behavior="drop")
        if columns is not None:
            missing = [c for c in columns if c not in table.column_names]
            if missing:
                raise SluiceError(f"{location} (version {version}) has no column(s) "
                                  f"{', '.join(missing)}; it has: {', '.join(table.column_names)}")
            table = table.select(columns)
        return table


def _read_ipc(pa, path: pathlib.Path):
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).read_all()
