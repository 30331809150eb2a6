"""Walking skeleton: Kafka topic -> bronze Delta table, exactly once across runs, checked
with deltalake and DuckDB against what was produced."""
import json
import os
import random
import signal
import subprocess
import time

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import SLUICE, duckdb_connection, run_sluice, write_pipeline


def record_hash(timestamp_ms, key, value):
    """The record fingerprint's hash, written from its definition (FNV-1a 64 over the
    little-endian timestamp, then per field a presence byte, length and bytes; folded to 40 bits)."""
    def fnv(h, data):
        for byte in data:
            h = ((h ^ byte) * 1099511628211) & (2**64 - 1)
        return h

    def le(n):
        return (n & (2**64 - 1)).to_bytes(8, "little")

    def field(h, data):
        return fnv(fnv(h, b"\x00"), le(0)) if data is None else fnv(fnv(fnv(h, b"\x01"), le(len(data))), data)

    h = field(field(fnv(14695981039346656037, le(timestamp_ms)), key), value)
    return (h ^ (h >> 40)) & ((1 << 40) - 1)

def produce(bootstrap, topic, count, seed, partitions=3):
    """Produces `count` records (binary values incl. empty and NUL bytes, ~1/5 null keys,
    headers on some); returns {(partition, offset): (key, value, headers)} as delivered."""
    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20,
                         "batch.num.messages": 10000, "queue.buffering.max.messages": 200000})
    delivered = {}
    errors = []

    def on_delivery(err, msg, record):
        if err is not None:
            errors.append(err)
        else:
            delivered[(msg.partition(), msg.offset())] = record

    for i in range(count):
        key = None if rng.random() < 0.2 else rng.randbytes(rng.randint(0, 12))
        value = rng.randbytes(rng.randint(0, 64)) + b"\x00\xff"
        if i % 7 == 0:
            value = b""
        headers = None
        if i % 3 == 0:
            headers = [("trace", rng.randbytes(8)), ("empty", None), ("trace", b"\x00dup")]
        elif i % 3 == 1:
            headers = [("source", f"gen-{i}".encode())]
        record = (key, value, headers)
        producer.produce(topic, key=key, value=value, headers=headers, partition=i % partitions,
                         on_delivery=lambda err, msg, r=record: on_delivery(err, msg, r))
        if i % 10000 == 0:
            producer.poll(0)
    producer.flush(60)
    assert not errors, errors[:3]
    assert len(delivered) == count
    return delivered


def normalise_headers(headers):
    if not headers:
        return None
    return [(h["key"], h["value"]) for h in headers]


def assert_table_matches(rows, expected, topic):
    """rows: iterable of dicts with the Kafka source columns."""
    seen = set()
    for r in rows:
        pos = (r["partition"], r["offset"])
        assert r["topic"] == topic
        assert pos not in seen, f"duplicate row at partition/offset {pos}"
        seen.add(pos)
        assert pos in expected, f"row at {pos} was never produced"
        key, value, headers = expected[pos]
        assert r["key"] == key, pos
        assert r["value"] == value, pos
        assert normalise_headers(r["headers"]) == (headers or None), pos
        assert r["timestampType"] == 0 and r["timestamp"] is not None
    assert seen == set(expected), f"missing rows: {len(set(expected) - seen)}"


def bronze_pipeline(tmp_path, bootstrap, topic):
    return write_pipeline(tmp_path / "pipe", f"""
name: skeleton
storage: ./data
kafka:
  default:
    bootstrap.servers: {bootstrap}
bronze:
  - table: events_bronze
    topic: {topic}
""")


def test_two_runs_write_every_record_exactly_once(tmp_path, bootstrap, new_topic):
    topic = new_topic(3)
    pipe = bronze_pipeline(tmp_path, bootstrap, topic)
    table = pipe / "data" / "tables" / "events_bronze"

    expected = produce(bootstrap, topic, 100_000, seed=1)
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    assert "events_bronze <- kafka topic" in first.stdout and "100000 rows" in first.stdout

    expected.update(produce(bootstrap, topic, 20_000, seed=2))
    second = run_sluice("run", pipe, "--once")
    assert second.returncode == 0, second.stderr
    assert "20000 rows" in second.stdout

    # deltalake (delta-rs)
    dt = DeltaTable(str(table))
    assert dt.protocol().min_reader_version == 1 and dt.protocol().min_writer_version == 2
    arrow_table = dt.to_pyarrow_table()
    assert arrow_table.num_rows == 120_000
    assert_table_matches(arrow_table.to_pylist(), expected, topic)

    # Progress is in txn actions equal to the end of each partition.
    ends = {}
    for (p, o) in expected:
        ends[p] = max(ends.get(p, -1), o + 1)
    txns = {}
    for path in sorted((table / "_delta_log").glob("*.json")):
        for line in path.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                txns[action["txn"]["appId"]] = action["txn"]["version"]
            if "add" in action:
                stats = json.loads(action["add"]["stats"])
                assert stats["numRecords"] > 0 and "offset" in stats["minValues"]
    assert {k: v for k, v in txns.items() if not k.startswith("sluice:")} == \
        {f"skeleton/events_bronze/{topic}/{p}": ends[p] for p in range(3)}
    # Beside each, the fingerprint of the last record read (docs/decisions.md): distance 0 below
    # the progress, and the hash of that record's timestamp, key and value as the table holds it.
    unit = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[arrow_table.schema.field("timestamp").type.unit]
    epoch = arrow_table.column("timestamp").cast("int64").to_pylist()
    rows = {(r["partition"], r["offset"]): (r, t) for r, t in zip(arrow_table.to_pylist(), epoch)}
    for p in range(3):
        fingerprint = txns[f"sluice:last_record:skeleton/events_bronze/{topic}/{p}"]
        last, stamp = rows[(p, ends[p] - 1)]
        millis = stamp * 1000 // unit
        assert fingerprint >> 40 == 0
        assert fingerprint & ((1 << 40) - 1) == record_hash(millis, last["key"], last["value"])

    # DuckDB's delta extension
    con = duckdb_connection()
    count, distinct = con.sql(
        f"SELECT count(*), count(DISTINCT (topic, partition, \"offset\")) "
        f"FROM delta_scan('{table}')").fetchone()
    assert (count, distinct) == (120_000, 120_000)
    duck_rows = con.sql(f"SELECT * FROM delta_scan('{table}')").arrow().read_all().to_pylist()
    assert_table_matches(duck_rows, expected, topic)

    # Polars (through its own delta reader)
    import polars as pl
    frame = pl.read_delta(str(table))
    assert frame.height == 120_000
    assert frame.select(pl.struct("partition", "offset").n_unique()).item() == 120_000

    # A third run with nothing new commits nothing.
    version = dt.version()
    third = run_sluice("run", pipe, "--once")
    assert third.returncode == 0, third.stderr
    assert DeltaTable(str(table)).version() == version


@pytest.mark.parametrize("continuous,point", [(False, "run_after_lock"), (True, "run_after_lock"),
                                              (False, "run_before_first_update"), (True, "run_before_first_update")])
def test_sigterm_before_the_first_update_stops_the_run_cleanly(tmp_path, bootstrap, new_topic, continuous, point):
    """A SIGTERM that comes after the run took its run lock and before its first update ends the
    run as one during an update does (exit 0, "stopped", the lock released by the process itself),
    not by the signal's default action (the object stores' lease was then left to expire, and a
    second run refused until then). The run pauses at a fail point while the test signals it
    (`run_after_lock`: the lock just taken; `run_before_first_update`: the storage opened, the
    server started): no sleep, no timing."""
    topic = new_topic(1)
    pipe = bronze_pipeline(tmp_path, bootstrap, topic)
    if continuous:
        (pipe / "pipeline.yaml").write_text((pipe / "pipeline.yaml").read_text() + "mode: continuous\n")
    produce(bootstrap, topic, 10, seed=3, partitions=1)
    args = [str(SLUICE), "run", str(pipe)] + ([] if continuous else ["--once"])
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, SLUICE_FAILPOINT_PAUSE=point))
    seen = []
    while f"fail point '{point}' paused" not in (seen[-1] if seen else ""):
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            pytest.fail(f"sluice run ended before its pause: {''.join(seen)}")
        seen.append(line)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate("\n", timeout=120)
    assert proc.returncode == 0, (proc.returncode, "".join(seen) + err)
    assert "sluice: stopped before the first update" in out
    # Nothing was read: the table was not written. The next run reads all 10 records.
    table = pipe / "data" / "tables" / "events_bronze"
    assert not (table / "_delta_log").exists() or DeltaTable(str(table)).to_pyarrow_table().num_rows == 0
    again = run_sluice("run", pipe, "--once")
    assert again.returncode == 0, again.stderr
    assert DeltaTable(str(table)).to_pyarrow_table().num_rows == 10


def test_a_second_signal_ends_the_run_at_once(tmp_path, bootstrap, new_topic):
    """The first SIGTERM asks for a clean stop; a second signal takes its default action at once
    (a run waiting on a store that does not answer must still end on a second Ctrl-C). The run
    pauses at `run_after_lock`, gets SIGTERM then SIGINT (two kinds, so the kernel cannot merge
    them into one pending signal) and dies of the SIGINT; the next run reads every record once."""
    topic = new_topic(1)
    pipe = bronze_pipeline(tmp_path, bootstrap, topic)
    produce(bootstrap, topic, 10, seed=4, partitions=1)
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe), "--once"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, SLUICE_FAILPOINT_PAUSE="run_after_lock"))
    seen = []
    while "fail point 'run_after_lock' paused" not in (seen[-1] if seen else ""):
        line = proc.stderr.readline()
        if not line:
            proc.kill()
            pytest.fail(f"sluice run ended before its pause: {''.join(seen)}")
        seen.append(line)
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)  # stdin stays open, no line sent: only the second signal can end the pause
    assert proc.returncode == -signal.SIGINT, proc.returncode
    again = run_sluice("run", pipe, "--once")
    assert again.returncode == 0, again.stderr
    assert DeltaTable(str(pipe / "data" / "tables" / "events_bronze")).to_pyarrow_table().num_rows == 10


def test_payload_and_offset_are_written_without_a_parquet_dictionary(tmp_path, bootstrap, new_topic):
    """A Kafka value and offset never repeat: the writer skips their dictionary (docs/decisions.md
    "Parquet dictionaries"); the topic, which repeats, keeps one. Checked in the files' footers."""
    import pyarrow.parquet as pq
    topic = new_topic(3)
    pipe = bronze_pipeline(tmp_path, bootstrap, topic)
    produce(bootstrap, topic, 5_000, seed=3)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    files = sorted((pipe / "data" / "tables" / "events_bronze").glob("*.parquet"))
    assert files
    for path in files:
        metadata = pq.ParquetFile(path).metadata
        for g in range(metadata.num_row_groups):
            chunks = {metadata.row_group(g).column(c).path_in_schema: metadata.row_group(g).column(c)
                      for c in range(metadata.num_columns)}
            assert not chunks["value"].has_dictionary_page, path
            assert not chunks["offset"].has_dictionary_page, path
            assert chunks["topic"].has_dictionary_page, path
    assert DeltaTable(str(pipe / "data" / "tables" / "events_bronze")).to_pyarrow_table().num_rows == 5_000


def test_missing_topic_fails_before_any_table_changes(tmp_path, bootstrap, new_topic):
    good = new_topic(1)
    produce(bootstrap, good, 10, seed=3, partitions=1)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: missing
storage: ./data
kafka:
  default: {{bootstrap.servers: "{bootstrap}"}}
bronze:
  - topic: {good}
    table: good_bronze
  - topic: no-such-topic
    table: bad_bronze
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode != 0
    assert "Kafka topic 'no-such-topic' does not exist on cluster 'default'" in result.stderr
    assert "table 'bad_bronze'" in result.stderr
    assert not (pipe / "data" / "tables").exists(), "a table was written although a source was bad"


def test_unreachable_broker_is_a_clear_error(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", """
name: nobroker
storage: ./data
kafka:
  default:
    bootstrap.servers: 127.0.0.1:1
bronze:
  - topic: events
""")
    started = time.monotonic()
    result = run_sluice("run", pipe, "--once", timeout=60)
    assert result.returncode != 0
    assert "cannot reach Kafka cluster 'default' at 127.0.0.1:1" in result.stderr, result.stderr
    # Every bootstrap broker refuses and none was ever reached: said after the 2 s connect
    # window, not the 10 s metadata timeout.
    assert "every bootstrap broker refused the connection" in result.stderr, result.stderr
    assert time.monotonic() - started < 8, result.stderr
    assert not (pipe / "data" / "tables").exists()


@pytest.mark.parametrize("text, message", [
    ("name: p\nbronze: [ {topic: a\n", "malformed YAML"),
    ("name: p\nkafka:\n  default: {bootstrap.servers: x}\nbronze:\n  - topic: a\n    tabel: b\n",
     "pipeline.yaml:6:5: unknown key 'bronze[].tabel' (did you mean 'table'?)"),
    ("storage: ./data\n", "pipeline.yaml:1:1: missing required key 'name'"),
])
def test_malformed_pipeline_yaml_is_a_clear_error(tmp_path, text, message):
    pipe = write_pipeline(tmp_path / "pipe", text)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not (pipe / "data").exists()
