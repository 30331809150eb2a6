"""Stream-stream joins with an event-time bound: out-of-order and late events on both sides,
Kafka -> bronze streaming tables -> join table, equal to an oracle computed here in plain
Python with the same rules (per-side watermark = max event time so far - delay; rows below it
on arrival are late and dropped; pairs with b.ts in [a.ts, a.ts + 10 min]; LEFT OUTER emits
an unmatched left row once the right watermark passes a.ts + 10 min), also across crashes."""
import bisect
import datetime
import random
import signal
import subprocess
import time
from collections import Counter

import pytest
from deltalake import DeltaTable

from conftest import SLUICE, run_sluice
from test_event_time_windows import flow_metrics, upstream_batches
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

BASE = 1767225600  # 2026-01-01 00:00:00 UTC
DELAY = 120
UPPER = 600


def make_events(n, seed, serial_base):
    """Event i near BASE + 20 s * i, up to 150 s back (the delay is 120 s: some are late), every
    29th 15 minutes back (late); ids 0..7 so rows find partners."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = BASE + i * 20 + rnd.randint(-150, 20)
        if i % 29 == 0:
            t -= 900
        out.append({"id": rnd.randint(0, 7), "ts": t, "s": serial_base + i})
    return out


def as_json(e, column):
    ts = datetime.datetime.fromtimestamp(e["ts"], datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return {"id": e["id"], "ts": ts, column: e["s"]}


def on_time(events, batches):
    """The rows that are not late: `batches` are the serials of each upstream commit in the
    order the join reads them; a row is late when below its side's watermark as it stood before
    its batch (the watermark moves per batch, as Spark's does)."""
    by_serial = {e["s"]: e for e in events}
    highest = None
    kept = []
    for batch in batches:
        before = highest
        for s in batch:
            e = by_serial[s]
            if e["ts"] is not None and (before is None or e["ts"] >= before - DELAY):
                kept.append(e)
                highest = e["ts"] if highest is None else max(highest, e["ts"])
    return kept, highest


def side_batches(pipe):
    return (upstream_batches(pipe, "left_events", "x"), upstream_batches(pipe, "right_events", "y"))


def oracle(left, right, batches, outer=False):
    lk, _ = on_time(left, batches[0])
    rk, right_max = on_time(right, batches[1])
    by_id = {}
    for b in sorted(rk, key=lambda b: b["ts"]):
        by_id.setdefault(b["id"], ([], []))
        by_id[b["id"]][0].append(b["ts"])
        by_id[b["id"]][1].append(b)
    pairs = Counter()
    for a in lk:
        times, rows = by_id.get(a["id"], ([], []))
        lo, hi = bisect.bisect_left(times, a["ts"]), bisect.bisect_right(times, a["ts"] + UPPER)
        for b in rows[lo:hi]:
            pairs[(a["s"], b["s"])] += 1
        found = hi > lo
        if outer and not found and right_max is not None and a["ts"] + UPPER < right_max - DELAY:
            pairs[(a["s"], None)] += 1
    return pairs


def bronze_sql(table, topic, column, limit=""):
    return f"""
CREATE OR REFRESH STREAMING TABLE {table}
AS SELECT value.id AS id, value.ts AS ts, value.{column} AS {column}
FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest', value_format => 'json',{limit}
                       value_schema => 'id BIGINT, ts TIMESTAMP, {column} BIGINT');
"""


def join_sql(table, kind="JOIN"):
    return f"""
CREATE OR REFRESH STREAMING TABLE {table} AS
SELECT a.id, a.ts AS a_ts, b.ts AS b_ts, a.x, b.y
FROM STREAM(left_events) WATERMARK ts DELAY OF INTERVAL 2 MINUTES a
{kind} STREAM(right_events) WATERMARK ts DELAY OF INTERVAL 2 MINUTES b
  ON a.id = b.id AND b.ts BETWEEN a.ts AND a.ts + INTERVAL 10 MINUTES;
"""


def joined(pipe, table):
    rows = DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().to_pylist()
    for r in rows:  # the time columns came through
        assert r["a_ts"] is not None
        if r["y"] is not None:
            assert r["a_ts"] <= r["b_ts"] <= r["a_ts"] + datetime.timedelta(seconds=UPPER)
    return Counter((r["x"], r["y"]) for r in rows)


def setup(tmp_path, bootstrap, new_topic, extra="", limit=""):
    lt, rt = new_topic(1), new_topic(1)
    pipe = kafka_pipeline(tmp_path, "sj", bootstrap, extra)
    (pipe / "bronze.sql").write_text(bronze_sql("left_events", lt, "x", limit) + bronze_sql("right_events", rt, "y", limit))
    (pipe / "join.sql").write_text(join_sql("matched") + join_sql("matched_left", "LEFT JOIN"))
    return pipe, lt, rt


def test_inner_and_left_outer_joins_equal_the_oracle(tmp_path, bootstrap, new_topic):
    pipe, lt, rt = setup(tmp_path, bootstrap, new_topic)
    left = make_events(400, seed=1, serial_base=0)
    right = make_events(400, seed=2, serial_base=10000)
    # Three updates with the sides advancing unevenly: state and watermarks carry over.
    cuts = [(0, 150, 0, 60), (150, 260, 60, 330), (260, 400, 330, 400)]
    for l0, l1, r0, r1 in cuts:
        produce_values(bootstrap, lt, [as_json(e, "x") for e in left[l0:l1]])
        produce_values(bootstrap, rt, [as_json(e, "y") for e in right[r0:r1]])
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
    batches = side_batches(pipe)
    want = oracle(left, right, batches)
    assert sum(want.values()) > 200
    got = joined(pipe, "matched")
    assert got == want
    want_outer = oracle(left, right, batches, outer=True)
    assert any(y is None for _, y in want_outer)
    assert joined(pipe, "matched_left") == want_outer
    # Late rows of both sides are counted; the state is reported.
    late = len(left) - len(on_time(left, batches[0])[0]) + len(right) - len(on_time(right, batches[1])[0])
    assert late > 0  # per batch, only rows behind the watermark of an earlier batch are late
    metrics = flow_metrics(pipe, "matched")
    assert sum(m.get("num_late_rows", 0) for m in metrics) == late
    assert all(m["state_rows"] > 0 and m["state_bytes"] > 0 and "watermark_micros" in m for m in metrics)


def test_crash_after_the_state_save_gives_the_same_result(tmp_path, bootstrap, new_topic):
    pipe, lt, rt = setup(tmp_path, bootstrap, new_topic)
    left = make_events(300, seed=3, serial_base=0)
    right = make_events(300, seed=4, serial_base=10000)
    produce_values(bootstrap, lt, [as_json(e, "x") for e in left[:150]])
    produce_values(bootstrap, rt, [as_json(e, "y") for e in right[:100]])
    assert run_sluice("run", pipe, "--once").returncode == 0
    produce_values(bootstrap, lt, [as_json(e, "x") for e in left[150:]])
    produce_values(bootstrap, rt, [as_json(e, "y") for e in right[100:]])
    crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "after_state_save"})
    assert crashed.returncode == 137, (crashed.returncode, crashed.stderr)
    ok = run_sluice("run", pipe, "--once")
    assert ok.returncode == 0, ok.stderr
    assert joined(pipe, "matched") == oracle(left, right, side_batches(pipe))
    assert joined(pipe, "matched_left") == oracle(left, right, side_batches(pipe), outer=True)


@pytest.mark.slow
def test_sigkill_at_random_moments_gives_the_uninterrupted_result(tmp_path, bootstrap, new_topic):
    pipe, lt, rt = setup(tmp_path, bootstrap, new_topic, "mode: continuous\ntrigger_interval: 50ms\n",
                         limit=" max_offsets_per_trigger => 13,")
    n = 1000  # events a side; the kills wait for the join's commits, so a few updates each
    left = make_events(n, seed=5, serial_base=0)
    right = make_events(n, seed=6, serial_base=100000)
    rnd = random.Random(11)
    table = pipe / "data" / "tables" / "matched"

    def versions():  # the join's progress: upstream versions consumed
        if not (table / "_delta_log").exists():
            return ()
        try:
            dt = DeltaTable(str(table))
            ids = [DeltaTable(str(pipe / "data" / "tables" / t)).metadata().id for t in ("left_events", "right_events")]
            return tuple(dt.transaction_version(f"sj/matched/{i}") for i in ids)
        except Exception:
            return ()

    produce_values(bootstrap, lt, [as_json(e, "x") for e in left])
    produce_values(bootstrap, rt, [as_json(e, "y") for e in right])
    def log_version():  # the join table's newest commit file: cheap enough to poll
        names = [p.name for p in (table / "_delta_log").glob("*.json")] if (table / "_delta_log").exists() else []
        return max((int(n[:20]) for n in names if len(n) == 25), default=-1)

    kills_at = []
    for lo in range(6):
        err = open(pipe / f"run{lo}.stderr", "w")
        before = log_version()
        proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
        # As run_with_sigkills: most kills 0-60 ms after the run's 1st-3rd join commit (inside
        # the next update of a bronze table or a join), one in four early (start-up, restore).
        if rnd.random() < 0.25:
            time.sleep(rnd.uniform(0.05, 0.4))  # the kill's random moment, not a wait for sluice
        else:
            commits = rnd.randint(1, 3)
            deadline = time.monotonic() + 60
            while log_version() < before + commits and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rnd.uniform(0, 0.06))
        if proc.poll() is not None:
            err.close()
            raise AssertionError((pipe / f"run{lo}.stderr").read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        err.close()
        kills_at.append(versions())
    print(f"\nkills at join progress {kills_at}")
    assert len(set(kills_at)) > 3, f"the runs between kills made no progress: {kills_at}"
    # Finish: a run left alone until both joins have read everything the bronze tables hold.
    def done():
        try:
            tables = pipe / "data" / "tables"
            bronze = [DeltaTable(str(tables / t)) for t in ("left_events", "right_events")]
            if any(b.to_pyarrow_table().num_rows < n for b in bronze):
                return False
            for j in ("matched", "matched_left"):
                dt = DeltaTable(str(tables / j))
                if any(dt.transaction_version(f"sj/{j}/{b.metadata().id}") != b.version() for b in bronze):
                    return False
            return True
        except Exception:
            return False

    err = open(pipe / "final.stderr", "w")
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 180
    while not done() and time.monotonic() < deadline:
        assert proc.poll() is None, (pipe / "final.stderr").read_text()
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, (pipe / "final.stderr").read_text()
    err.close()
    assert done()
    final = versions()  # most kills must land before the end (a fast machine may finish early)
    assert sum(k != final for k in kills_at) >= 3, f"the kills interrupted nothing: {kills_at}"
    assert joined(pipe, "matched") == oracle(left, right, side_batches(pipe))
    assert joined(pipe, "matched_left") == oracle(left, right, side_batches(pipe), outer=True)


def test_stream_stream_joins_that_cannot_run_are_refused(tmp_path):
    pipe = kafka_pipeline(tmp_path, "sj2", "127.0.0.1:1")
    (pipe / "p.sql").write_text("""
CREATE OR REFRESH STREAMING TABLE l AS SELECT value.id AS id, value.ts AS ts
FROM STREAM read_kafka(topic => 'x', value_format => 'json', value_schema => 'id INT, ts TIMESTAMP');
CREATE OR REFRESH STREAMING TABLE unbounded AS SELECT a.id
FROM STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a JOIN STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b
  ON a.id = b.id;
CREATE OR REFRESH STREAMING TABLE direct AS SELECT a.offset
FROM STREAM read_kafka(topic => 'x') a JOIN STREAM read_kafka(topic => 'y') b ON a.offset = b.offset;
CREATE OR REFRESH STREAMING TABLE full_outer AS SELECT a.id
FROM STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a FULL JOIN STREAM(l) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b
  ON a.id = b.id AND b.ts BETWEEN a.ts AND a.ts + INTERVAL 1 MINUTE;
""")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1
    assert "p.sql:4:" in r.stderr and "b.ts BETWEEN a.ts AND a.ts + INTERVAL 10 MINUTES" in r.stderr, r.stderr
    assert "not read_kafka directly: ingest each topic into a streaming table first" in r.stderr, r.stderr
    assert "a stream-stream join is INNER or LEFT" in r.stderr, r.stderr
