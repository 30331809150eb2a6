"""Spark (pyspark + delta-spark) as the reference Delta implementation: it reads the tables
sluice writes (Kafka bronze, every type, partitioned, checkpointed, schema-evolved), and
sluice reads the tables Spark writes (with Spark's checkpoints)."""
import datetime as dt
import decimal
import json
import subprocess

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import SLUICE, run_sluice, write_pipeline
from spark_support import read_delta_with_spark, spark_session
from test_bronze_ingest import produce

pytestmark = pytest.mark.slow  # a JVM per session, Spark jobs


def sluice_append(table_dir, table, *flags, tmp):
    path = tmp / f"in-{len(list(tmp.glob('in-*')))}.parquet"
    pq.write_table(table, path)
    result = subprocess.run([str(SLUICE), "table", "append", str(table_dir), str(path), *flags],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def sluice_export(table_dir, tmp, *flags):
    out = tmp / "export.arrow"
    result = subprocess.run([str(SLUICE), "table", "export", str(table_dir), str(out), *flags],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return ipc.open_file(out).read_all()


def rows(table, key="id"):
    """Rows as dicts sorted by key; Spark and Arrow agree on Python values for these types."""
    return sorted(table.to_pylist(), key=lambda r: (r[key] is None, r[key]))


def typed_table(start, n):
    ids = list(range(start, start + n))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "b": pa.array([None if i % 7 == 0 else i % 2 == 0 for i in ids]),
        "i8": pa.array([i % 100 for i in ids], pa.int8()),
        "i16": pa.array([i % 30000 for i in ids], pa.int16()),
        "i32": pa.array([None if i % 5 == 0 else i * 3 for i in ids], pa.int32()),
        "f32": pa.array([i / 4 for i in ids], pa.float32()),
        "f64": pa.array([None if i % 11 == 0 else i * 1.5 for i in ids], pa.float64()),
        "s": pa.array([None if i % 3 == 0 else f"név-{i}-" + "x" * (i % 40) for i in ids]),
        "bin": pa.array([bytes([i % 256, 0, 255]) for i in ids], pa.binary()),
        "d": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i % 60) for i in ids]),
        "ts": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=i * 1_000_123)
                        for i in ids], pa.timestamp("us", tz="UTC")),
        "dec": pa.array([decimal.Decimal(i) / 100 for i in ids], pa.decimal128(12, 2)),
        "st": pa.array([None if i % 13 == 0 else {"a": i, "b": None if i % 2 else str(i)} for i in ids],
                       pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "arr": pa.array([None if i % 17 == 0 else [str(i), None] for i in ids], pa.list_(pa.string())),
        "m": pa.array([[("k", i)] for i in ids], pa.map_(pa.string(), pa.int64())),
        "part": pa.array([None if i % 9 == 0 else ["a b", "x/y", "ü=1", "p%q"][i % 4] for i in ids]),
    })


def test_spark_reads_sluice_tables_of_every_type_partitioned_checkpointed_evolved(tmp_path):
    table_dir = tmp_path / "typed"
    for k in range(12):  # 12 commits with interval 5: checkpoints at 5 and 10
        part = typed_table(k * 50, 50)
        sluice_append(table_dir, part, "--partition-by", "part", "--checkpoint-interval", "5",
                      tmp=tmp_path)
    # Schema evolution: a new nullable column.
    evolved = typed_table(1000, 20).append_column("extra", pa.array(["e"] * 20))
    sluice_append(table_dir, evolved, "--merge-schema", tmp=tmp_path)
    assert (table_dir / "_delta_log" / "00000000000000000010.checkpoint.parquet").exists()

    spark = read_delta_with_spark(table_dir)
    ours = sluice_export(table_dir, tmp_path)
    assert spark.num_rows == 12 * 50 + 20
    spark_rows = rows(spark)
    assert spark_rows == rows(ours.select(spark.column_names))
    assert spark_rows == rows(DeltaTable(str(table_dir)).to_pyarrow_table().select(spark.column_names))
    by_id = {r["id"]: r for r in spark_rows}
    assert by_id[3]["extra"] is None and by_id[1000]["extra"] == "e"
    assert by_id[9]["part"] is None and by_id[1]["part"] == "x/y"
    # Time travel agrees too.
    assert rows(read_delta_with_spark(table_dir, version=3)) == \
        rows(sluice_export(table_dir, tmp_path, "--version", "3").select(spark.column_names[:-1]))


def test_sluice_reads_tables_spark_wrote_with_checkpoints(tmp_path):
    spark = spark_session()
    path = str(tmp_path / "spark_table")
    for k in range(12):  # Spark checkpoints every 10 commits by default
        df = spark.createDataFrame(
            [(k * 10 + i, f"city-{i % 3}", dt.date(2024, 1, 1 + i % 5), float(i) if i % 4 else None)
             for i in range(10)],
            "id long, city string, day date, amount double")
        df.write.format("delta").mode("append").partitionBy("city").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id % 10 = 0")
    assert (tmp_path / "spark_table" / "_delta_log" / "00000000000000000010.checkpoint.parquet").exists()
    expected = rows(read_delta_with_spark(path))
    ours = sluice_export(path, tmp_path)
    assert rows(ours.select(["id", "city", "day", "amount"])) == \
        [{k: r[k] for k in ["id", "city", "day", "amount"]} for r in expected]
    assert len(expected) == 108
    describe = run_sluice("table", "describe", path, "--format", "json")
    assert describe.returncode == 0, describe.stderr
    assert '"version":12' in describe.stdout


def test_spark_reads_kafka_bronze_table(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    produced = produce(bootstrap, topic, 2000, seed=5, partitions=2)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: sparkcheck
storage: ./data
kafka:
  default: {{bootstrap.servers: "{bootstrap}"}}
bronze:
  - topic: {topic}
    table: bronze
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    table = read_delta_with_spark(pipe / "data" / "tables" / "bronze")
    assert table.num_rows == 2000
    got = {(r["partition"], r["offset"]): (r["key"], r["value"]) for r in table.to_pylist()}
    assert got == {pos: (rec[0], rec[1]) for pos, rec in produced.items()}


def test_hash_functions_match_spark(tmp_path):
    """xxhash64, md5 and sha2 give Spark's values (used to pseudonymise personal data, so a
    sluice table and a Spark job must agree)."""
    data = pa.table({
        "s": pa.array(["Spark", "", None, "név"]),
        "i": pa.array([1, None, -7, 2**31 - 1], pa.int32()),
        "l": pa.array([2, 3, None, -(2**62)], pa.int64()),
        "d": pa.array([1.5, -0.0, None, 3.25], pa.float64()),
        "b": pa.array([True, False, None, True]),
    })
    source = tmp_path / "in.arrow"
    with ipc.new_file(source, data.schema) as w:
        w.write_table(data)
    exprs = ["xxhash64(s)", "xxhash64(i)", "xxhash64(l)", "xxhash64(d)", "xxhash64(b)",
             "xxhash64(s, i, l, d, b)", "md5(s)", "sha2(s, 256)", "sha2(s, 512)"]
    out = tmp_path / "out.arrow"
    result = subprocess.run([str(SLUICE), "eval", "--input", str(source), "--output", str(out)] +
                            [arg for e in exprs for arg in ("--expr", e)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ours = ipc.open_file(out).read_all()
    spark = spark_session()
    frame = spark.createDataFrame(data.to_pylist(),
                                  "s string, i int, l long, d double, b boolean")
    theirs = frame.selectExpr(*[f"{e} AS e{k}" for k, e in enumerate(exprs)]).collect()
    for k, e in enumerate(exprs):
        assert ours.column(f"e{k}").to_pylist() == [row[f"e{k}"] for row in theirs], e


def test_comments_reach_delta_as_spark_writes_them(tmp_path, bootstrap, new_topic):
    """COMMENT on a table is its Delta metaData.description and a column COMMENT the field's
    "comment" metadata: Spark's DESCRIBE shows both, deltalake reads both."""
    topic = new_topic(1)
    produce(bootstrap, topic, 5, seed=7, partitions=1)
    pipe = write_pipeline(tmp_path / "pipe", f"name: comments\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE bronze (offset BIGINT NOT NULL COMMENT 'Kafka offset', value BINARY)
COMMENT 'raw events'
AS SELECT offset, value FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');
CREATE MATERIALIZED VIEW counts (n BIGINT COMMENT 'how many') COMMENT 'one row'
AS SELECT count(*) AS n FROM bronze;
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    for table, description, column, comment in [("bronze", "raw events", "offset", "Kafka offset"),
                                                 ("counts", "one row", "n", "how many")]:
        path = str(pipe / "data" / "tables" / table)
        dt = DeltaTable(path)
        assert dt.metadata().description == description
        field = next(f for f in dt.schema().fields if f.name == column)
        assert field.metadata == {"comment": comment}
        spark = spark_session()
        rows = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE delta.`{path}`").collect()}
        assert rows[column] == comment
        detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]
        assert detail["description"] == description


def test_long_string_bounds_are_what_spark_writes(tmp_path):
    """Delta stats of strings over 32 characters (UTF-16 units): sluice cuts the min and the max
    (with its tie-breaker) as delta-spark does; one file per value through a partition column."""
    top = "\U0010FFFF"
    a32 = "a" * 32
    # ASCII and non-ASCII tie-breakers, a surrogate pair kept whole, a U+10FFFF skipped, no max
    # at all; more cases against a model in tests/unit/delta/stats_test.cc.
    values = ["b" * 40, "ü" * 40, "a" * 31 + "😀bc", a32 + top + "b", a32 + top * 17 + "x", "short"]
    data = pa.table({"k": pa.array(range(len(values)), pa.int32()), "s": pa.array(values)})
    spark_dir, sluice_dir = tmp_path / "spark", tmp_path / "sluice"
    (spark_session().createDataFrame(list(enumerate(values)), "k int, s string").write
     .format("delta").partitionBy("k").save(str(spark_dir)))
    sluice_append(sluice_dir, data, "--partition-by", "k", tmp=tmp_path)

    def bounds(table_dir):
        out = {}
        for f in (table_dir / "_delta_log").glob("*.json"):
            for line in f.read_text().splitlines():
                add = json.loads(line).get("add")
                if add:
                    stats = json.loads(add["stats"])
                    out[int(add["partitionValues"]["k"])] = (stats["minValues"].get("s"),
                                                             stats["maxValues"].get("s"))
        return out

    spark_bounds = bounds(spark_dir)
    assert len(spark_bounds) == len(values)
    assert bounds(sluice_dir) == spark_bounds
