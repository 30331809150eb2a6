"""sluice's maintenance on a pipeline table that Spark wrote to, and Spark reading what sluice
rewrote (issue 15's "vice versa"): a Kafka -> bronze -> silver pipeline whose silver has a
retention policy; between runs Spark (delta-spark, one session) turns on deletion vectors and a
checkpoint every 2 commits (`delta.enableDeletionVectors`, `delta.checkpointInterval`: Spark
upgrades the protocol to reader 3 / writer 7), INSERTs into silver (an erased user's row, a row
older than the retention window, a recent one), OPTIMIZEs it and DELETEs rows (kept in their
files, hidden by a deletion vector; one of them the erased user's), writing its own checkpoint.
Then sluice's retention (the next run), `sluice forget`, `sluice table optimize` and `sluice
table vacuum` act on that table; after each, Spark and sluice's own scan (`sluice sql`) read it
equal to a Python model (the pinned deltalake cannot read deletion vectors), and Spark appends to what sluice rewrote, which the next sluice run continues. The erased
value is in no file under the storage folder at the end (test_forget's scan)."""
import datetime as dt
import json

import pyarrow as pa
import pytest

from conftest import run_sluice
from spark_support import spark_session
from test_forget import make_topic, storage_hits
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

pytestmark = pytest.mark.slow  # Spark

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
ERASED = "u-42"
SQL = """
CREATE OR REFRESH STREAMING TABLE bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE silver
TBLPROPERTIES ('pipelines.retention' = '2 days', 'pipelines.retention.column' = 'ts')
AS SELECT e.user_id, e.ts, e.amount, e.seq
FROM (SELECT from_json(CAST(value AS STRING), 'user_id STRING, ts TIMESTAMP, amount BIGINT, seq BIGINT') AS e
      FROM STREAM(bronze))
WHERE e.user_id IS NOT NULL;
"""
USERS = ["u-4", "u-7", ERASED]


def events(lo, hi, users=USERS):
    """Recent events (inside the 2-day window at NOW): one an hour before NOW, going back."""
    return [{"user_id": users[i % len(users)], "ts": NOW - dt.timedelta(hours=1 + i % 24), "amount": i * 7 % 100,
             "seq": i} for i in range(lo, hi)]


def as_json(e):
    return {**e, "ts": e["ts"].strftime("%Y-%m-%d %H:%M:%S")}


def key(e):
    return (e["user_id"], e["ts"].replace(tzinfo=UTC) if e["ts"].tzinfo is None else e["ts"].astimezone(UTC),
            e["amount"], e["seq"])


def spark_rows(spark, path):
    return sorted(key(r) for r in spark.read.format("delta").load(str(path)).toArrow().to_pylist())


def sluice_rows(pipe, tmp_path):
    """silver's rows as sluice's own scan reads them (deletion vectors applied)."""
    out = tmp_path / "scan.arrow"
    r = run_sluice("sql", pipe, "SELECT user_id, ts, amount, seq FROM silver", "--output", out)
    assert r.returncode == 0, r.stderr
    with pa.memory_map(str(out)) as source:
        return sorted(key(r) for r in pa.ipc.open_file(source).read_all().to_pylist())


def spark_history(spark, path):
    return [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()]


def run(pipe):
    r = run_sluice("run", pipe, "--once", env_extra={"SLUICE_RETENTION_NOW": NOW.strftime("%Y-%m-%d %H:%M:%S")})
    assert r.returncode == 0, r.stderr


def spark_insert(spark, path, rows):
    values = ", ".join(f"('{e['user_id']}', TIMESTAMP '{e['ts'].strftime('%Y-%m-%d %H:%M:%S')}', {e['amount']}, "
                       f"{e['seq']})" for e in rows)
    spark.sql(f"INSERT INTO delta.`{path}` (user_id, ts, amount, seq) VALUES {values}")


def test_sluice_maintains_what_spark_wrote_and_spark_reads_it(tmp_path, bootstrap):
    spark = spark_session()
    topic = make_topic(bootstrap)
    pipe = kafka_pipeline(tmp_path, "sparkmaint", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    data = pipe / "data"
    silver = data / "tables" / "silver"
    model = events(0, 12)
    produce_values(bootstrap, topic, [as_json(e) for e in model])
    run(pipe)
    assert spark_rows(spark, silver) == sorted(key(e) for e in model)

    # Spark writes to sluice's table: deletion vectors and a checkpoint every 2 commits on; rows
    # of its own (one erased user's, one past the retention window); an OPTIMIZE; then a DELETE
    # whose rows stay in the compacted file behind a deletion vector: every row of the erased
    # user, so that file holds the user only in rows its vector hides (no visible match). forget
    # must still rewrite it and its vacuum delete it: the byte search below finds it otherwise.
    spark.sql(f"ALTER TABLE delta.`{silver}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true', "
              "'delta.checkpointInterval' = '2')")
    old = {"user_id": "u-4", "ts": NOW - dt.timedelta(days=5), "amount": 1, "seq": 500}
    spark_rows_in = [{"user_id": ERASED, "ts": NOW - dt.timedelta(hours=2), "amount": 2, "seq": 501},
                     {"user_id": "u-7", "ts": NOW - dt.timedelta(hours=3), "amount": 3, "seq": 502}, old]
    spark_insert(spark, silver, spark_rows_in)
    spark.sql(f"OPTIMIZE delta.`{silver}`")
    model = model + spark_rows_in
    deleted = [e for e in model if e["seq"] in (2, 4) or e["user_id"] == ERASED]
    spark.sql(f"DELETE FROM delta.`{silver}` WHERE seq IN (2, 4) OR user_id = '{ERASED}'")
    model = [e for e in model if e not in deleted]
    assert ERASED in {e["user_id"] for e in deleted} and ERASED not in {e["user_id"] for e in model}
    # One file: the compacted one, the erased user's rows in it hidden by the vector only.
    assert spark.sql(f"DESCRIBE DETAIL delta.`{silver}`").collect()[0]["numFiles"] == 1
    assert list(silver.glob("deletion_vector_*.bin")), "Spark's DELETE wrote no deletion vector"
    assert list((silver / "_delta_log").glob("*.checkpoint.parquet")), "Spark wrote no checkpoint"
    assert spark_rows(spark, silver) == sorted(key(e) for e in model)
    assert sluice_rows(pipe, tmp_path) == sorted(key(e) for e in model)

    # sluice's retention (on the next update) deletes Spark's expired row.
    more = events(12, 18)
    produce_values(bootstrap, topic, [as_json(e) for e in more])
    run(pipe)
    model = [e for e in model if e is not old] + more
    want = sorted(key(e) for e in model)
    assert spark_rows(spark, silver) == want
    assert sluice_rows(pipe, tmp_path) == want
    history = spark_history(spark, silver)
    assert "OPTIMIZE" in history and "DELETE" in history

    # sluice forget erases the user from bronze and from silver: the rows the last run added, and
    # the ones only Spark's vector hid in the compacted file (rewritten, the old file vacuumed).
    assert storage_hits(data)
    r = run_sluice("forget", pipe, "--where", f"user_id = '{ERASED}'", "--format", "json")
    assert r.returncode == 0, r.stderr
    model = [e for e in model if e["user_id"] != ERASED]
    want = sorted(key(e) for e in model)
    assert spark_rows(spark, silver) == want
    assert sluice_rows(pipe, tmp_path) == want
    assert storage_hits(data) == set()

    # Spark appends to what forget rewrote; sluice optimizes and vacuums it; Spark reads it.
    later = [{"user_id": "u-7", "ts": NOW - dt.timedelta(hours=4), "amount": 9, "seq": 600}]
    spark_insert(spark, silver, later)
    model += later
    r = run_sluice("table", "optimize", silver, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["numFilesRemoved"] >= 2
    r = run_sluice("table", "vacuum", silver, "--retain", "0", "hours", "--force")
    assert r.returncode == 0, r.stderr
    want = sorted(key(e) for e in model)
    assert spark_rows(spark, silver) == want
    assert sluice_rows(pipe, tmp_path) == want

    # The pipeline continues the table Spark and sluice's maintenance both rewrote.
    last = events(18, 21, users=["u-4", "u-7"])
    produce_values(bootstrap, topic, [as_json(e) for e in last])
    run(pipe)
    model += last
    assert spark_rows(spark, silver) == sorted(key(e) for e in model)
    assert sluice_rows(pipe, tmp_path) == sorted(key(e) for e in model)
