"""`python3 -m sluice._define`: the definer the C++ loader runs (src/sluice/pipeline/sql_sources.cc).

Reads on stdin {"files": [{"path": abs, "name": shown}], "configuration": {...},
"kafka_clusters": {name: bootstrap.servers}, "pipeline_dir": abs}; runs each file with
`import dlt` / `pyspark` resolving to sluice's shims and `spark` defined; then calls every
dataset's function and writes on stdout
  {"files": [{"statements": [{"line": n, "what": "@dlt.table x", "sql": "CREATE ..."}]}]}
or, when a file raised or sluice refused something, {"error": {"file": i, "line": n,
"message": "..."}} and exits 1. Whatever the files print goes to stderr.

`python3 -m sluice._define --sql FILE.py ...` prints the SQL the files generate, for reading."""
import json
import os
import re
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SHIMS = os.path.join(os.path.dirname(HERE), "_shims")


def _location(exc, pipeline_files):
    """(file index, line) of the innermost frame of a pipeline file in exc's traceback."""
    from .errors import DefinitionError
    if isinstance(exc, DefinitionError) and exc.file is not None:
        return exc.file, exc.line
    if isinstance(exc, SyntaxError) and exc.filename in pipeline_files:
        return pipeline_files[exc.filename], exc.lineno
    found = (None, None)
    for frame, line in traceback.walk_tb(exc.__traceback__):
        index = pipeline_files.get(frame.f_code.co_filename)
        if index is not None:
            found = (index, line)
    return found


def _message(exc):
    from .errors import DefinitionError
    if isinstance(exc, DefinitionError):
        return exc.message
    if isinstance(exc, SyntaxError):
        return "SyntaxError: {}".format(exc.msg)
    if isinstance(exc, ImportError):
        # `from dlt import nosuch`: the shim's refusal is an AttributeError, which the import
        # statement turns into "cannot import name"; say what sluice does not have.
        found = re.match(r"cannot import name '(\w+)' from '((?:dlt|pyspark)(?:\.\w+)*)'", str(exc))
        if found:
            return "{}.{} is not supported by sluice".format(found.group(2), found.group(1))
    if isinstance(exc, SystemExit):
        return ("sys.exit({!r}) (SystemExit) was called while defining the pipeline: a pipeline file must not "
                "exit the process".format(exc.code))
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text


def define(request):
    """Runs the files of `request`; returns the answer (a dict) and the exit status."""
    from . import errors, spark
    from .registry import REGISTRY

    files = request["files"]
    spark.CONFIGURATION.clear()
    spark.CONFIGURATION.update({str(k): str(v) for k, v in (request.get("configuration") or {}).items()})
    spark.KAFKA_CLUSTERS = None if request.get("kafka_clusters", {}) is None else dict(request["kafka_clusters"])
    errors.PIPELINE_FILES.clear()
    for i, f in enumerate(files):
        errors.PIPELINE_FILES[f["path"]] = i
    # `import dlt`, `from pyspark import pipelines` resolve to the shims for this process only;
    # the pipeline folder is importable, as DLT makes a pipeline's own modules.
    sys.path.insert(0, SHIMS)
    if request.get("pipeline_dir"):
        sys.path.insert(1, request["pipeline_dir"])
    for name in [m for m in sys.modules if m == "dlt" or m == "pyspark" or m.startswith(("dlt.", "pyspark."))]:
        del sys.modules[name]
    try:
        for i, f in enumerate(files):
            with open(f["path"], "rb") as fh:
                source = fh.read()
            code = compile(source, f["path"], "exec", dont_inherit=True)
            namespace = {"__name__": "__main__", "__file__": f["path"], "__builtins__": __builtins__,
                         "spark": spark.SPARK}
            exec(code, namespace)
        answer = [{"statements": []} for _ in files]
        for entry in REGISTRY.entries:
            try:
                sql = entry.build()
            except Exception as exc:  # noqa: BLE001
                # Raised outside the pipeline's own code (no frame of it in the traceback):
                # the declaration's line is the best place to name.
                exc.__sluice_where__ = (entry.file, entry.line)
                raise
            file = entry.file if entry.file is not None else 0
            # A declaration may make several statements (a union of streams: a flow per stream).
            for what, text in sql if isinstance(sql, list) else [(entry.what, sql)]:
                answer[file]["statements"].append({"line": entry.line or 1, "what": what, "sql": text})
        return {"files": answer}, 0
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - every error of user code becomes a located error
        index, line = _location(exc, errors.PIPELINE_FILES)
        if index is None:
            index, line = getattr(exc, "__sluice_where__", (None, None))
        error = {"message": _message(exc)}
        if index is not None:
            error["file"] = index
            if line:
                error["line"] = line
        return {"error": error}, 1


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--sql":
        paths = argv[1:]
        request = {"files": [{"path": os.path.abspath(p), "name": p} for p in paths], "kafka_clusters": None,
                   "pipeline_dir": os.path.dirname(os.path.abspath(paths[0])) if paths else None}
        answer, status = define(request)
        if status != 0:
            e = answer["error"]
            where = paths[e["file"]] + (":{}".format(e["line"]) if "line" in e else "") if "file" in e else "pipeline"
            sys.stderr.write("{}: error: {}\n".format(where, e["message"]))
            return status
        for path, f in zip(paths, answer["files"]):
            for st in f["statements"]:
                sys.stdout.write("-- {}:{} {}\n{};\n\n".format(path, st["line"], st["what"], st["sql"]))
        return 0
    if argv:
        sys.stderr.write("usage: python3 -m sluice._define [--sql FILE.py ...] (the request on stdin)\n")
        return 2
    # The answer goes to a private descriptor; fd 1 becomes stderr, so nothing a pipeline file
    # writes (print, os.write(1, ...), a subprocess's output) can corrupt the JSON answer.
    answer_fd = os.dup(1)  # not inherited by subprocesses
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    request = json.loads(_read_request())
    if request.get("watchdog"):
        _start_watchdog()
    answer, status = define(request)
    data = json.dumps(answer).encode("utf-8")
    while data:
        data = data[os.write(answer_fd, data):]
    os.close(answer_fd)
    return status


def _read_request():
    """The request: stdin up to its first newline (sluice keeps stdin open after it, as the
    watchdog) or its end."""
    data = b""
    while b"\n" not in data:
        chunk = os.read(0, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data.split(b"\n", 1)[0].decode("utf-8")


def _start_watchdog():
    """Ends this process group when sluice's end of stdin closes (sluice exited or died): a
    definer looping in a pipeline file, and what it started, do not outlive sluice. Pipeline
    code sees /dev/null as stdin."""
    import signal
    import threading
    watched = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)

    def watch():
        while True:
            try:
                if not os.read(watched, 1 << 12):
                    break
            except InterruptedError:
                continue
            except OSError:
                break
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="sluice-watchdog", daemon=True).start()

if __name__ == "__main__":
    sys.exit(main())
