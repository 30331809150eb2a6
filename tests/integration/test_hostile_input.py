"""Hostile input against a real broker: records a producer can send to break a reader (invalid
UTF-8 in value and key, 10,000-deep JSON, 100-deep arrays, a record of several MB,
empty records, NUL bytes, text that is not JSON, tombstones; Avro with a wrong magic byte, an
unknown schema id, truncated bytes or invalid UTF-8). A continuous run stays alive while they
arrive; every good record is in silver, every bad one in the dead-letter table with its offset
and reason, good records produced after them still arrive, and every table reads in deltalake
and DuckDB."""
import json
import signal
import struct
import subprocess
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import SLUICE, run_sluice, write_pipeline
from readers import read_deltalake, read_duckdb, read_polars
from test_avro_registry import register, registry  # noqa: F401 (registry: the Apicurio fixture)

R = "\ufffd"
HUGE_BYTES = 3 * 1024 * 1024
DEPTH_LIMIT = 16  # README: "Nesting limit: 16 levels"


def deep_array(levels):
    return "[" * levels + "]" * levels


def record(i, **extra):
    return json.dumps({"id": i, "s": f"s{i}", **extra}).encode()


# (value, key, headers, expectation) in produce order; the offset is the index. Expectations:
# ("silver", {column: value}) or ("dead", "substring of the error").
def hostile_records():
    good = [(record(i), None, None, ("silver", {"id": i, "s": f"s{i}"})) for i in range(5)]
    return good + [
        (b'{"id": 100, "s": "a\xffb\xed\xa0\x80c"}', None, None, ("silver", {"id": 100, "s": f"a{R}b{R}c"})),
        (record(101), b"k\xfe", None, ("silver", {"id": 101, "s": "s101"})),
        # confluent_kafka sends header keys as text (bytes become "b'...'"), so invalid UTF-8 in a
        # header key cannot be produced from here; KafkaRecordBatchBuilder replaces it all the same.
        (record(102), b"k", [("h\u00ff", b"\xff")], ("silver", {"id": 102})),
        (b'{"id": 103, "x": ' + deep_array(10_000).encode() + b"}", None, None,
         ("dead", f"JSON nested deeper than {DEPTH_LIMIT} levels of objects/arrays at byte")),
        (b'{"id": 104, "deep": ' + deep_array(100).encode() + b"}", None, None,
         ("dead", f"JSON nested deeper than {DEPTH_LIMIT} levels")),
        (b'{"id": 105, "deep": ' + deep_array(DEPTH_LIMIT - 1).encode() + b"}", None, None,
         ("silver", {"id": 105})),
        (record(106, pad="x" * HUGE_BYTES), None, None, ("silver", {"id": 106})),
        (b"", None, None, ("dead", "invalid JSON at byte 0")),
        (b'{"id": 107}\x00{"id": 0}', None, None, ("dead", "invalid JSON at byte 11: a NUL byte")),
        (b'{"id": 108, "s": "c-string"}\x00', None, None, ("silver", {"id": 108, "s": "c-string"})),
        (b"not json at all", None, None, ("dead", "invalid JSON at byte 1: Invalid value.")),
        (b'{"id": 109, "s": "\\ud800 lone"}', None, None, ("silver", {"id": 109, "s": f"{R} lone"})),
        (None, b"tombstone", None, ("silver", {"id": None, "s": None})),
    ]


def create_topic(bootstrap):
    """One partition that takes records of several MB (the broker's default is 1 MB)."""
    name = f"hostile-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = NewTopic(name, num_partitions=1, replication_factor=1,
                     config={"max.message.bytes": str(8 * 1024 * 1024)})
    admin.create_topics([topic])[name].result(timeout=30)
    return name


def produce(bootstrap, topic, records):
    producer = Producer({"bootstrap.servers": bootstrap, "message.max.bytes": 8 * 1024 * 1024,
                         "linger.ms": 5})
    for value, key, headers, _ in records:
        producer.produce(topic, value=value, key=key, headers=headers, partition=0)
    assert producer.flush(60) == 0


def wait_for(predicate, timeout, what, proc):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"sluice exited ({proc.returncode}) while waiting for {what}"
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def rows_of(table_dir):
    if not (table_dir / "_delta_log" / "00000000000000000000.json").exists():
        return []  # not created yet (the folder may exist before its first commit)
    return read_deltalake(table_dir).to_pylist()


def check_every_reader(table_dir):
    """deltalake, Polars and DuckDB read the same rows (DuckDB refuses invalid UTF-8 in strings)."""
    by_deltalake = read_deltalake(table_dir)
    for other in (read_duckdb(table_dir), read_polars(table_dir)):
        assert other.num_rows == by_deltalake.num_rows, table_dir
        assert sorted(other.column_names) == sorted(by_deltalake.column_names), table_dir
    return by_deltalake.to_pylist()


def test_hostile_json_records_never_stop_a_continuous_run(tmp_path, bootstrap):
    topic = create_topic(bootstrap)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: hostile
storage: ./data
mode: continuous
trigger_interval: 200ms
kafka:
  default: {{bootstrap.servers: "{bootstrap}", fetch.max.bytes: "16777216", max.partition.fetch.bytes: "16777216"}}
""")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE bronze AS
SELECT offset AS src_offset, CAST(key AS STRING) AS key_text, CAST(value AS STRING) AS text,
       get_json_object(CAST(value AS STRING), '$.s') AS s_path, from_json(value, 's STRING').s AS s_json,
       headers
FROM STREAM read_kafka(topic => '{topic}');
CREATE STREAMING TABLE silver AS
SELECT value.*, _rescued_data, offset AS src_offset
FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'id BIGINT, s STRING');
""")
    records = hostile_records()
    tables = pipe / "data" / "tables"
    err = open(tmp_path / "sluice.err", "w")
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
    try:
        produce(bootstrap, topic, records)
        n = len(records)
        silver_n = sum(1 for r in records if r[3][0] == "silver")
        dead_n = n - silver_n
        wait_for(lambda: len(rows_of(tables / "silver")) == silver_n
                 and len(rows_of(tables / "silver_dead_letter")) == dead_n
                 and len(rows_of(tables / "bronze")) == n, 240, "the hostile records", proc)
        after = [(record(i), None, None, ("silver", {"id": i, "s": f"s{i}"})) for i in range(200, 210)]
        produce(bootstrap, topic, after)
        records += after
        wait_for(lambda: len(rows_of(tables / "silver")) == silver_n + len(after)
                 and len(rows_of(tables / "bronze")) == n + len(after), 120,
                 "good records produced after the hostile ones", proc)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "sluice.err").read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
        err.close()

    silver = {r["src_offset"]: r for r in check_every_reader(tables / "silver")}
    dead = {r["offset"]: r for r in check_every_reader(tables / "silver_dead_letter")}
    bronze = {r["src_offset"]: r for r in check_every_reader(tables / "bronze")}
    assert len(silver) + len(dead) == len(records) == len(bronze)  # nothing lost, nothing twice
    for offset, (value, key, headers, (where, expected)) in enumerate(records):
        if where == "silver":
            assert offset in silver and offset not in dead, offset
            for column, v in expected.items():
                assert silver[offset][column] == v, (offset, column, silver[offset][column])
        else:
            assert offset in dead and offset not in silver, offset
            assert expected in dead[offset]["error"], (offset, dead[offset]["error"][:300])
            assert dead[offset]["value"] == value and dead[offset]["topic"] == topic
            assert dead[offset]["partition"] == 0
    # Bytes become text as Spark shows them, in every string column.
    assert bronze[5]["text"] == f'{{"id": 100, "s": "a{R}b{R}c"}}'
    assert bronze[5]["s_path"] == f"a{R}b{R}c" and bronze[5]["s_json"] == f"a{R}b{R}c"
    assert bronze[6]["key_text"] == f"k{R}"
    assert bronze[7]["headers"] == [{"key": "h\u00ff", "value": b"\xff"}]
    assert len(bronze[11]["text"]) > HUGE_BYTES
    assert bronze[len(hostile_records()) - 1]["text"] is None  # the tombstone
    assert silver[11]["_rescued_data"] is not None and json.loads(silver[11]["_rescued_data"])["pad"]


def test_declared_types_deeper_than_the_limit_are_refused_at_their_position(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: deep\nstorage: ./data\n"
                                             "kafka:\n  default: {bootstrap.servers: \"127.0.0.1:1\"}\n")
    deep = "ARRAY<" * 10_000 + "INT" + ">" * 10_000
    (pipe / "t.sql").write_text(
        "CREATE STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(\n"
        f"  topic => 'x', value_format => 'json', value_schema => 'a {deep}');\n")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1
    assert "t.sql:1:43: error: invalid type 'a ARRAY<ARRAY<" in r.stderr, r.stderr[:500]  # the read_kafka call
    assert (f"the ARRAY at character {2 + 6 * (DEPTH_LIMIT - 1) + 1} nests deeper than {DEPTH_LIMIT - 1} levels "
            "of ARRAY/MAP/STRUCT") in r.stderr, r.stderr[:500]
    assert len(r.stderr) < 1000 + 2 * len(deep)  # the type is echoed once, in the source line


# --- Avro (Apicurio registry, started by scripts/registry.sh) ---------------------------------

SCHEMA = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"}, {"name": "item", "type": "string"},
    {"name": "tags", "type": {"type": "map", "values": "string"}}]}


def zigzag(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def avro_bytes(b):
    return zigzag(len(b)) + b


def framed(schema_id, body):
    return b"\x00" + struct.pack(">I", schema_id) + body


def test_hostile_avro_records_are_dead_letters_or_valid_utf8(tmp_path, bootstrap, registry):
    subject = f"hostile-{uuid.uuid4().hex[:8]}-value"
    sid = register(registry, subject, SCHEMA)
    good = lambda i: framed(sid, zigzag(i) + avro_bytes(f"item{i}".encode()) + zigzag(0))
    records = [
        (good(0), ("silver", {"id": 0, "item": "item0"})),
        (framed(sid, zigzag(1) + avro_bytes(b"it\xffem") + zigzag(1) + avro_bytes(b"k\xc0") + avro_bytes(b"v\xed\xa0\x80")
                + zigzag(0)), ("silver", {"id": 1, "item": f"it{R}em", "tags": [(f"k{R}", f"v{R}")]})),
        (b"\x01" + good(2)[1:], ("dead", "magic byte")),
        (framed(987654, zigzag(3)), ("dead", "987654")),
        (good(4)[:-3], ("dead", "truncated")),
        (b"", ("dead", "")),
        (None, ("silver", {"id": None})),
        (good(7), ("silver", {"id": 7, "item": "item7"})),
    ]
    topic = create_topic(bootstrap)
    produce(bootstrap, topic, [(v, None, None, e) for v, e in records])
    pipe = write_pipeline(tmp_path / "pipe", f"name: hostile_avro\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE silver AS SELECT value.*, offset AS src_offset
FROM STREAM read_kafka(topic => '{topic}', value_format => 'avro',
                       schema_registry_url => '{registry}', schema_registry_subject => '{subject}');
""")
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    tables = pipe / "data" / "tables"
    silver = {row["src_offset"]: row for row in check_every_reader(tables / "silver")}
    dead = {row["offset"]: row for row in check_every_reader(tables / "silver_dead_letter")}
    for offset, (value, (where, expected)) in enumerate(records):
        if where == "silver":
            assert offset in silver and offset not in dead, (offset, dead.get(offset))
            for column, v in expected.items():
                assert silver[offset][column] == v, (offset, column, silver[offset][column])
        else:
            assert offset in dead and offset not in silver, offset
            assert expected in dead[offset]["error"], (offset, dead[offset]["error"])
            assert dead[offset]["value"] == value
