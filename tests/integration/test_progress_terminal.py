"""A triggered `sluice run` whose stderr is a terminal (a real pseudo-terminal here) shows live
progress per dataset and ends with a summary table whose numbers are what the tables hold (read
by deltalake); without a terminal, or with --progress=never, stderr stays empty and stdout keeps
its one line per dataset. --progress refuses values it does not know, and `always` on a
continuous run."""
import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time

from deltalake import DeltaTable

from conftest import SLUICE, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE raw
AS SELECT value.*, offset FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest',
                                                  value_format => 'json', value_schema => 'id BIGINT, amount DOUBLE');
CREATE OR REFRESH STREAMING TABLE checked (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW
) TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT id, amount FROM STREAM(raw);
CREATE OR REFRESH MATERIALIZED VIEW total AS SELECT count(*) AS n, sum(amount) AS amount FROM checked;
"""

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# stdout's line per dataset (cli/main.cc summary_line), as before progress existed.
STDOUT_LINE = re.compile(r"^\w+ \((streaming table|materialized view)\): \d+ rows read, \d+ written, \d+ dropped.*$")


def values(n):
    """Every 10th record is not JSON (dead letter), every 7th has no id and every 5th a negative
    amount (quarantined)."""
    out = []
    for i in range(n):
        if i % 10 == 9:
            out.append(b'{"id": 1, "amount"')
        else:
            out.append({"id": None if i % 7 == 0 else i, "amount": -1.0 if i % 5 == 0 else float(i)})
    return out


def run_on_terminal(args, timeout=240, env=None):
    """Runs sluice with stderr on a pseudo-terminal (200 columns) and stdout on a pipe; returns
    (exit code, stdout, what the terminal received)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen([str(SLUICE), *map(str, args)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=slave, env=dict(os.environ, TERM="xterm", **(env or {})))
    os.close(slave)
    received = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"sluice {args} still running after {timeout} s"
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: sluice, the terminal's last writer, has closed it
                break
            if not data:
                break
            received.append(data)
    finally:
        os.close(master)
        if proc.poll() is None and time.monotonic() > deadline:
            proc.kill()
    out = proc.stdout.read().decode()
    return proc.wait(timeout=60), out, b"".join(received).decode()


def summary_rows(terminal):
    """The summary table's rows: dataset -> {column: number}."""
    text = ANSI.sub("", terminal).replace("\r", "")
    lines = text.split("\n")
    head = next(i for i, line in enumerate(lines) if line.startswith("sluice: update of 'progress' finished in "))
    columns = lines[head + 1].split()
    assert columns == ["dataset", "kind", "read", "written", "dropped", "quarantined", "dead-lettered", "late",
                       "duplicate"], lines[head + 1]
    rows = {}
    for line in lines[head + 2:]:
        if not line.strip():
            continue
        fields = line.split()
        rows[fields[0]] = dict(zip(columns[2:], map(int, fields[-7:])))
    return rows, text[:text.index("sluice: update of 'progress'")]


def count(pipe, table):
    return DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_dataset().count_rows()


def test_terminal_shows_progress_and_a_summary_the_tables_confirm(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "progress", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    produced = values(700)
    produce_values(bootstrap, topic, produced, partitions=2)

    # A frame after every progress report (test-only), so the frames drawn while the datasets run
    # are certain to be on the terminal, whatever the timing.
    code, out, terminal = run_on_terminal(["run", pipe, "--once"], env={"SLUICE_TEST_PROGRESS_FRAMES": "1"})
    assert code == 0, terminal
    rows, frames = summary_rows(terminal)
    # While raw ran: its backlog (700 offsets up to the high-water marks) and every record read
    # before it finished; while checked ran, the rows it took from raw.
    assert re.search(r"^  raw +\[#{20}\] 100%  700 of 700 rows  read; writing and committing", frames, re.M), frames
    assert re.search(r"^  raw +\[-{20}\]   0%  0 of 700 rows", frames, re.M), frames
    assert re.search(r"^  checked +[1-9][\d,]* rows read", frames, re.M), frames
    assert set(rows) == {"raw", "checked", "total"}
    # The progress frames: a header and a line per dataset; the last frame says each is done
    # with the rows the summary says it read.
    assert "sluice: updating 'progress': 3 of 3 datasets done" in frames
    for name, r in rows.items():
        assert re.search(rf"^  {name} +done: {r['read']:,} rows read in \d", frames, re.M), (name, frames)
    # The summary's numbers are what the tables hold (deltalake).
    malformed = sum(1 for v in produced if isinstance(v, bytes))
    assert rows["raw"]["read"] == len(produced)
    assert rows["raw"]["dead-lettered"] == count(pipe, "raw_dead_letter") == malformed
    assert rows["raw"]["written"] == count(pipe, "raw") == len(produced) - malformed
    assert rows["checked"]["read"] == rows["raw"]["written"]
    assert rows["checked"]["written"] == count(pipe, "checked")
    assert rows["checked"]["quarantined"] == count(pipe, "checked_quarantine") == rows["checked"]["dropped"]
    assert rows["checked"]["written"] + rows["checked"]["quarantined"] == rows["checked"]["read"]
    assert rows["total"]["written"] == count(pipe, "total") == 1
    # stdout is what it was without progress: one line per dataset, nothing else.
    assert all(STDOUT_LINE.match(line) for line in out.splitlines()), out
    assert len(out.splitlines()) == 3

    # Without a terminal: nothing on stderr; --progress=never on a terminal: nothing on it.
    produce_values(bootstrap, topic, [{"id": 1000 + i, "amount": 1.0} for i in range(20)], partitions=2)
    plain = run_sluice("run", pipe, "--once")
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr == ""
    assert [line.split(":")[0] for line in plain.stdout.splitlines()] == [line.split(":")[0] for line in out.splitlines()]
    assert all(STDOUT_LINE.match(line) for line in plain.stdout.splitlines()), plain.stdout
    assert "raw (streaming table): 20 rows read, 20 written" in plain.stdout
    # stdout's reader gone: the run ignores SIGPIPE, commits and exits 0 (it died of SIGPIPE before).
    produce_values(bootstrap, topic, [{"id": 2000 + i, "amount": 1.0} for i in range(5)], partitions=2)
    before = count(pipe, "raw")
    read_end, write_end = os.pipe()
    os.close(read_end)
    closed = subprocess.run([str(SLUICE), "run", str(pipe), "--once"], stdin=subprocess.DEVNULL, stdout=write_end,
                            stderr=subprocess.PIPE, timeout=240)
    os.close(write_end)
    assert closed.returncode == 0, (closed.returncode, closed.stderr)
    assert count(pipe, "raw") == before + 5
    code, out, terminal = run_on_terminal(["run", pipe, "--once", "--progress=never"])
    assert code == 0 and terminal == "", terminal
    assert "raw (streaming table): 0 rows read, 0 written" in out


def test_progress_values_are_checked(tmp_path, bootstrap):
    pipe = kafka_pipeline(tmp_path, "progress", bootstrap, extra="mode: continuous\n")
    (pipe / "p.sql").write_text(SQL.format(topic="unused"))
    bad = run_sluice("run", pipe, "--once", "--progress=sometimes")
    assert bad.returncode != 0
    assert "--progress=sometimes: say never, auto (on when stderr is a terminal) or always" in bad.stderr
    continuous = run_sluice("run", pipe, "--progress=always")
    assert continuous.returncode == 1
    assert "--progress=always: live progress is for triggered runs" in continuous.stderr
    frames = run_sluice("run", pipe, "--once", "--progress=never", env_extra={"SLUICE_TEST_PROGRESS_FRAMES": "yes"})
    assert frames.returncode == 1
    assert "SLUICE_TEST_PROGRESS_FRAMES=yes: set it to 1 (a frame after every progress report) or unset it" in frames.stderr
    assert not (pipe / "data" / "tables").exists()  # refused before anything ran
