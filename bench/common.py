"""Helpers the bench scripts share: a log line to stderr, the peak RSS (GNU time's %M) and CPU
seconds (wait4) of one child process, and the CPU seconds of one compile command (getrusage around it). The
broker, payloads and pipeline helpers of the Kafka benches stay in kafka_pipeline_bench.py
(imported as kb); a whole process tree is measured by proctree.py."""
import os
import pathlib
import resource
import shlex
import subprocess
import sys
import tempfile


def logger(prefix):
    """A log(msg) that prints "[prefix] msg" to stderr at once (stdout holds the results)."""
    def log(msg):
        print(f"[{prefix}] {msg}", file=sys.stderr, flush=True)
    return log


def popen_measured(args, **kwargs):
    """subprocess.Popen(args, **kwargs) run under GNU time, whose %M is the command's own peak
    RSS. wait4's ru_maxrss is not: a child Python spawns (vfork + exec) starts from this
    process's high-water mark (the kernel carries the old mm's across exec), so it reported the
    bench's Python process, not the command (data_skipping_bench: 766 MiB for a 57 MiB scan).
    Wait with wait_measured; signal the command with signal_measured."""
    rss_file = tempfile.NamedTemporaryFile("r", prefix="peak-rss-")
    proc = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", rss_file.name, *[str(a) for a in args]], **kwargs)
    proc.peak_rss_file = rss_file
    return proc


def signal_measured(proc, sig):
    """Sends `sig` to the command popen_measured started (GNU time's child), not to time."""
    try:
        children = pathlib.Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    except FileNotFoundError:
        return
    for child in children:
        try:
            os.kill(int(child), sig)
        except ProcessLookupError:
            pass


def wait_measured(proc):
    """Waits for `proc` (from popen_measured) and returns (exit code, peak RSS MiB, CPU seconds
    user + system) of that command alone: wait4 gives time's rusage with its reaped child's CPU,
    where RUSAGE_CHILDREN would mix in every child this process ran before (JVMs, other runs);
    the peak RSS is time's %M (see popen_measured). Sets proc.returncode."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    rss_file = getattr(proc, "peak_rss_file", None)
    if rss_file is None:
        raise ValueError("wait_measured: start the process with popen_measured (wait4's ru_maxrss is not its peak RSS)")
    lines = rss_file.read().strip().splitlines()
    rss_file.close()
    # GNU time writes "Command exited with non-zero status N" before %M when the command failed.
    rss_mib = int(lines[-1]) / 1024 if lines and lines[-1].isdigit() else float("nan")
    return proc.returncode, rss_mib, usage.ru_utime + usage.ru_stime


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
