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
import signal
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
    """What a finished `sluice run` printed (its progress summary and notices are on stderr).
    stopped: True when run(timeout=...) stopped a continuous run at its timeout (SIGTERM: the
    update in progress committed what it had read); returncode: the binary's exit status."""
    stdout: str
    stderr: str
    command: list = field(default_factory=list)
    stopped: bool = False
    returncode: int = 0


# How long a stopped sluice (SIGTERM) may take to commit its update and exit before it is killed.
STOP_GRACE_SECONDS = 30.0


def _stop(process: subprocess.Popen, grace: float):
    """SIGTERM (sluice ends cleanly: the update in progress commits), then SIGKILL if it has not
    exited within `grace` seconds. Returns (stdout, stderr, killed)."""
    process.terminate()
    try:
        out, err = process.communicate(timeout=grace)
        return out, err, False
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        return out, err, True
    except BaseException:  # a second Ctrl-C while it stops: do not wait, never leave it running
        process.kill()
        process.wait()
        raise


def _run(args: Sequence[str], *, timeout: Optional[float] = None, env: Optional[dict] = None,
         stop_at_timeout: bool = False) -> subprocess.CompletedProcess:
    """Runs the binary with `args`. At `timeout` (or on KeyboardInterrupt) it is stopped with
    SIGTERM, killed only if it does not exit within STOP_GRACE_SECONDS; a timeout then raises
    SluiceError, unless stop_at_timeout (a continuous run: stopping it is how it ends), when the
    result has .stopped = True. KeyboardInterrupt is raised again once the binary has exited."""
    command = [_binary.find(), *map(str, args)]
    cwd = os.getcwd()
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=_binary.environment(env), cwd=cwd)
    except OSError as e:
        raise SluiceError(f"cannot start {command[0]}: {e}", command=command) from e
    stopped = False
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err, killed = _stop(process, STOP_GRACE_SECONDS)
        if killed or not stop_at_timeout:
            how = (f"killed: it did not exit within {STOP_GRACE_SECONDS:g} s of SIGTERM" if killed
                   else "stopped with SIGTERM")
            raise SluiceError(f"sluice {args[0]} did not finish within {timeout} s ({how})",
                              exit_code=process.returncode, command=command, stdout=out or "") from None
        stopped = True
    except BaseException as e:  # KeyboardInterrupt (or another exception in this thread): stop it cleanly
        _, _, killed = _stop(process, STOP_GRACE_SECONDS)
        if hasattr(e, "add_note"):  # Python 3.11+
            e.add_note(f"sluice {args[0]} was stopped with SIGTERM{' and killed' if killed else ''}: "
                       f"exit status {process.returncode}")
        raise
    result = subprocess.CompletedProcess(command, process.returncode, out, err)
    result.stopped = stopped
    if result.returncode != 0 and not (stopped and result.returncode == -signal.SIGTERM):
        raise SluiceError._from_process(command, result, cwd)
    return result


def _output(path: pathlib.Path, command_args: Sequence[str]) -> pathlib.Path:
    """The Arrow file a command was asked to write; its absence is the binary's failure."""
    if not path.is_file():
        raise SluiceError(f"sluice {command_args[0]} exited successfully but wrote no {path.name}",
                          command=list(map(str, command_args)))
    return path


def _folder(path: PathLike) -> str:
    return os.fspath(path)


def version() -> str:
    """The version of the sluice binary this package runs (`sluice --version`)."""
    return _run(["--version"]).stdout.split()[-1]


def validate(path: PathLike, *, infer_schemas: bool = False, timeout: Optional[float] = None) -> str:
    """Checks the pipeline folder's SQL and Python (no broker unless infer_schemas) and returns the
    resolved graph as `sluice validate` prints it. Raises SluiceError naming the file and line."""
    # Options, then `--`, then the folder: a folder named like an option (`--help`) stays a folder.
    args = ["validate", *(["--infer-schemas"] if infer_schemas else []), "--", _folder(path)]
    return _run(args, timeout=timeout).stdout


def graph(path: PathLike, *, timeout: Optional[float] = None) -> dict:
    """The pipeline's lineage graph as data: `sluice graph --format json` parsed (datasets with
    their kind, file, line, columns and the columns each comes from; flows; sources)."""
    out = _run(["graph", "--format", "json", "--", _folder(path)], timeout=timeout).stdout
    return json.loads(out)


def run(path: PathLike, once: bool = True, full_refresh: Union[bool, Iterable[str]] = False, *,
        bootstrap_servers: Optional[str] = None, timeout: Optional[float] = None,
        env: Optional[dict] = None) -> RunResult:
    """Runs the pipeline folder. once=True (default): a triggered run, everything available at
    start, then return; a timeout stops it (SIGTERM) and raises SluiceError. once=False:
    continuous, until the process is stopped, or until `timeout`, when it is stopped with SIGTERM
    (the update in progress commits what it read) and the result has .stopped = True. Ctrl-C
    (KeyboardInterrupt) stops the binary the same way before it propagates. full_refresh: True
    resets every streaming table, a list of names those tables. bootstrap_servers overrides every
    Kafka cluster's. Raises SluiceError on failure."""
    args = ["run"]
    if full_refresh is True:
        args.append("--full-refresh")
    elif full_refresh is not False and full_refresh is not None:
        if isinstance(full_refresh, (str, bytes)):
            raise TypeError("full_refresh: True (every streaming table) or a list of table names, "
                            f"not the string {full_refresh!r} (write [{full_refresh!r}])")
        names = [str(n) for n in full_refresh]
        if not names:
            raise ValueError("full_refresh: an empty list resets nothing; pass False, True or names")
        # First: the option takes every value up to the next option (--progress).
        args += ["--full-refresh", *names]
    args += ["--progress", "never"]
    if once:
        args.append("--once")
    if bootstrap_servers is not None:
        args += ["--bootstrap-servers", bootstrap_servers]
    args += ["--", _folder(path)]
    result = _run(args, timeout=timeout, env=env, stop_at_timeout=not once)
    return RunResult(stdout=result.stdout, stderr=result.stderr, command=list(args),
                     stopped=result.stopped, returncode=result.returncode)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _resolve_columns(wanted: Sequence[str], have: Sequence[str], where: str) -> list:
    """The table's names of `wanted`, matched case-insensitively as Spark (and `sluice sql`) resolve
    them; a name matching none, or several, is refused."""
    resolved, missing = [], []
    for name in wanted:
        matches = [c for c in have if c.lower() == name.lower()]
        if len(matches) > 1:
            raise SluiceError(f"{where}: column {name} is ambiguous: it matches {', '.join(matches)}")
        if not matches:
            missing.append(name)
        else:
            resolved.append(matches[0])
    if missing:
        raise SluiceError(f"{where} has no column(s) {', '.join(missing)}; it has: {', '.join(have)}")
    return resolved


def read_table(path_or_uri: PathLike, version: Optional[int] = None,
               columns: Optional[Sequence[str]] = None, filter: Optional[str] = None, *,
               dir: Optional[PathLike] = None):
    """A Delta table (a folder holding _delta_log, or an s3://, gs://, az:// URI) as a
    pyarrow.Table, read by the sluice engine. version: time travel to that table version (None:
    the latest). columns: these columns, in this order (None: all), names matched
    case-insensitively as Spark does. filter: ONE SQL boolean expression in sluice's dialect
    (`amount > 10 AND country = 'NL'`); the rows where it is true. Anything else (two
    expressions, a `)` closing more than it opened, a statement) is refused. dir: the folder for
    the temporary Arrow file the engine writes (default: the system's temporary folder); the
    returned table memory-maps it (it is unlinked at once; the mapping lives with the table).
    Raises SluiceError when the table, version, column or filter is not there or wrong."""
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
    if filter is not None and not isinstance(filter, str):
        raise TypeError(f"filter: a SQL boolean expression (str), not {type(filter).__name__}")
    with tempfile.TemporaryDirectory(prefix="sluice-read-", dir=dir) as tmp:
        out = pathlib.Path(tmp) / "rows.arrow"
        if version is None:
            if filter is not None:
                # The filter is checked as ONE expression by the engine's expression parser
                # (`sluice eval` over the table's empty schema: its columns, its types), so pasting
                # it into the query below cannot close the WHERE's parenthesis, add a clause or
                # comment the rest out. The same check as the version= path's.
                schema_file = pathlib.Path(tmp) / "schema.arrow"
                _run(["sql", "--output", schema_file, "--format", "json", "--limit", "0", "--",
                      location, f"SELECT * FROM delta.{_quote(location)} LIMIT 0"])
                _check_predicate(pa, _output(schema_file, ["sql"]), filter, pathlib.Path(tmp))
            # One query: the engine skips files by partition values and statistics of the filter.
            select = ", ".join(_quote(c) for c in columns) if columns else "*"
            statement = f"SELECT {select} FROM delta.{_quote(location)}"
            if filter is not None:
                # Newlines: a trailing `-- comment` of the filter ends at its own line.
                statement += f" WHERE (\n{filter}\n)"
            _run(["sql", "--output", out, "--format", "json", "--limit", "0", "--", location, statement])
            return _read_ipc(pa, _output(out, ["sql"]))
        # Time travel: `sluice table export --version` (`sluice sql` has no VERSION AS OF, and
        # export takes no columns or filter: it writes the whole version), then the filter
        # evaluated by the engine over those rows (`sluice eval`).
        _run(["table", "export", "--version", str(version), "--", location, out])
        table = _read_ipc(pa, _output(out, ["table"]))
        if filter is not None:
            mask = _check_predicate(pa, out, filter, pathlib.Path(tmp))
            table = table.filter(mask, null_selection_behavior="drop")
        if columns is not None:
            # Named as asked, as `sluice sql` (the latest-version path) names them.
            table = table.select(_resolve_columns(columns, table.column_names, f"{location} (version {version})"))
            table = table.rename_columns(columns)
        return table


def _check_predicate(pa, rows: pathlib.Path, filter: str, tmp: pathlib.Path):
    """`filter` evaluated by `sluice eval` (one expression, else refused) over the Arrow file
    `rows`; its BOOLEAN column, or SluiceError if it is of another type. The message names the
    type, not the filter's text (its literals may be values a caller should not see in a log)."""
    mask_file = tmp / "mask.arrow"
    # `--expr=`: a filter starting with `-` stays the value.
    _run(["eval", "--input", rows, "--output", mask_file, f"--expr={filter}"])
    mask = _read_ipc(pa, _output(mask_file, ["eval"])).column(0)
    if not pa.types.is_boolean(mask.type):
        raise SluiceError(f"the filter is not a predicate: it gives {mask.type}, not BOOLEAN")
    return mask


def _read_ipc(pa, path: pathlib.Path):
    # Memory-mapped: the rows are not copied onto the heap; the mapping outlives the file's unlink.
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()
