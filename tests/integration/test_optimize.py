"""`sluice table optimize` (compaction and Z-order) on tables written by sluice and by Spark:
deltalake, DuckDB, Spark and sluice read the same rows before and after; Spark's history shows
the OPTIMIZE commit with the parameters and metrics its own OPTIMIZE writes; Spark keeps writing
after it, sluice reads Spark's own OPTIMIZE; a sluice streaming reader of the table does not
read the compacted rows again."""
import collections
import json
import shutil

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from readers import read_deltalake, read_duckdb, read_sluice, sluice, sluice_append
from spark_support import spark_session

SCHEMA = pa.schema([("id", pa.int64()), ("part", pa.string()), ("user_id", pa.string())])


def batch(ids, part):
    return pa.table({"id": ids, "part": [part] * len(ids), "user_id": [f"u{i % 7}" for i in ids]},
                    schema=SCHEMA)


def rows(table):
    return sorted(table.select(["id", "part", "user_id"]).to_pylist(), key=lambda r: r["id"])


def spark_rows(spark, path):
    return sorted((r.asDict() for r in spark.read.format("delta").load(str(path))
                   .select("id", "part", "user_id").collect()), key=lambda r: r["id"])


def optimize(path, *flags):
    r = sluice("table", "optimize", path, "--format", "json", *flags)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def commit(path, version):
    actions = [json.loads(line) for line in
               (path / "_delta_log" / f"{version:020}.json").read_text().splitlines()]
    info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
    files = [a.get("add") or a.get("remove") for a in actions if "add" in a or "remove" in a]
    return info, files


def live_files(path, part=None):
    files = DeltaTable(str(path)).file_uris()
    return [f for f in files if part is None or f"part={part}/" in f]


@pytest.fixture(scope="module")
def spark():
    return spark_session()


@pytest.mark.slow  # Spark
def test_sluice_table_compacted_and_read_alike_by_every_reader(spark, tmp_path):
    path = tmp_path / "t"
    for i in range(6):
        sluice_append(path, batch([i * 2, i * 2 + 1], "a" if i < 4 else "b"), "--partition-by", "part")
    before = rows(read_deltalake(path))
    out = optimize(path, "--where", "part = 'a'")
    assert out["committed"] and out["numFilesRemoved"] == 4 and out["numFilesAdded"] == 1
    assert len(live_files(path, "a")) == 1 and len(live_files(path, "b")) == 2
    for read in (read_deltalake, read_duckdb, read_sluice):
        assert rows(read(path)) == before
    assert spark_rows(spark, path) == before
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}` LIMIT 1").collect()[0]
    assert history["operation"] == "OPTIMIZE"
    assert history["operationParameters"]["predicate"] == "[\"(part = 'a')\"]"
    assert history["operationMetrics"]["numRemovedFiles"] == "4"
    info, files = commit(path, out["version"])
    assert all(f["dataChange"] is False for f in files)
    # Spark continues writing the compacted table; sluice reads it.
    spark.createDataFrame([(100, "a", "u100")], "id long, part string, user_id string") \
        .write.format("delta").mode("append").save(str(path))
    assert rows(read_sluice(path)) == before + [{"id": 100, "part": "a", "user_id": "u100"}]


def spark_table(spark, path, n_files=4):
    for i in range(n_files):
        spark.createDataFrame([(i * 3 + j, "a", f"u{(i * 3 + j) % 7}") for j in range(3)],
                              "id long, part string, user_id string") \
            .write.format("delta").mode("append").partitionBy("part").save(str(path))


@pytest.mark.slow  # Spark
def test_spark_table_zordered_commits_what_sparks_own_optimize_commits(spark, tmp_path):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    spark_table(spark, ours)
    shutil.copytree(ours, theirs)
    before = spark_rows(spark, ours)
    out = optimize(ours, "--zorder-by", "user_id,id")
    spark.sql(f"OPTIMIZE delta.`{theirs}` ZORDER BY (user_id, id)")
    assert spark_rows(spark, ours) == before == rows(read_deltalake(ours)) == rows(read_duckdb(ours))
    our_info, our_files = commit(ours, out["version"])
    spark_info, spark_files = commit(theirs, out["version"])
    assert our_info["operation"] == spark_info["operation"] == "OPTIMIZE"
    assert our_info["operationParameters"] == spark_info["operationParameters"]
    assert set(our_info["operationMetrics"]) == set(spark_info["operationMetrics"])
    assert our_info["isolationLevel"] == spark_info["isolationLevel"]
    assert our_info["operationMetrics"]["numRemovedFiles"] == spark_info["operationMetrics"]["numRemovedFiles"]
    assert {f["dataChange"] for f in our_files} == {f["dataChange"] for f in spark_files} == {False}
    # Z-ordered files carry stats, as Spark's.
    adds = [f for f in our_files if "stats" in f]
    assert adds and all(json.loads(f["stats"])["numRecords"] > 0 for f in adds)


@pytest.mark.slow  # Spark
def test_sparks_optimize_of_a_sluice_table_is_read_by_sluice(spark, tmp_path):
    path = tmp_path / "t"
    for i in range(4):
        sluice_append(path, batch([i * 2, i * 2 + 1], "a"), "--partition-by", "part")
    before = rows(read_sluice(path))
    spark.sql(f"OPTIMIZE delta.`{path}` ZORDER BY (id)")
    assert len(live_files(path)) == 1
    assert rows(read_sluice(path)) == before
    # And sluice optimizes after Spark: nothing left to do.
    assert optimize(path)["committed"] is False


def test_refusals_name_the_column_and_what_to_do(tmp_path):
    path = tmp_path / "t"
    sluice_append(path, batch([1], "a"), "--partition-by", "part")
    r = sluice("table", "optimize", path, "--where", "id > 1")
    assert r.returncode == 1
    assert "predicate references non-partition column 'id'. Only the partition columns may be referenced: [part]" in r.stderr
    r = sluice("table", "optimize", path, "--zorder-by", "part")
    assert r.returncode == 1 and "part is a partition column" in r.stderr


def test_number_options_past_int64_or_with_garbage_are_refused_naming_the_option(tmp_path):
    """CLI11 alone read --target-file-size 99999999999999999999 as INT64_MAX (and "0x10" as 16),
    and a 20-digit --timestamp made std::stoll throw past every handler (abort). Each is an
    error naming the option and the text now, and nothing is committed."""
    path = tmp_path / "t"
    sluice_append(path, batch([1], "a"), "--partition-by", "part")
    sluice_append(path, batch([2], "a"))  # two small files: an optimize would compact them
    for value, why in [("9" * 20, "is out of range (a whole number from -9223372036854775808"),
                       ("0x10", "is not a whole number"), ("12abc", "is not a whole number"),
                       ("0", "is out of range (a whole number from 1 to")]:
        r = sluice("table", "optimize", path, "--target-file-size", value)
        assert r.returncode != 0 and f"--target-file-size: '{value}' {why}" in r.stderr, (value, r.stderr)
    assert DeltaTable(str(path)).version() == 1, "nothing committed"
    r = sluice("table", "describe", path, "--timestamp", "9" * 20)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert f"--timestamp (epoch milliseconds): '{'9' * 20}' is out of range" in r.stderr, r.stderr
    r = sluice("table", "history", path, "--limit", "10abc")
    assert r.returncode != 0 and "--limit: '10abc' is not a whole number" in r.stderr, r.stderr
    r = sluice("table", "optimize", path, "--target-file-size", "010")  # decimal: ten bytes, not eight
    assert r.returncode == 0, r.stderr


STREAM_SQL = """
CREATE OR REFRESH STREAMING TABLE bronze
AS SELECT e.id FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS e
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
CREATE OR REFRESH STREAMING TABLE copy AS SELECT id FROM STREAM(bronze);
"""


def test_a_streaming_reader_does_not_read_compacted_rows_again(tmp_path, bootstrap, new_topic):
    from conftest import run_sluice
    from test_sql_pipeline_e2e import kafka_pipeline, produce_values

    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "opt", bootstrap)
    (pipe / "tables.sql").write_text(STREAM_SQL.format(topic=topic))
    bronze = pipe / "data" / "tables" / "bronze"
    for start in (0, 3, 6):  # three runs: three small files in bronze
        produce_values(bootstrap, topic, [{"id": i} for i in range(start, start + 3)])
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
    assert len(live_files(bronze)) == 3
    out = optimize(bronze)
    assert out["committed"] and len(live_files(bronze)) == 1
    produce_values(bootstrap, topic, [{"id": i} for i in range(9, 12)])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    copied = collections.Counter(read_deltalake(pipe / "data" / "tables" / "copy").column("id").to_pylist())
    assert copied == collections.Counter(range(12))
