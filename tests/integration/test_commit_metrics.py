"""What the flow progress events record since kp and /metrics exports (README "Server"): each
update's Delta commits and their wall time (checked against the table's own history), the
end-to-end latency from the records' Kafka timestamps (checked against the timestamps Kafka
holds and the commit's own time), the event-time lag of a flow without a watermark, and an
incremental materialized view's state bytes (checked against the state file it saved); and the
exposition passes `promtool check metrics`."""
import json
import shutil
import subprocess

import pytest
from confluent_kafka import Consumer, TopicPartition
from deltalake import DeltaTable

from conftest import run_sluice
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
