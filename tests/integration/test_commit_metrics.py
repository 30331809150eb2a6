"""What the flow progress events record since kp and /metrics exports (README "Server"): each
update's Delta commits and their wall time (checked against the table's own history), the
end-to-end latency from the records' Kafka timestamps (checked against the timestamps Kafka
holds and the commit's own time), the event-time lag of a flow without a watermark, and an
incremental materialized view's state bytes (checked against the state file it saved); and the
exposition passes `promtool check metrics`."""
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from deltalake import DeltaTable

from conftest import SLUICE, run_sluice
from test_serve import get, metric, parse_metrics, start, stop
from test_sql_pipeline_e2e import kafka_pipeline, produce_values
from test_status import event_log

SQL = """
CREATE OR REFRESH STREAMING TABLE orders AS SELECT e.id, e.amount FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS e FROM STREAM read_kafka(topic => '{topic}'));
CREATE MATERIALIZED VIEW by_parity AS SELECT id % 2 AS parity, count(*) AS n, sum(amount) AS amount FROM orders GROUP BY 1;
"""


def kafka_timestamps(bootstrap, topic, n):
    """The Kafka timestamps (ms) of the first n records of partition 0."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "kp-timestamps", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        out = []
        while len(out) < n:
            m = consumer.poll(30)
            assert m is not None and m.error() is None, m and m.error()
            out.append(m.timestamp()[1])
        return out
    finally:
        consumer.close()


def progress(events, dataset):
    return [e["details"]["flow_progress"] for e in events
            if e["event_type"] == "flow_progress" and e["origin"]["dataset_name"] == dataset
            and e["details"]["flow_progress"].get("status")]


def test_commit_latency_end_to_end_latency_and_view_state_are_recorded_and_exported(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "kpm", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    produce_values(bootstrap, topic, [{"id": i, "amount": i * 1.5} for i in range(40)])
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr
    produce_values(bootstrap, topic, [{"id": i, "amount": i * 1.5} for i in range(40, 70)])
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr

    events = event_log(pipe)
    orders = progress(events, "orders")
    assert len(orders) == 2
    # Commits: as many as the table's history shows streaming updates.
    history = DeltaTable(str(pipe / "data" / "tables" / "orders")).history()
    streaming = [h for h in history if h["operation"] == "STREAMING UPDATE"]
    assert sum(p["commits"]["num_commits"] for p in orders) == len(streaming) >= 2
    for p in orders:
        c = p["commits"]
        assert 0 < c["max_duration_ms"] <= c["total_duration_ms"] <= p["duration_ms"]
    # End-to-end: each update made its records visible in one commit here (small data), so the
    # spread of its latencies is the spread of its records' Kafka timestamps, its newest is the
    # newest Kafka holds, and the least latency is at least the commit's time minus that.
    stamps = kafka_timestamps(bootstrap, topic, 70)
    for p, batch, commit in zip(orders, (stamps[:40], stamps[40:]), sorted(streaming, key=lambda h: h["version"])):
        m = p["metrics"]
        assert p["commits"]["num_commits"] == 1
        assert m["newest_kafka_timestamp_ms"] == max(batch)
        assert m["end_to_end_latency_max_ms"] - m["end_to_end_latency_min_ms"] == max(batch) - min(batch)
        assert m["end_to_end_latency_min_ms"] >= commit["timestamp"] - max(batch)
    # The view's state: the partials it saved with its last commit.
    view = progress(events, "by_parity")
    assert view[-1]["refresh"]["mode"] == "incremental", view[-1]["refresh"]
    assert view[-1]["metrics"]["state_rows"] == 2
    state_files = sorted((pipe / "data" / "tables" / "by_parity" / "_sluice_state").rglob("*"), key=lambda f: f.stat().st_mtime)
    state_files = [f for f in state_files if f.is_file()]
    assert state_files and view[-1]["metrics"]["state_bytes"] == state_files[-1].stat().st_size

    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, text = get(url + "/metrics")
        assert code == 200
    finally:
        assert stop(proc) == 0
    metrics = parse_metrics(text)
    labels = {"pipeline": "kpm", "dataset": "orders", "flow": "orders"}
    assert metric(metrics, "sluice_flow_commits_total", **labels) == len(streaming)
    assert metric(metrics, "sluice_flow_commit_duration_seconds_total", **labels) == pytest.approx(
        sum(p["commits"]["total_duration_ms"] for p in orders) / 1000)
    assert metric(metrics, "sluice_flow_last_commit_duration_max_seconds", **labels) == pytest.approx(
        orders[-1]["commits"]["max_duration_ms"] / 1000)
    assert metric(metrics, "sluice_end_to_end_latency_max_seconds", **labels) == pytest.approx(
        orders[-1]["metrics"]["end_to_end_latency_max_ms"] / 1000)
    assert metric(metrics, "sluice_end_to_end_latency_min_seconds", **labels) == pytest.approx(
        orders[-1]["metrics"]["end_to_end_latency_min_ms"] / 1000)
    # No watermark: the event-time lag is now (when /metrics answered) minus the newest Kafka
    # timestamp committed, so at least the time from that record to the last commit.
    assert metric(metrics, "sluice_event_time_lag_seconds", **labels) >= (streaming[0]["timestamp"] - max(stamps)) / 1000
    assert metric(metrics, "sluice_state_bytes", pipeline="kpm", dataset="by_parity", flow="by_parity") == \
        view[-1]["metrics"]["state_bytes"]
    # Last, so a machine without promtool still ran every other check.
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)")
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


STATEFUL_SQL = """
CREATE OR REFRESH STREAMING TABLE plain AS SELECT value.k AS k, value.ts AS ts
FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'k STRING, ts TIMESTAMP');
CREATE OR REFRESH STREAMING TABLE firsts
AS SELECT DISTINCT k, ts FROM (SELECT value.k AS k, value.ts AS ts FROM STREAM read_kafka(topic => '{topic}',
      value_format => 'json', value_schema => 'k STRING, ts TIMESTAMP'))
WATERMARK ts DELAY OF INTERVAL 1 MINUTE;
"""


def test_a_stateful_kafka_flow_records_no_end_to_end_latency(tmp_path, bootstrap, new_topic):
    """A dedup (state across commits) reading Kafka commits rows but has no end-to-end latency
    series, in its events or /metrics; the stateless table reading the same records has one."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "kps", bootstrap)
    (pipe / "p.sql").write_text(STATEFUL_SQL.format(topic=topic))
    produce_values(bootstrap, topic, [{"k": f"k{i % 7}", "ts": f"2026-01-01T00:00:{i:02d}Z"} for i in range(30)])
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr
    events = event_log(pipe)
    [plain] = progress(events, "plain")
    [firsts] = progress(events, "firsts")
    assert plain["metrics"]["num_output_rows"] == 30 and firsts["metrics"]["num_output_rows"] > 0
    assert firsts["commits"]["num_commits"] >= 1  # it committed: the latency was left out, not missing
    assert "end_to_end_latency_max_ms" in plain["metrics"]
    for key in ("end_to_end_latency_max_ms", "end_to_end_latency_min_ms", "newest_kafka_timestamp_ms"):
        assert key not in firsts["metrics"], firsts["metrics"]
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, text = get(url + "/metrics")
        assert code == 200
    finally:
        assert stop(proc) == 0
    metrics = parse_metrics(text)
    assert metric(metrics, "sluice_end_to_end_latency_max_seconds", dataset="plain") > 0
    assert not [k for k in metrics if k[0].startswith("sluice_end_to_end_latency") and ("dataset", "firsts") in k[1]]


def test_a_commit_that_fails_forgets_the_kafka_timestamps_of_its_rows(tmp_path, bootstrap, new_topic):
    """A group member's commit loses to another writer's progress (written into the table's log
    while sluice waits at a paused fail point, just before its commit): its rows are dropped and
    read again from the table's offsets. The next commit's end-to-end latency counts only the
    records it holds: records an hour old in the lost commit must not show up as an hour's wait."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "kpf", bootstrap, extra="mode: continuous\ntrigger_interval: 100ms\n"
                                                             "commit: {max_rows: 4}\n")
    sql = """CREATE OR REFRESH STREAMING TABLE t AS SELECT value.*, _rescued_data FROM STREAM read_kafka(
      topic => '{topic}', value_format => 'json', value_schema => 'id BIGINT'{extra});"""
    (pipe / "p.sql").write_text(sql.format(topic=topic, extra=""))
    produce_values(bootstrap, topic, [{"id": i} for i in range(3)])  # offsets 0-2
    ran = run_sluice("run", pipe, "--once", timeout=180)
    assert ran.returncode == 0, ran.stderr
    log = pipe / "data" / "tables" / "t" / "_delta_log"
    txns = {}
    for f in sorted(log.glob("*.json")):
        for line in f.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                txns[action["txn"]["appId"]] = action["txn"]["version"]
    [offset_app] = [a for a, v in txns.items() if v == 3]
    others = [a for a in txns if a != offset_app and topic in a]  # the last record's fingerprint

    hour_ago = int(time.time() * 1000) - 3_600_000
    producer = Producer({"bootstrap.servers": bootstrap})
    # Offsets 3-7, an hour old: the lost commit takes 3-6. Offset 3 cannot be decoded: a dead
    # letter makes that commit commit its side table first, where the fail point pauses. Offsets
    # 4 and 5 rescue a field: counted only if the lost commit's counts leaked into the next one.
    for i in range(3, 8):
        value = b'{"id": broken' if i == 3 else json.dumps({"id": i, **({"x": i} if i in (4, 5) else {})}).encode()
        producer.produce(topic, value=value, timestamp=hour_ago + i)
    for i in range(8, 13):  # offsets 8-12, now; offset 10 rescues a field
        producer.produce(topic, value=json.dumps({"id": i, **({"x": i} if i == 10 else {})}).encode())
    assert producer.flush(60) == 0
    fresh = kafka_timestamps(bootstrap, topic, 13)[8:]

    (pipe / "p.sql").write_text(sql.format(topic=topic, extra=", group_mode => 'subscribe'"))
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, SLUICE_FAILPOINT_PAUSE="after_side_table_commit"))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    err = []
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr] + [lines.put(None)], daemon=True).start()
    try:
        while True:  # the first commit (offsets 3-6) waits here, its side table committed
            line = lines.get(timeout=180)
            assert line is not None, "the run ended before its first commit: " + "".join(err)
            err.append(line)
            if "fail point 'after_side_table_commit' paused" in line:
                break
        threading.Thread(target=lambda: [err.append(line) for line in iter(lines.get, None)], daemon=True).start()
        # Another writer records offsets up to 8 (3-7 are its) for the same partition.
        version = max(int(f.stem) for f in log.glob("*.json")) + 1
        actions = [{"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "STREAMING UPDATE",
                                   "operationParameters": {}, "engineInfo": "test"}},
                   {"txn": {"appId": offset_app, "version": 8, "lastUpdated": int(time.time() * 1000)}}]
        actions += [{"txn": {"appId": a, "version": -1, "lastUpdated": int(time.time() * 1000)}} for a in others]
        with open(log / f"{version:020d}.json", "x") as f:
            f.write("".join(json.dumps(a) + "\n" for a in actions))
        proc.stdin.close()  # go on; no more pauses (EOF)
        deadline = time.monotonic() + 120
        while sorted(r["id"] for r in DeltaTable(str(log.parent)).to_pyarrow_table().to_pylist()) != \
                [0, 1, 2, 8, 9, 10, 11, 12]:
            assert proc.poll() is None and time.monotonic() < deadline, "".join(err)
            time.sleep(0.2)  # a poll interval, not a synchronisation
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, "".join(err)
    assert "rows dropped uncommitted" in "".join(err), "".join(err)
    [update] = [p for p in progress(event_log(pipe), "t") if p["metrics"]["num_output_rows"] == 5]
    m = update["metrics"]
    assert m["newest_kafka_timestamp_ms"] == max(fresh)
    # Every record committed was produced just now: no wait near the hour-old ones' age.
    assert 0 <= m["end_to_end_latency_max_ms"] < 1_800_000, m
    # The rescued counts are those of the rows committed (8-12, of them offset 10), as the table says.
    rows = DeltaTable(str(log.parent)).to_pyarrow_table().to_pylist()
    assert [r["id"] for r in rows if r["_rescued_data"] is not None] == [10]
    assert update["rescued_data"] == {"num_rows": 5, "num_rescued_rows": 1, "rescued_rate": 0.2}, update
