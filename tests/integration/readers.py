"""Independent readers of Delta tables, normalised to comparable pyarrow Tables:
deltalake (delta-rs), Polars, DuckDB's delta extension, and sluice's own reader (export); and
of Kafka topics (read_topic_to_end, a confluent_kafka consumer)."""
import pathlib
import subprocess
import tempfile
import time
import uuid

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from confluent_kafka import Consumer, TopicPartition

from conftest import SLUICE, duckdb_connection

PARTITION_EOF = -191  # confluent_kafka.KafkaError._PARTITION_EOF


def read_topic_to_end(bootstrap, topic, isolation="read_committed", deadline_s=30):
    """Every record of every partition of `topic` from offset 0 up to the partition's end, as
    confluent_kafka Messages in the order read (ordered within a partition). A partition that
    receives more records after its end was reported is read on to its new end. `isolation`
    "read_uncommitted" also returns the records of open and aborted transactions. Fails the test
    when a partition has not reached its end within `deadline_s` or the consumer reports an
    error (each a condition with a timeout, never a sleep)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex[:8]}",
                         "isolation.level": isolation, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        at_end, out = set(), []
        deadline = time.monotonic() + deadline_s
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"topic {topic}: only partitions {sorted(at_end)} reached their end"
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() != PARTITION_EOF:
                    raise AssertionError(f"topic {topic}: {m.error()}")
                at_end.add(m.partition())
                continue
            at_end.discard(m.partition())
            out.append(m)
        return out
    finally:
        consumer.close()


def sluice(*args):
    return subprocess.run([str(SLUICE), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def sluice_append(table_dir, table, *flags, check=True):
    """Writes `table` to a temp Parquet file and appends it with `sluice table append`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "in.parquet"
        pq.write_table(table, path)
        result = sluice("table", "append", table_dir, path, *flags)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def read_sluice(table_dir, *flags):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out.arrow"
        result = sluice("table", "export", table_dir, out, *flags)
        assert result.returncode == 0, result.stderr
        return ipc.open_file(out).read_all()


def read_deltalake(table_dir, version=None):
    from deltalake import DeltaTable
    return DeltaTable(str(table_dir), version=version).to_pyarrow_table()


def read_polars(table_dir):
    import polars as pl
    return pl.read_delta(str(table_dir)).to_arrow()


def read_duckdb(table_dir):
    con = duckdb_connection()  # kept alive until the result is read
    return con.sql(f"SELECT * FROM delta_scan('{table_dir}')").arrow().read_all()


def canonical_type(t):
    """The logical type behind equivalent physical Arrow types: Polars returns large_string,
    large_binary and large_list; DuckDB names the UTC zone 'Etc/UTC'. Anything else a reader
    returns differently is a real type difference."""
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_timestamp(t) and t.tz in ("UTC", "Etc/UTC", "+00:00", "Z"):
        return pa.timestamp(t.unit, tz="UTC")
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(canonical_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(canonical_type(t.key_type), canonical_type(t.item_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, canonical_type(f.type)) for f in t])
    return t


def normalise(table, schema):
    """`table` with the column order and physical types of `schema`, after checking that
    each column's type is the same logical type (see canonical_type)."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        assert canonical_type(column.type).equals(canonical_type(field.type)), (
            f"column {field.name}: reader type {column.type}, expected {field.type}")
        if not column.type.equals(field.type):
            column = column.cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


def sorted_by(table, key="id"):
    return table.sort_by([(key, "ascending")]).combine_chunks()


def read_all(table_dir, schema, skip=None):
    """Every reader's view of the table, normalised to `schema` and sorted by id;
    skip = {reader: {columns}} leaves out columns a reader cannot represent."""
    skip = skip or {}
    out = {}
    for name, fn in [("sluice", read_sluice), ("deltalake", read_deltalake),
                     ("polars", read_polars), ("duckdb", read_duckdb)]:
        wanted = pa.schema([f for f in schema if f.name not in skip.get(name, ())])
        out[name] = sorted_by(normalise(fn(table_dir), wanted))
    return out
