"""Two `sluice run` workers in one Kafka consumer group (read_kafka group_mode => 'subscribe',
cooperative-sticky): partitions move between them as B joins and A leaves, and the Delta
table ends up with every produced record exactly once."""
import json
import signal
import subprocess
import threading
import time
import uuid

from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import SLUICE, write_pipeline
from test_sql_pipeline_e2e import wait_for as e2e_wait_for

PARTITIONS = 6
TOTAL = 200_000


def wait_for(predicate, timeout=120.0, interval=0.25):
    return e2e_wait_for(predicate, timeout=timeout, interval=interval)


def produce(bootstrap, topic, lo, hi):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(lo, hi):
        producer.produce(topic, key=str(i).encode(), value=json.dumps({"i": i}).encode(),
                         partition=i % PARTITIONS)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)


def group_state(bootstrap, group):
    """The group as the broker sees it (state, members and their partitions): said when a
    worker never gets partitions, so a failure tells whether the group or the worker is stuck."""
    from confluent_kafka.admin import AdminClient
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})  # kept: the future needs its client
        d = admin.describe_consumer_groups([group])[group].result(10)
        members = [(m.client_id, m.host, sorted(tp.partition for tp in (m.assignment.topic_partitions or [])))
                   for m in d.members]
        return f"group {group}: state {d.state}, members {members}"
    except Exception as e:  # the description is for the failure message only
        return f"group {group}: not described ({e!r})"


def table_rows(table):
    if not (table / "_delta_log").exists():
        return 0
    try:
        return DeltaTable(str(table)).to_pyarrow_table(columns=["offset"]).num_rows
    except Exception:  # a log file being written right now
        return 0


class Worker:
    """A `sluice run` process whose output is collected by a thread (so pipes never fill)."""

    def __init__(self, pipe, env=None):
        self.proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.out, self.err = [], []
        self.threads = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.out), daemon=True),
                        threading.Thread(target=self._drain, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _drain(stream, sink):
        for line in stream:
            sink.append(line)

    def rows_written(self):
        total = 0
        for line in list(self.out):
            if line.startswith("raw (") and " written" in line:
                total += int(line.split(" rows read, ")[1].split(" written")[0])
        return total

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        for t in self.threads:
            t.join(timeout=5)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


def test_partitions_move_between_two_workers_without_loss_or_duplication(tmp_path, bootstrap, new_topic):
    topic = new_topic(PARTITIONS)
    name = f"scale-{uuid.uuid4().hex[:8]}"  # its own consumer group (sluice-<name>-raw), not an earlier test's
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: {name}
storage: ./data
mode: continuous
trigger_interval: 200ms
kafka:
  default: {{bootstrap.servers: "{bootstrap}", session.timeout.ms: "10000"}}
""")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT partition, offset, CAST(value AS STRING) AS v
FROM STREAM read_kafka(topic => '{topic}', group_mode => 'subscribe');
""")
    table = pipe / "data" / "tables" / "raw"
    produce(bootstrap, topic, 0, 60_000)
    a = Worker(pipe)
    b = None
    try:
        # (the event log too: two first updates would race to create it)
        event_log = pipe / "data" / "system" / "event_log" / "_delta_log"
        assert wait_for(lambda: table_rows(table) > 0 and event_log.exists()), "".join(a.err)
        # B joins while records keep arriving: the group hands it some of A's partitions.
        b = Worker(pipe)
        producer = threading.Thread(target=produce, args=(bootstrap, topic, 60_000, 140_000))
        producer.start()
        assert wait_for(lambda: b.rows_written() > 0), (
            f"B never wrote rows; {group_state(bootstrap, f'sluice-{name}-raw')}\nB's output:\n" + "".join(b.out)
            + "B's errors:\n" + "".join(b.err) + "A's output:\n" + "".join(a.out[-20:]) + "A's errors:\n" + "".join(a.err))
        producer.join()
        assert wait_for(lambda: table_rows(table) >= 140_000), (table_rows(table), "".join(a.err), "".join(b.err))
        a_rows_before_stop = a.rows_written()
        assert a.stop() == 0, "".join(a.err)
        assert a_rows_before_stop > 0
        # A left: B owns all six partitions again and catches up alone.
        produce(bootstrap, topic, 140_000, TOTAL)
        assert wait_for(lambda: table_rows(table) >= TOTAL), (table_rows(table), "".join(b.err))
        time.sleep(1.0)  # would a duplicate commit still land?
        assert b.stop() == 0, "".join(b.err)
    finally:
        a.kill()
        if b:
            b.kill()

    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    keys = [(r["partition"], r["offset"]) for r in rows]
    assert len(keys) == len(set(keys)), "a (partition, offset) was written twice"
    assert len(rows) == TOTAL
    assert sorted(json.loads(r["v"])["i"] for r in rows) == list(range(TOTAL))
    per_partition = {}
    for p, o in keys:
        per_partition.setdefault(p, []).append(o)
    for p, offsets in per_partition.items():
        assert sorted(offsets) == list(range(len(offsets))), f"gap in partition {p}"
    # Both workers wrote part of it.
    assert a.rows_written() > 0 and b.rows_written() > 0
    assert a.rows_written() + b.rows_written() == TOTAL
