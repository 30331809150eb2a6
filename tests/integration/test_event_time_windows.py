"""Event-time windows in streaming tables: out-of-order, late and duplicate events through Kafka
into tumbling and sliding windows equal an oracle computed here in plain Python with the same
watermark rules (including which rows were late), also across SIGKILLs of a continuous run."""
import datetime
import json
import random
import signal
import subprocess
import time
from collections import defaultdict

import pytest
from deltalake import DeltaTable

from conftest import SLUICE, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

BASE = 1767225600  # 2026-01-01 00:00:00 UTC
SCHEMA = "k STRING, ts TIMESTAMP, v BIGINT"


def make_events(n, seed):
    """Out of order (jitter up to 4 minutes back, the watermark delay is 3), some very late (15 minutes back), some sent
    twice in a row (duplicates count twice: there is no dedup)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        t = BASE + i * 10 + rnd.randint(-240, 20)
        if i % 37 == 0:
            t -= 900
        e = {"k": rnd.choice("abc"), "ts": t, "v": rnd.randint(1, 100)}
        out.append(e)
        if i % 50 == 7:
            out.append(dict(e))
    return out


def as_json(e):
    ts = datetime.datetime.fromtimestamp(e["ts"], datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return {"k": e["k"], "ts": ts, "v": e["v"]}


def oracle(events, delay, size, slide, min_count=0):
    """Arrival order (one partition): a row is late when its time is below the watermark before
    it; the watermark is max event time so far minus the delay, never moving back; a window is
    emitted when the watermark reaches its end. Returns ({(k, start): (count, sum)}, late offsets)."""
    watermark = None
    highest = None
    late = []
    windows = defaultdict(list)
    for offset, e in enumerate(events):
        t = e["ts"]
        is_late = watermark is not None and t < watermark
        if highest is None or t > highest:
            highest = t
            watermark = highest - delay if watermark is None else max(watermark, highest - delay)
        if is_late:
            late.append(offset)
            continue
        start = (t // slide) * slide
        while start + size > t:
            windows[(e["k"], start)].append(e["v"])
            start -= slide
    done = {key: (len(vs), sum(vs)) for key, vs in windows.items()
            if key[1] + size <= watermark and len(vs) > min_count}
    return done, late


def upstream_batches(pipe, table, column):
    """The values of `column` in each commit of an upstream table that changes data, in commit
    order: the batches an event-time operator reading that table sees (its watermark moves once
    per batch)."""
    import pyarrow.parquet as pq
    root = pipe / "data" / "tables" / table
    out = []
    for f in sorted((root / "_delta_log").glob("*.json")):
        batch = []
        for line in f.read_text().splitlines():
            action = json.loads(line) if line.strip() else {}
            # Compaction (OPTIMIZE, auto compaction) adds files with dataChange false: rows
            # already read, which a streaming reader skips.
            if "add" in action and action["add"].get("dataChange", True):
                batch += pq.read_table(root / action["add"]["path"], columns=[column]).column(column).to_pylist()
        if batch:
            out.append(batch)
    return out


def oracle_batched(events, batches, delay, size, slide, min_count=0):
    """As oracle(), for a Delta source: `batches` are lists of indices into `events`, one per
    upstream commit, in the order the operator reads them; a row is late when below the watermark as it stood before its batch,
    and the watermark moves once after each batch (as Spark's does)."""
    watermark = highest = None
    late = []
    windows = defaultdict(list)
    for batch in batches:
        before = watermark
        for offset in batch:
            e = events[offset]
            t = e["ts"]
            if before is not None and t < before:
                late.append(offset)
                continue
            highest = t if highest is None else max(highest, t)
            start = (t // slide) * slide
            while start + size > t:
                windows[(e["k"], start)].append(e["v"])
                start -= slide
        if highest is not None:
            watermark = highest - delay if watermark is None else max(watermark, highest - delay)
    done = {key: (len(vs), sum(vs)) for key, vs in windows.items()
            if key[1] + size <= watermark and len(vs) > min_count}
    return done, sorted(late)


def table_rows(pipe, table):
    rows = DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().to_pylist()
    return rows


def window_result(pipe, table):
    out = {}
    for r in table_rows(pipe, table):
        key = (r["k"], int(r["ws"].timestamp()))
        assert key not in out, f"window {key} written twice"
        out[key] = (r["n"], r["s"])
    return out


def late_offsets(pipe, table):
    rows = table_rows(pipe, f"{table}_late")
    offsets = [r["_source_offset"] for r in rows]
    assert len(offsets) == len(set(offsets)), "a late row was written twice"
    return sorted(offsets)


def windowed_sql(topic, table, window, delay_minutes=3, having="", late_rows="table", extra_props="", limit=""):
    return f"""
CREATE OR REFRESH STREAMING TABLE {table}
TBLPROPERTIES ('sluice.late_rows' = '{late_rows}'{extra_props})
AS SELECT k, window.start AS ws, window.end AS we, count(*) AS n, sum(v) AS s
FROM (SELECT value.k AS k, value.ts AS ts, value.v AS v
      FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest',{limit}
                             value_format => 'json', value_schema => '{SCHEMA}'))
WATERMARK ts DELAY OF INTERVAL {delay_minutes} MINUTES
GROUP BY k, {window}
{having};
"""


def flow_metrics(pipe, table):
    r = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert r.returncode == 0, r.stderr
    return [e["details"]["flow_progress"]["metrics"] for e in map(json.loads, r.stdout.splitlines())
            if e["dataset"] == table]


def test_tumbling_and_sliding_windows_equal_the_oracle(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    events = make_events(600, seed=6)
    pipe = kafka_pipeline(tmp_path, "win", bootstrap)
    (pipe / "tumbling.sql").write_text(windowed_sql(topic, "tumbling", "window(ts, '5 minutes')"))
    (pipe / "sliding.sql").write_text(windowed_sql(topic, "sliding", "window(ts, '10 minutes', '5 minutes')",
                                                   having="HAVING count(*) > 3"))
    # Two updates: the state carries open windows and the watermark from one to the next.
    half = len(events) // 2
    produce_values(bootstrap, topic, [as_json(e) for e in events[:half]])
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    produce_values(bootstrap, topic, [as_json(e) for e in events[half:]])
    second = run_sluice("run", pipe, "--once")
    assert second.returncode == 0, second.stderr

    want, want_late = oracle(events, 180, 300, 300)
    assert len(want_late) > 10 and len(want) > 20
    assert window_result(pipe, "tumbling") == want
    assert late_offsets(pipe, "tumbling") == want_late
    want_sliding, _ = oracle(events, 180, 600, 300, min_count=3)
    assert window_result(pipe, "sliding") == want_sliding
    assert late_offsets(pipe, "sliding") == want_late

    metrics = flow_metrics(pipe, "tumbling")
    assert sum(m.get("num_late_rows", 0) for m in metrics) == len(want_late)
    assert all("state_rows" in m and "state_bytes" in m for m in metrics)


def test_full_refresh_with_a_new_delay_rewrites_the_late_table(tmp_path, bootstrap, new_topic):
    # A full refresh resets the late table with the target: with a shorter delay, more rows are
    # late, and the late table must hold exactly those of the new run (it kept the old rows and
    # their progress, so the new late rows below it were skipped as already written).
    topic = new_topic(1)
    events = make_events(600, seed=11)
    pipe = kafka_pipeline(tmp_path, "refresh_late", bootstrap)
    props = ", 'pipelines.reset.allowed' = 'true'"
    (pipe / "w.sql").write_text(windowed_sql(topic, "w", "window(ts, '5 minutes')", extra_props=props))
    produce_values(bootstrap, topic, [as_json(e) for e in events])
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    _, late_3 = oracle(events, 180, 300, 300)
    assert late_offsets(pipe, "w") == late_3

    (pipe / "w.sql").write_text(windowed_sql(topic, "w", "window(ts, '5 minutes')", delay_minutes=1,
                                             extra_props=props))
    second = run_sluice("run", pipe, "--once", "--full-refresh", "w")
    assert second.returncode == 0, second.stderr
    want, late_1 = oracle(events, 60, 300, 300)
    assert set(late_1) > set(late_3)
    assert window_result(pipe, "w") == want
    assert late_offsets(pipe, "w") == late_1


def test_late_rows_are_counted_without_a_late_table(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    events = make_events(200, seed=11)
    pipe = kafka_pipeline(tmp_path, "win", bootstrap)
    (pipe / "t.sql").write_text(windowed_sql(topic, "counted", "window(ts, '5 minutes')", late_rows="count"))
    produce_values(bootstrap, topic, [as_json(e) for e in events])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    want, want_late = oracle(events, 180, 300, 300)
    assert window_result(pipe, "counted") == want
    assert not (pipe / "data" / "tables" / "counted_late").exists()
    assert sum(m.get("num_late_rows", 0) for m in flow_metrics(pipe, "counted")) == len(want_late)


def test_aggregation_without_window_or_watermark_is_refused(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "win", bootstrap)
    (pipe / "t.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE nowm
AS SELECT k, count(*) AS n
FROM (SELECT value.k AS k, value.ts AS ts FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
      value_schema => '{SCHEMA}'))
GROUP BY k, window(ts, '5 minutes');
""")
    r = run_sluice("validate", pipe)
    assert r.returncode != 0
    assert "needs a watermark" in r.stderr + r.stdout and "t.sql:" in r.stderr + r.stdout
    (pipe / "t.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE nowin
AS SELECT k, count(*) AS n
FROM (SELECT value.k AS k, value.ts AS ts FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
      value_schema => '{SCHEMA}'))
WATERMARK ts DELAY OF INTERVAL 1 MINUTE
GROUP BY k;
""")
    r = run_sluice("validate", pipe)
    assert r.returncode != 0
    assert "need an event-time window" in r.stderr + r.stdout


def test_crash_points_between_late_table_state_and_commit(tmp_path, bootstrap, new_topic):
    """A crash after the late table committed, or after the state was saved but before the
    target's commit, leaves an orphan; the rerun ignores it and the result is exact."""
    topic = new_topic(1)
    events = make_events(400, seed=3)
    pipe = kafka_pipeline(tmp_path, "win", bootstrap)
    (pipe / "t.sql").write_text(windowed_sql(topic, "crashy", "window(ts, '5 minutes')"))
    produce_values(bootstrap, topic, [as_json(e) for e in events[:200]])
    assert run_sluice("run", pipe, "--once").returncode == 0
    produce_values(bootstrap, topic, [as_json(e) for e in events[200:]])
    for point in ("after_side_table_commit", "after_state_save"):
        crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": point})
        assert crashed.returncode == 137, (point, crashed.returncode, crashed.stderr)
    ok = run_sluice("run", pipe, "--once")
    assert ok.returncode == 0, ok.stderr
    want, want_late = oracle(events, 180, 300, 300)
    assert window_result(pipe, "crashy") == want
    assert late_offsets(pipe, "crashy") == want_late


def run_with_sigkills(pipe, pipeline, table, topic, n_events, rounds=5, seed=7, min_progress=2):
    """Runs the continuous pipeline `rounds` times, each SIGKILLed at a random moment, then once
    more until the table's progress reaches `n_events`, stopped with SIGTERM.
    A kill waits for the run's own commits, polled, not for a time: most rounds are killed 0-60 ms
    after their 1st-3rd commit (inside the next update: reading, state, data files or the commit),
    one in four 50-400 ms after the start (start-up, the state's restore, the first update). So
    each round costs a few updates whatever the machine's speed, and the data can be small."""
    rnd = random.Random(seed)
    path = pipe / "data" / "tables" / table

    def offset():
        if not (path / "_delta_log").exists():
            return 0
        try:
            return DeltaTable(str(path)).transaction_version(f"{pipeline}/{table}/{topic}/0") or 0
        except Exception:
            return 0

    def version():  # the newest commit file: cheap enough to poll every few milliseconds
        log = path / "_delta_log"
        names = [p.name for p in log.glob("*.json")] if log.exists() else []
        return max((int(n[:20]) for n in names if len(n) == 25), default=-1)

    kills_at = []
    for round_ in range(rounds):
        err = open(pipe / f"run{round_}.stderr", "w")
        before = version()
        proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
        if rnd.random() < 0.25:
            time.sleep(rnd.uniform(0.05, 0.4))  # the kill's random moment, not a wait for sluice
        else:
            commits = rnd.randint(1, 3)
            deadline = time.monotonic() + 60
            while version() < before + commits and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rnd.uniform(0, 0.06))
        if proc.poll() is not None:
            err.close()
            raise AssertionError((pipe / f"run{round_}.stderr").read_text())
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        err.close()
        kills_at.append(offset())
    print(f"\nkills at offsets {kills_at} of {n_events}")
    # Most kills must land mid-stream (a fast machine may finish before the last ones).
    assert sum(k < n_events for k in kills_at) >= 3, f"the kills came too late to interrupt anything: {kills_at}"
    assert len(set(kills_at)) > min_progress, f"the runs between kills made no progress: {kills_at}"
    err = open(pipe / "final.stderr", "w")
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 120
    while offset() < n_events and time.monotonic() < deadline:
        assert proc.poll() is None, (pipe / "final.stderr").read_text()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, (pipe / "final.stderr").read_text()
    err.close()
    assert offset() == n_events


@pytest.mark.slow
def test_sigkill_at_random_moments_gives_the_uninterrupted_result(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    events = make_events(3000, seed=42)  # the kills wait for commits: a few updates each
    produce_values(bootstrap, topic, [as_json(e) for e in events])
    pipe = kafka_pipeline(tmp_path, "chaos", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    (pipe / "t.sql").write_text(windowed_sql(topic, "chaos", "window(ts, '10 minutes', '5 minutes')",
                                             limit=" max_offsets_per_trigger => 97,"))
    run_with_sigkills(pipe, "chaos", "chaos", topic, len(events), rounds=6, seed=7, min_progress=3)
    want, want_late = oracle(events, 180, 600, 300)
    assert window_result(pipe, "chaos") == want
    assert late_offsets(pipe, "chaos") == want_late


def test_windows_over_an_upstream_streaming_table(tmp_path, bootstrap, new_topic):
    """STREAM(bronze) as the source: rows arrive in the upstream's commit order; the late table
    records the upstream version that added each late row."""
    topic = new_topic(1)
    events = make_events(500, seed=9)
    pipe = kafka_pipeline(tmp_path, "win", bootstrap)
    (pipe / "bronze.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE parsed
AS SELECT value.k AS k, value.ts AS ts, value.v AS v, offset
FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest', value_format => 'json',
                       value_schema => '{SCHEMA}');
""")
    (pipe / "gold.sql").write_text("""
CREATE OR REFRESH STREAMING TABLE gold TBLPROPERTIES ('sluice.late_rows' = 'table')
AS SELECT k, window.start AS ws, count(*) AS n, sum(v) AS s
FROM STREAM(parsed) WATERMARK ts DELAY OF INTERVAL 3 MINUTES
GROUP BY k, window(ts, '10 minutes', '5 minutes');
""")
    for lo, hi in ((0, 250), (250, len(events))):
        produce_values(bootstrap, topic, [as_json(e) for e in events[lo:hi]])
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
    # A Delta source: the watermark moves once per batch (each commit of `parsed`, in order).
    want, want_late = oracle_batched(events, upstream_batches(pipe, "parsed", "offset"), 180, 600, 300)
    assert want_late, "the events must include late ones"
    assert window_result(pipe, "gold") == want
    late = table_rows(pipe, "gold_late")
    assert sorted(r["offset"] for r in late) == want_late  # the upstream row's own Kafka offset column
    assert {r["_source_name"] for r in late} == {"parsed"}


def produce_to(bootstrap, topic, partition, events):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for e in events:
        producer.produce(topic, value=json.dumps(as_json(e)).encode(), partition=partition)
    assert producer.flush(30) == 0


def test_watermark_is_the_minimum_over_partitions(tmp_path, bootstrap, new_topic):
    """A partition that lags holds the watermark back: windows the fast partition has passed
    stay open until the slow one catches up; nothing is late meanwhile."""
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "win", bootstrap)
    (pipe / "t.sql").write_text(windowed_sql(topic, "multi", "window(ts, '5 minutes')"))
    slow = [{"k": "s", "ts": BASE + 60 * m, "v": 1} for m in range(0, 8)]        # up to minute 7
    fast = [{"k": "f", "ts": BASE + 60 * m, "v": 2} for m in range(0, 60, 2)]    # up to minute 58
    produce_to(bootstrap, topic, 1, slow)
    produce_to(bootstrap, topic, 0, fast[:1])
    assert run_sluice("run", pipe, "--once").returncode == 0
    produce_to(bootstrap, topic, 0, fast[1:])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    # Watermark = min(minute 58, minute 7) - 3 minutes = minute 4: no window has ended.
    assert window_result(pipe, "multi") == {}
    metrics = flow_metrics(pipe, "multi")
    assert metrics[-1]["watermark_micros"] == (BASE + 4 * 60) * 1_000_000
    # The slow partition catches up: watermark min(58, 59) - 3 = minute 55; windows ending by then
    # close, and none was late (each partition is in order; the oracle reads them merged).
    produce_to(bootstrap, topic, 1, [{"k": "s", "ts": BASE + 60 * 59, "v": 1}])
    assert run_sluice("run", pipe, "--once").returncode == 0
    want, late = oracle(sorted(slow + fast + [{"k": "s", "ts": BASE + 60 * 59, "v": 1}], key=lambda e: e["ts"]),
                        180, 300, 300)
    assert late == []
    assert window_result(pipe, "multi") == want
    assert sum(m.get("num_late_rows", 0) for m in flow_metrics(pipe, "multi")) == 0
