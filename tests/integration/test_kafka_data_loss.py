"""Kafka data loss against the real broker: a topic deleted and re-created (with more, as many or
fewer records than the table read) and records expired under the table's position are errors by
default; with fail_on_data_loss => false the flow goes on (a re-created topic from its start, as
Spark does) and every lost range is a data_loss event in the event-log table. Also: --once with
max_offsets_per_trigger reads everything available, one commit per trigger."""
import json
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values


def recreate_topic(bootstrap, topic, partitions):
    """Deletes the topic and creates it again (retried while the broker still finishes the
    deletion: the condition is the broker accepting the creation, bounded by a deadline)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(timeout=30)
    deadline = time.monotonic() + 60
    while True:
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(timeout=30)
            return
        except KafkaException as e:
            if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def write_sql(pipe, topic, options=""):
    (pipe / "t.sql").write_text(
        f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT CAST(value AS STRING) AS v, partition, offset "
        f"FROM STREAM read_kafka(topic => '{topic}'{options});")


def table_rows(pipe):
    rows = DeltaTable(str(pipe / "data" / "tables" / "raw")).to_pyarrow_table().to_pylist()
    return sorted((r["partition"], r["offset"], r["v"]) for r in rows)


def data_loss_events(pipe):
    """The data_loss events, read from the event-log Delta table with deltalake."""
    log = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    out = [(e["level"], e["origin"]["dataset_name"], json.loads(e["details"])["data_loss"])
           for e in log if e["event_type"] == "data_loss"]
    return sorted(out, key=lambda e: (e[2]["partition"], e[2]["from_offset"]))


@pytest.mark.parametrize("new_per_partition", [15, 5], ids=["more_records", "as_many_records"])
def test_recreated_topic_is_data_loss(tmp_path, bootstrap, new_topic, new_per_partition):
    topic = new_topic(2)
    produce_values(bootstrap, topic, [f"old-{i}".encode() for i in range(10)], partitions=2)
    pipe = kafka_pipeline(tmp_path, "recreated", bootstrap)
    write_sql(pipe, topic)
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    old = table_rows(pipe)
    assert len(old) == 10

    recreate_topic(bootstrap, topic, 2)
    new_values = [f"new-{i}".encode() for i in range(2 * new_per_partition)]
    produce_values(bootstrap, topic, new_values, partitions=2)
    # Offsets 0..4 were read from the old topic; the new one holds 0..new_per_partition-1.
    failed = run_sluice("run", pipe, "--once")
    assert failed.returncode == 1, failed.stdout
    assert f"Kafka {topic}[0] was deleted and re-created: the record at offset 4 is not the one the table " \
           f"read there (the table has read up to offset 4; the topic now holds offsets 0 to " \
           f"{new_per_partition - 1})" in failed.stderr, failed.stderr
    assert "run a full refresh of the table to start over, or set fail_on_data_loss => false" in failed.stderr
    assert table_rows(pipe) == old  # nothing committed

    write_sql(pipe, topic, ", fail_on_data_loss => false")
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    new_rows = [(i % 2, i // 2, v.decode()) for i, v in enumerate(new_values)]
    assert table_rows(pipe) == sorted(old + new_rows)  # the new topic from its start
    loss = [{"topic": topic, "partition": p, "from_offset": 5, "until_offset": None, "resumed_at_offset": 0,
             "reason": "topic re-created"} for p in (0, 1)]
    assert data_loss_events(pipe) == [("WARN", "raw", l) for l in loss]

    # The progress now belongs to the new topic: a rerun neither reports nor re-reads anything.
    again = run_sluice("run", pipe, "--once")
    assert again.returncode == 0, again.stderr
    assert table_rows(pipe) == sorted(old + new_rows)
    assert len(data_loss_events(pipe)) == 2


def test_recreated_topic_with_fewer_records_is_data_loss(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [f"old-{i}".encode() for i in range(20)])
    pipe = kafka_pipeline(tmp_path, "fewer", bootstrap)
    write_sql(pipe, topic)
    assert run_sluice("run", pipe, "--once").returncode == 0
    recreate_topic(bootstrap, topic, 1)
    produce_values(bootstrap, topic, [f"new-{i}".encode() for i in range(5)])
    failed = run_sluice("run", pipe, "--once")
    assert failed.returncode == 1
    assert f"Kafka {topic}[0] ends at offset 5 but the table has already read up to 20 (the log was truncated, " \
           f"e.g. by an unclean leader election, or the topic was deleted and recreated); run a full refresh of " \
           f"the table to start over, or set fail_on_data_loss => false to go on at its end (offset 5)" \
           in failed.stderr, failed.stderr

    # A position past the end looks the same after a truncated log (unclean leader election),
    # whose records below the end the table has read: the flow goes on at the end, as Spark does
    # (re-reading from the first offset would duplicate them), and says that it cannot tell.
    write_sql(pipe, topic, ", fail_on_data_loss => false")
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    old_rows = [(0, i, f"old-{i}") for i in range(20)]
    assert table_rows(pipe) == old_rows
    assert data_loss_events(pipe) == [("WARN", "raw", {
        "topic": topic, "partition": 0, "from_offset": 20, "until_offset": None, "resumed_at_offset": 5,
        "reason": "log truncated or topic re-created"})]
    produce_values(bootstrap, topic, [f"new-{i}".encode() for i in range(5, 8)])
    again = run_sluice("run", pipe, "--once")
    assert again.returncode == 0, again.stderr
    assert table_rows(pipe) == sorted(old_rows + [(0, i, f"new-{i}") for i in range(5, 8)])
    assert len(data_loss_events(pipe)) == 1


def test_expired_records_are_a_lost_range_in_the_event_log(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [f"a-{i}".encode() for i in range(20)])
    pipe = kafka_pipeline(tmp_path, "expired", bootstrap)
    write_sql(pipe, topic)
    assert run_sluice("run", pipe, "--once").returncode == 0
    produce_values(bootstrap, topic, [f"b-{i}".encode() for i in range(20)])  # offsets 20..39
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.delete_records([TopicPartition(topic, 0, 30)]).values():
        f.result(timeout=30)  # the log now starts at 30: 20..29 were never read

    failed = run_sluice("run", pipe, "--once")
    assert failed.returncode == 1
    assert f"Kafka {topic}[0] lost data: the table has read up to offset 20 but the topic now starts at " \
           f"offset 30" in failed.stderr

    write_sql(pipe, topic, ", fail_on_data_loss => false")
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    assert [r[1] for r in table_rows(pipe)] == list(range(20)) + list(range(30, 40))
    assert data_loss_events(pipe) == [("WARN", "raw", {
        "topic": topic, "partition": 0, "from_offset": 20, "until_offset": 30, "resumed_at_offset": 30,
        "reason": "expired"})]
    shown = run_sluice("events", pipe, "--type", "data_loss", "--format", "json")
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 1


def test_once_with_max_offsets_per_trigger_reads_everything_in_triggers(tmp_path, bootstrap, new_topic):
    topic = new_topic(3)
    produce_values(bootstrap, topic, [str(i).encode() for i in range(1000)], partitions=3)
    pipe = kafka_pipeline(tmp_path, "triggers", bootstrap)
    write_sql(pipe, topic, ", max_offsets_per_trigger => 150")
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    path = str(pipe / "data" / "tables" / "raw")
    table = DeltaTable(path)
    rows = table_rows(pipe)
    assert [(p, o) for p, o, _ in rows] == sorted((i % 3, i // 3) for i in range(1000))
    assert sorted(int(v) for _, _, v in rows) == list(range(1000))
    # Each trigger is its own commit of at most 150 records (row counts per version, read back
    # from the table's versions, not from the commit's own metrics).
    counts = [DeltaTable(path, version=v).to_pyarrow_table().num_rows for v in range(table.version() + 1)]
    per_commit = [b - a for a, b in zip([0] + counts, counts) if b != a]
    assert sum(per_commit) == 1000 and max(per_commit) <= 150, per_commit
    assert len(per_commit) >= 7, per_commit
    progress = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    metrics = json.loads(progress.stdout.splitlines()[-1])["details"]["flow_progress"]["metrics"]
    assert metrics["num_output_rows"] == 1000 and metrics["backlog_records"] == 0


def test_starting_offsets_outside_the_topic_are_named(tmp_path, bootstrap, new_topic):
    """An explicit starting offset past the end is a configuration error; one whose records
    expired is data loss (an error, or with fail_on_data_loss => false a start at the first
    offset left and a data_loss event), not a "table has read up to" message about progress
    the table never had."""
    topic = new_topic(1)
    produce_values(bootstrap, topic, [f"a-{i}".encode() for i in range(20)])
    pipe = kafka_pipeline(tmp_path, "starting", bootstrap)
    write_sql(pipe, topic, f", startingOffsets => '{{\"{topic}\": {{\"0\": 25}}}}'")
    past = run_sluice("run", pipe, "--once")
    assert past.returncode == 1
    assert f"the starting offset 25 of Kafka {topic}[0] is past its end (offset 20)" in past.stderr, past.stderr

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.delete_records([TopicPartition(topic, 0, 10)]).values():
        f.result(timeout=30)
    write_sql(pipe, topic, f", startingOffsets => '{{\"{topic}\": {{\"0\": 5}}}}'")
    expired = run_sluice("run", pipe, "--once")
    assert expired.returncode == 1
    assert f"the starting offset 5 of Kafka {topic}[0] is no longer in the topic, which now starts at " \
           f"offset 10" in expired.stderr, expired.stderr
    write_sql(pipe, topic, f", startingOffsets => '{{\"{topic}\": {{\"0\": 5}}}}', fail_on_data_loss => false")
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    assert [r[1] for r in table_rows(pipe)] == list(range(10, 20))
    assert data_loss_events(pipe) == [("WARN", "raw", {
        "topic": topic, "partition": 0, "from_offset": 5, "until_offset": 10, "resumed_at_offset": 10,
        "reason": "expired"})]


def test_group_member_detects_a_recreated_topic(tmp_path, bootstrap, new_topic):
    """group_mode => 'subscribe' (continuous): partitions the group assigns are checked too."""
    import signal
    import subprocess

    from conftest import SLUICE
    topic = new_topic(1)
    produce_values(bootstrap, topic, [f"old-{i}".encode() for i in range(10)])
    pipe = kafka_pipeline(tmp_path, "member", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    write_sql(pipe, topic, ", group_mode => 'subscribe'")
    assert run_sluice("run", pipe, "--once").returncode == 0
    old = table_rows(pipe)
    recreate_topic(bootstrap, topic, 1)
    produce_values(bootstrap, topic, [f"new-{i}".encode() for i in range(15)])

    failed = run_sluice("run", pipe, timeout=120)  # continuous: stops by itself on the error
    assert failed.returncode == 1
    assert f"Kafka {topic}[0] was deleted and re-created: the record at offset 9 is not the one" in failed.stderr
    assert table_rows(pipe) == old

    write_sql(pipe, topic, ", group_mode => 'subscribe', fail_on_data_loss => false")
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while len(table_rows(pipe)) < 25 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert table_rows(pipe) == sorted(old + [(0, i, f"new-{i}") for i in range(15)])
    assert data_loss_events(pipe) == [("WARN", "raw", {
        "topic": topic, "partition": 0, "from_offset": 10, "until_offset": None, "resumed_at_offset": 0,
        "reason": "topic re-created"})]


@pytest.mark.parametrize("fail_on_data_loss", [True, False])
def test_records_expiring_while_the_flow_reads_them_are_data_loss(tmp_path, bootstrap, new_topic, fail_on_data_loss):
    """Retention deleting what the flow reads next (here: SIGSTOP after its first commit, delete
    everything, SIGCONT) used to make librdkafka jump to the end silently."""
    import os
    import signal
    import subprocess

    from conftest import SLUICE, write_pipeline
    topic = new_topic(1)
    total = 100_000
    produce_values(bootstrap, topic, [b"x" * 500] * total)  # 50 MB: far more than the prefetch below
    pipe = write_pipeline(tmp_path / "pipe", f"""name: racing
storage: ./data
commit: {{max_rows: 1000}}
kafka:
  default:
    bootstrap.servers: "{bootstrap}"
    queued.max.messages.kbytes: "256"
    max.partition.fetch.bytes: "65536"
    fetch.max.bytes: "65536"
    message.max.bytes: "65536"
""")
    write_sql(pipe, topic, "" if fail_on_data_loss else ", fail_on_data_loss => false")
    log = pipe / "data" / "tables" / "raw" / "_delta_log"
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe), "--once"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (log / f"{1:020d}.json").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.001)
        # It must still run here (it once had exited, and os.kill raised ProcessLookupError
        # without saying why): show what it printed.
        assert proc.poll() is None, f"sluice exited ({proc.returncode}) before it could be stopped: " \
            f"{proc.communicate()}"
        os.kill(proc.pid, signal.SIGSTOP)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.delete_records([TopicPartition(topic, 0, total)]).values():
            f.result(timeout=30)
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    read = DeltaTable(str(pipe / "data" / "tables" / "raw")).transaction_version(f"racing/raw/{topic}/0")
    if fail_on_data_loss:
        assert read is not None and 1000 <= read < total, read  # stopped well before the end
        assert proc.returncode == 1, out
        assert f"Kafka {topic}[0] lost data while the table read it: its next offset " in err, err
        assert f"is no longer in the topic, which now holds offsets {total} to {total - 1}" in err, err
        return
    assert proc.returncode == 0, err
    assert read == total  # went on after the lost range
    events = data_loss_events(pipe)
    assert len(events) == 1
    loss = events[0][2]
    assert 1000 <= loss["from_offset"] < total
    assert loss["until_offset"] == total and loss["resumed_at_offset"] == total and loss["reason"] == "expired"
    # The table holds exactly the offsets before the lost range.
    assert [r[1] for r in table_rows(pipe)] == list(range(loss["from_offset"]))


SIDE_SQL = """
CREATE OR REFRESH STREAMING TABLE orders (
  CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW
) TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT value.*, partition AS src_partition, offset AS src_offset
FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'id BIGINT, amount DOUBLE'{options});
"""


def side_records(tag, n):
    """Record i: not JSON when i % 4 == 1 (dead letter), amount <= 0 when i % 4 == 2 (quarantine)."""
    out = []
    for i in range(n):
        if i % 4 == 1:
            out.append(f'{tag}-{i} not json'.encode())
        else:
            out.append(json.dumps({"id": i, "amount": -1.0 if i % 4 == 2 else 1.0 + i}).encode())
    return out


def test_recreated_topic_side_rows_are_written_exactly_once(tmp_path, bootstrap, new_topic):
    """Progress goes back to the new topic's start, and so does the dead-letter and quarantine
    tables': the new topic's bad records at offsets the old topic had read are not skipped."""
    topic = new_topic(1)
    produce_values(bootstrap, topic, side_records("old", 12))
    pipe = kafka_pipeline(tmp_path, "side", bootstrap)
    (pipe / "t.sql").write_text(SIDE_SQL.format(topic=topic, options=""))
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr

    recreate_topic(bootstrap, topic, 1)
    produce_values(bootstrap, topic, side_records("new", 16))  # offsets 0..11 were read in the old topic
    (pipe / "t.sql").write_text(SIDE_SQL.format(topic=topic, options=", fail_on_data_loss => false"))
    for _ in range(2):  # the rerun adds nothing
        done = run_sluice("run", pipe, "--once")
        assert done.returncode == 0, done.stderr
        tables = pipe / "data" / "tables"
        dead = DeltaTable(str(tables / "orders_dead_letter")).to_pyarrow_table().to_pylist()
        assert sorted((r["offset"], r["value"]) for r in dead) == sorted(
            [(i, f"old-{i} not json".encode()) for i in range(12) if i % 4 == 1]
            + [(i, f"new-{i} not json".encode()) for i in range(16) if i % 4 == 1])
        quarantined = DeltaTable(str(tables / "orders_quarantine")).to_pyarrow_table().to_pylist()
        assert sorted(r["src_offset"] for r in quarantined) == sorted(
            [i for i in range(12) if i % 4 == 2] + [i for i in range(16) if i % 4 == 2])
        good = DeltaTable(str(tables / "orders")).to_pyarrow_table().to_pylist()
        assert sorted(r["src_offset"] for r in good) == sorted(
            [i for i in range(12) if i % 4 in (0, 3)] + [i for i in range(16) if i % 4 in (0, 3)])


def test_recreated_topic_is_read_up_to_the_ending_offsets(tmp_path, bootstrap, new_topic):
    """The end of a partition is planned from where it starts: after the reset to the new topic's
    start, endingOffsets below the old position still bound the read."""
    topic = new_topic(1)
    produce_values(bootstrap, topic, [f"old-{i}".encode() for i in range(20)])
    pipe = kafka_pipeline(tmp_path, "ending", bootstrap)
    write_sql(pipe, topic)
    assert run_sluice("run", pipe, "--once").returncode == 0
    recreate_topic(bootstrap, topic, 1)
    produce_values(bootstrap, topic, [f"new-{i}".encode() for i in range(30)])
    write_sql(pipe, topic, f", fail_on_data_loss => false, endingOffsets => '{{\"{topic}\": {{\"0\": 10}}}}'")
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    assert table_rows(pipe) == sorted([(0, i, f"old-{i}") for i in range(20)] + [(0, i, f"new-{i}") for i in range(10)])
