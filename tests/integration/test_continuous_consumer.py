"""A continuous run keeps each assign-mode flow's Kafka consumer across its updates (no new
connection, metadata and assignment per update; the event log counts the consumers each update
made), and still notices what a new consumer per update would: progress moved by another writer
of the table (read again from there) and a topic deleted and re-created while it reads."""
import json
import signal
import subprocess
import time

import pytest
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from conftest import SLUICE
from test_kafka_data_loss import recreate_topic, table_rows, write_sql
from test_sql_pipeline_e2e import kafka_pipeline, produce_values


def start(pipe):
    return subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def table_exists(pipe):
    return (pipe / "data" / "tables" / "raw" / "_delta_log" / f"{0:020}.json").exists()


def row_count(pipe):
    return len(table_rows(pipe)) if table_exists(pipe) else 0


def wait_for(proc, condition, what, timeout=60):
    """Polls `condition` until it holds (fails if sluice exits first or the deadline passes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"sluice exited while waiting for {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def stop(proc):
    """SIGTERM; returns what sluice wrote to stderr."""
    proc.send_signal(signal.SIGTERM)
    try:
        stderr = proc.stderr.read()
        assert proc.wait(timeout=60) == 0, stderr
        return stderr
    finally:
        if proc.poll() is None:
            proc.kill()


def flow_progress(pipe):
    log = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    return [json.loads(e["details"])["flow_progress"] for e in log if e["event_type"] == "flow_progress"]


@pytest.mark.parametrize("options", ["", ", group_mode => 'subscribe'"], ids=["assign", "subscribe"])
def test_continuous_run_keeps_its_consumer(tmp_path, bootstrap, new_topic, options):
    topic = new_topic(3)
    pipe = kafka_pipeline(tmp_path, "kept", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    write_sql(pipe, topic, options)
    proc = start(pipe)
    try:
        wait_for(proc, lambda: table_exists(pipe), "the table")
        produced = []
        for round_ in range(6):  # one round at a time: each is read by an update of its own
            values = [f"r{round_}-{i}" for i in range(30)]
            produce_values(bootstrap, topic, [v.encode() for v in values], partitions=3)
            produced += values
            wait_for(proc, lambda: row_count(pipe) >= len(produced), f"round {round_}")
    finally:
        stderr = stop(proc)
    rows = table_rows(pipe)
    assert sorted(r[2] for r in rows) == sorted(produced)  # every record once
    assert sorted((r[0], r[1]) for r in rows) == [(p, o) for p in range(3) for o in range(60)]
    progress = flow_progress(pipe)
    assert "warning" not in stderr, stderr
    assert all(p["status"] == "COMPLETED" for p in progress), progress
    assert sum(p["metrics"]["num_input_rows"] > 0 for p in progress) >= 6
    created = [p["metrics"]["num_kafka_consumers_created"] for p in progress]
    # The flow's consumer (or group member), and the one that asks the broker for offsets and
    # reads the records checking for a re-created topic.
    assert sum(created) == 2, created
    assert len(created) > 6


def test_progress_moved_by_another_writer_is_read_from_there(tmp_path, bootstrap, new_topic):
    """Another writer records an earlier offset: the kept consumer seeks there (as a consumer made
    for the update would start there) instead of reading on from where it is."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "moved", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    write_sql(pipe, topic)
    produce_values(bootstrap, topic, [f"a{i}".encode() for i in range(10)])
    proc = start(pipe)
    try:
        wait_for(proc, lambda: row_count(pipe) == 10, "the first records")
        pipeline_id = json.loads((pipe / "data" / "system" / "pipeline.json").read_text())["pipeline_id"]
        app_id = f"{pipeline_id}/raw/{topic}/0"
        table = DeltaTable(str(pipe / "data" / "tables" / "raw"))
        assert table.transaction_version(app_id) == 10
        # The other writer: no rows, offset 5 and no fingerprint of the last record read.
        empty = table.to_pyarrow_table().schema.empty_table()
        write_deltalake(table, empty, mode="append", commit_properties=CommitProperties(app_transactions=[
            Transaction(app_id, 5), Transaction(f"sluice:last_record:{app_id}", -1)]))
        produce_values(bootstrap, topic, [f"b{i}".encode() for i in range(10)])
        wait_for(proc, lambda: row_count(pipe) >= 25, "the records after the moved offset")
    finally:
        stop(proc)
    rows = table_rows(pipe)
    expected = [(0, o, f"a{o}") for o in range(10)] + [(0, o, f"a{o}") for o in range(5, 10)] + \
               [(0, 10 + i, f"b{i}") for i in range(10)]
    assert rows == sorted(expected)
    assert DeltaTable(str(pipe / "data" / "tables" / "raw")).transaction_version(app_id) == 20


def test_topic_recreated_while_the_run_reads_is_data_loss(tmp_path, bootstrap, new_topic):
    """Re-created (with more records) while the run is stopped (SIGSTOP: no error from the
    broker reaches its consumer meanwhile): the kept consumer would read on at offset 10 of the
    new topic; the record at offset 9 is checked first."""
    import os
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "recreated", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    write_sql(pipe, topic)
    produce_values(bootstrap, topic, [f"old-{i}".encode() for i in range(10)])
    proc = start(pipe)
    try:
        wait_for(proc, lambda: row_count(pipe) == 10, "the old records")
        old = table_rows(pipe)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            recreate_topic(bootstrap, topic, 1)
            produce_values(bootstrap, topic, [f"new-{i}".encode() for i in range(15)])
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=120) == 1  # continuous: stops by itself on the error
        stderr = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert f"Kafka {topic}[0] was deleted and re-created: the record at offset 9 is not the one" in stderr, stderr
    assert "run a full refresh of the table to start over" in stderr
    assert table_rows(pipe) == old
