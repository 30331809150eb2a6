#!/usr/bin/env python3
"""Runs a command and measures its whole process tree: wall time, CPU seconds and peak RSS.

  proctree.py --json OUT [--stdout FILE] [--stderr FILE] -- CMD [ARG...]

This process makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every
descendant that outlives its parent (e.g. the JVM a PySpark driver starts) is re-parented here
and reaped here: getrusage(RUSAGE_CHILDREN) then holds the exact user + system CPU of every
process of the tree, however short-lived. Peak RSS is sampled every 50 ms as the sum of the
resident set of every live descendant (/proc/<pid>/task/<tid>/children, /proc/<pid>/statm;
a child still sharing its parent's address space, as a spawned process before its exec, is
counted once);
the largest single process's ru_maxrss is reported too. The measurement ends when the last
descendant has exited. Writes {"wall_s", "cpu_user_s", "cpu_sys_s", "cpu_s", "peak_tree_rss_mib",
"max_process_rss_mib", "samples", "returncode"} to OUT; exits with CMD's exit code.
Linux only; no third-party modules (psutil is not needed).
"""
import argparse
import ctypes
import json
import os
import resource
import subprocess
import sys
import threading
import time

PR_SET_CHILD_SUBREAPER = 36
PAGE = os.sysconf("SC_PAGE_SIZE")


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


def memory(pid):
    """(address-space layout, resident pages) or None once the process is gone. The layout
    (start of code, end of code, start of stack, start of heap, arguments, environment:
    /proc/<pid>/stat fields 26-28, 47, 48, 50) is the same for two pids only while they
    share one address space or a fork's copy of it; an exec makes a new one."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            resident = int(f.read().split()[1])
        # fields[i] is stat field i + 3 (pid and comm come before the split)
        layout = tuple(fields[i - 3] for i in (26, 27, 28, 47, 48, 50))
        return layout, resident
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def tree_rss(root):
    """Sum of the RSS (bytes) of root's live descendants (root itself excluded). A child with
    its parent's address-space layout shares the parent's pages (a posix_spawn/vfork child
    before its exec, e.g. the `chmod` Hadoop starts from the JVM; or a fork's copy-on-write
    pages) and is not counted again."""
    total, seen = 0, set()
    stack = [(pid, None) for pid in children(root)]
    while stack:
        pid, parent_layout = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        mem = memory(pid)
        if mem is None:
            continue
        layout, resident = mem
        if layout != parent_layout:
            total += resident * PAGE
        stack.extend((c, layout) for c in children(pid))
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", required=True)
    ap.add_argument("--stdout")
    ap.add_argument("--stderr")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        sys.exit("proctree.py: no command given (proctree.py --json OUT -- CMD ...)")
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"proctree.py: prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")

    peak, samples, done = 0, 0, threading.Event()
    me = os.getpid()

    def sample():
        nonlocal peak, samples
        while not done.is_set():
            peak = max(peak, tree_rss(me))
            samples += 1
            done.wait(0.05)

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = open(args.stdout, "w") if args.stdout else None
    err = open(args.stderr, "w") if args.stderr else None
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returncode = None
    while True:  # reap the command and every orphan re-parented here, until none is left
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if pid == proc.pid:
            returncode = os.waitstatus_to_exitcode(status)
            proc.returncode = returncode
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    result = dict(wall_s=wall, cpu_user_s=user, cpu_sys_s=system, cpu_s=user + system,
                  peak_tree_rss_mib=peak / 2**20, max_process_rss_mib=after.ru_maxrss / 1024,
                  samples=samples, returncode=returncode)
    with open(args.json, "w") as f:
        json.dump(result, f)
    sys.exit(returncode if returncode is not None else 1)


if __name__ == "__main__":
    main()
