"""`sluice events --follow` prints the events of updates that commit while it runs, and ends
cleanly on SIGTERM; flow_progress reports the Kafka backlog left after an update, none after a
--once update even when max_offsets_per_trigger splits it into triggers."""
import json
import os
import select
import signal
import subprocess
import time

from conftest import SLUICE, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values


def next_line(proc, deadline_s=60):
    """The process's next stdout line (its stdout unbuffered bytes); fails, naming what it got,
    when none ends within deadline_s: a follower that stopped following would otherwise hang the
    test until the suite's timeout. One byte a read, so nothing past the line is taken."""
    line = b""
    end = time.monotonic() + deadline_s
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.monotonic()))
        assert ready, f"no line from {proc.args[:3]} in {deadline_s} s (got {line!r})"
        byte = os.read(proc.stdout.fileno(), 1)
        assert byte, f"{proc.args[:3]} closed its output (got {line!r}, exit {proc.poll()})"
        line += byte
    return line.decode()


def test_follow_prints_new_updates_and_backlog(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "follow", bootstrap)
    (pipe / "t.sql").write_text(
        f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT * FROM STREAM "
        f"read_kafka(topic => '{topic}', max_offsets_per_trigger => 100);")
    produce_values(bootstrap, topic, [b"x"] * 250, partitions=2)
    assert run_sluice("run", pipe, "--once").returncode == 0
    follower = subprocess.Popen([str(SLUICE), "events", str(pipe), "--follow", "--format", "json",
                                 "--type", "flow_progress"], stdout=subprocess.PIPE, bufsize=0)
    try:
        # The first update's event is in the log the follower read at its start: once it printed
        # it, the next two updates commit after that read, so only following can print them
        # (next_line returns when a line comes and fails after 60 s without one).
        seen = [json.loads(next_line(follower))]
        for more in (100, 50):
            produce_values(bootstrap, topic, [b"y"] * more, partitions=2)
            assert run_sluice("run", pipe, "--once").returncode == 0
            seen.append(json.loads(next_line(follower)))
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(timeout=10) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
    metrics = [e["details"]["flow_progress"]["metrics"] for e in seen]
    assert [m["num_output_rows"] for m in metrics] == [250, 100, 50]
    assert [m["backlog_records"] for m in metrics] == [0, 0, 0]
    for e in seen:  # the rate an autoscaler reads beside the backlog: rows read per second of the update
        p = e["details"]["flow_progress"]
        want = p["metrics"]["num_input_rows"] * 1000 / p["duration_ms"] if p["duration_ms"] else 0
        assert abs(p["metrics"]["processed_rows_per_second"] - want) <= 1e-6 * max(want, 1)


def test_commit_cadence_setting_splits_a_long_read_into_commits(tmp_path, bootstrap, new_topic):
    """pipeline.yaml `commit: {max_rows: N}`: a flow commits at least every N records, each
    commit with its progress, so a crash loses at most N records of work."""
    from deltalake import DeltaTable
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "cadence", bootstrap, extra="commit: {max_rows: 100}\n")
    (pipe / "t.sql").write_text(
        f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT offset FROM STREAM read_kafka(topic => '{topic}');")
    produce_values(bootstrap, topic, [b"x"] * 350)
    assert run_sluice("run", pipe, "--once").returncode == 0
    table = DeltaTable(str(pipe / "data" / "tables" / "raw"))
    appends = [h for h in table.history() if h["operation"] == "STREAMING UPDATE"]
    rows = sorted(int(h["operationMetrics"]["numOutputRows"]) for h in appends)
    assert rows == [50, 100, 100, 100]
    assert sorted(table.to_pyarrow_table().column("offset").to_pylist()) == list(range(350))


def test_flow_progress_reports_kafka_lag_per_partition(tmp_path, bootstrap, new_topic):
    """A continuous run that reads 60 records per update from partitions holding 50, 100 and 150:
    each flow_progress event lists every partition's next offset, high-water mark and lag, which
    sum to backlog_records and match the table's rows per partition at the event's version."""
    from confluent_kafka import Producer
    from deltalake import DeltaTable
    from conftest import write_pipeline
    from test_kafka_rebalance import Worker, table_rows, wait_for

    topic = new_topic(3)
    sizes = {0: 50, 1: 100, 2: 150}
    producer = Producer({"bootstrap.servers": bootstrap})
    for p, n in sizes.items():
        for i in range(n):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(30) == 0
    pipe = write_pipeline(tmp_path / "pipe", f"name: lag\nstorage: ./data\nmode: continuous\ntrigger_interval: 200ms\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "t.sql").write_text(
        f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT partition, offset FROM STREAM "
        f"read_kafka(topic => '{topic}', max_offsets_per_trigger => 60);")
    table = pipe / "data" / "tables" / "raw"
    worker = Worker(pipe)
    try:
        assert wait_for(lambda: table_rows(table) >= 300, 60), "".join(worker.err)
        assert worker.stop() == 0, "".join(worker.err)
    finally:
        worker.kill()
    events = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert events.returncode == 0, events.stderr
    progress = [json.loads(line)["details"]["flow_progress"] for line in events.stdout.splitlines()]
    progress = [p for p in progress if p["status"] == "COMPLETED"]
    assert progress and progress[0]["metrics"]["backlog_records"] > 0, progress[:1]
    seen_last = None
    for p in progress:
        lags = p["metrics"]["kafka_lag"]
        assert sorted(l["partition"] for l in lags) == [0, 1, 2] and {l["topic"] for l in lags} == {topic}, lags
        assert sum(l["lag"] for l in lags) == p["metrics"]["backlog_records"], p["metrics"]
        rows = DeltaTable(str(table), version=p["table_version"]).to_pyarrow_table(columns=["partition"])
        per_partition = {q: 0 for q in sizes}
        for q in rows.column("partition").to_pylist():
            per_partition[q] += 1
        for l in lags:
            assert l["high_water_mark"] == sizes[l["partition"]], l
            assert l["lag"] == l["high_water_mark"] - l["next_offset"], l
            assert l["next_offset"] == per_partition[l["partition"]], (l, per_partition)
        seen_last = lags
    assert all(l["lag"] == 0 for l in seen_last), seen_last
