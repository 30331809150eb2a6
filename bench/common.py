"""Helpers the bench scripts share: a log line to stderr, the peak RSS and CPU seconds of one
child process (wait4), and the CPU seconds of one compile command (getrusage around it). The
broker, payloads and pipeline helpers of the Kafka benches stay in kafka_pipeline_bench.py
(imported as kb); a whole process tree is measured by proctree.py."""
import os
import resource
import shlex
import subprocess
import sys


def logger(prefix):
    """A log(msg) that prints "[prefix] msg" to stderr at once (stdout holds the results)."""
    def log(msg):
        print(f"[{prefix}] {msg}", file=sys.stderr, flush=True)
    return log


def wait_measured(proc):
    """Waits for `proc` (a subprocess.Popen) and returns (exit code, peak RSS MiB, CPU seconds
    user + system) of that child alone: wait4 gives its own rusage, where RUSAGE_CHILDREN would
    mix in every child this process ran before (JVMs, other runs). Sets proc.returncode."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def compile_cpu_seconds(entry, scratch, who):
    """CPU seconds (user + sys) of one compile_commands.json `entry`, run with ccache disabled and
    its object and dependency file written under `scratch` (the build tree is left as it is).
    Exits naming `who` (the script) and the file when the compile fails."""
    args = shlex.split(entry["command"])
    for i, a in enumerate(args[:-1]):
        if a in ("-o", "-MF", "-MT"):
            args[i + 1] = os.path.join(scratch, "out.d" if a == "-MF" else "out.o")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(args, cwd=entry["directory"], capture_output=True, text=True,
                       env=dict(os.environ, CCACHE_DISABLE="1"))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{who}: {entry['file']} failed:\n{p.stderr[:4000]}")
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
