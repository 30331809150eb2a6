"""DELETE, UPDATE and MERGE INTO through `sluice sql`, checked against delta-spark running the
same statements on a copy of the same table: the rows after each statement (read by deltalake)
and the commit's operation and row metrics in the history (deltalake's and Spark's)."""
import json
import shutil

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from readers import read_deltalake, sluice
from spark_support import spark_session

# Metrics whose values depend on rows only (file counts depend on how each engine lays out files).
ROW_METRICS = {
    "DELETE": ["numDeletedRows", "numCopiedRows", "numRemovedFiles"],
    "UPDATE": ["numUpdatedRows", "numCopiedRows", "numRemovedFiles"],
    "MERGE": ["numSourceRows", "numTargetRowsInserted", "numTargetRowsUpdated",
              "numTargetRowsMatchedUpdated", "numTargetRowsNotMatchedBySourceUpdated",
              "numTargetRowsDeleted", "numTargetRowsMatchedDeleted",
              "numTargetRowsNotMatchedBySourceDeleted", "numTargetRowsCopied",
              "numTargetFilesRemoved"],
}


SCHEMA = pa.schema([("id", pa.int64()), ("part", pa.string()), ("v", pa.int64()),
                    ("name", pa.string())])


def base_table(path):
    """Three files in three partitions, written by delta-rs."""
    schema = SCHEMA
    for ids, part in (([1, 2, 3, 4], "a"), ([5, 6, 7, 8], "b"), ([9, 10], "c")):
        write_deltalake(str(path), pa.table({
            "id": ids, "part": [part] * len(ids), "v": [i * 10 for i in ids],
            "name": [f"n{i}" for i in ids]}, schema=schema), mode="append", partition_by=["part"])


def rows(path):
    return sorted(read_deltalake(path).to_pylist(), key=lambda r: r["id"])


def last_commit(path):
    entry = DeltaTable(str(path)).history(1)[0]
    return entry["operation"], {k: str(v) for k, v in entry.get("operationMetrics", {}).items()}


def sluice_sql(table, statement, *flags):
    return sluice("sql", table, statement.replace("{t}", f"delta.`{table}`"), *flags)


def spark_sql(spark, table, statement):
    return spark.sql(statement.replace("{t}", f"delta.`{table}`"))


@pytest.fixture(scope="module")
def spark():
    session = spark_session()
    # MERGE copies its source first by default (seconds per statement here); these sources are
    # Delta tables nobody changes meanwhile, so Spark may read them directly.
    key = "spark.databricks.delta.merge.materializeSource"
    before = session.conf.get(key, None)
    session.conf.set(key, "none")
    yield session
    if before is None:
        session.conf.unset(key)
    else:
        session.conf.set(key, before)


@pytest.fixture
def tables(tmp_path):
    ours, theirs = tmp_path / "sluice", tmp_path / "spark"
    base_table(ours)
    shutil.copytree(ours, theirs)
    return ours, theirs


@pytest.fixture
def source(tmp_path):
    """A MERGE source table (Spark has no column aliases for MERGE's VALUES)."""
    path = tmp_path / "src"
    write_deltalake(str(path), pa.table({"id": [2, 5, 11], "part": ["a", "b", "d"],
                                         "v": [-1, 55, 110], "name": ["x", "five", "new"]},
                                        schema=SCHEMA))
    return path


STATEMENTS = [
    "DELETE FROM {t} WHERE v > 20 AND part = 'a'",
    "DELETE FROM {t} WHERE part = 'c'",
    "UPDATE {t} AS x SET v = x.v * 2, x.name = upper(name) WHERE id % 2 = 0",
    "MERGE INTO {t} AS t USING {src} AS s ON t.id = s.id"
    " WHEN MATCHED AND s.v < 0 THEN DELETE"
    " WHEN MATCHED THEN UPDATE SET *"
    " WHEN NOT MATCHED THEN INSERT *"
    " WHEN NOT MATCHED BY SOURCE AND t.v >= 80 THEN UPDATE SET v = 0",
    "MERGE INTO {t} t USING (SELECT id, v + 1 AS v FROM {t} WHERE part = 'b') AS s ON t.id = s.id"
    " WHEN MATCHED THEN UPDATE SET t.v = s.v"
    " WHEN NOT MATCHED THEN INSERT (id, part, v) VALUES (s.id, 'z', s.v)",
    "DELETE FROM {t}",
]


@pytest.mark.slow
def test_statements_match_delta_spark(spark, tables, source):
    ours, theirs = tables
    for statement in STATEMENTS:
        statement = statement.replace("{src}", f"delta.`{source}`")
        result = sluice_sql(ours, statement, "--format", "json")
        assert result.returncode == 0, (statement, result.stderr)
        reported = json.loads(result.stdout)
        spark_sql(spark, theirs, statement)
        assert rows(ours) == rows(theirs), statement
        op, metrics = last_commit(ours)
        spark_op, spark_metrics = last_commit(theirs)
        assert op == spark_op == reported["operation"], statement
        for name in ROW_METRICS[op]:
            assert metrics.get(name) == spark_metrics.get(name), (statement, name, metrics,
                                                                  spark_metrics)
        assert reported["version"] == DeltaTable(str(ours)).version()
    # Spark reads what sluice wrote, and every version sluice made is readable.
    assert spark.read.format("delta").load(str(ours)).count() == 0
    assert DeltaTable(str(ours)).version() == DeltaTable(str(theirs)).version()


@pytest.mark.slow
def test_merge_with_several_source_rows_for_one_target_row_fails_as_in_spark(spark, tables):
    ours, theirs = tables
    statement = ("MERGE INTO {t} t USING (SELECT id, v FROM {t} WHERE part = 'a' UNION ALL "
                 "SELECT id, v FROM {t} WHERE id = 1) AS s ON t.id = s.id "
                 "WHEN MATCHED THEN UPDATE SET v = s.v")
    before = DeltaTable(str(ours)).version()
    result = sluice_sql(ours, statement)
    assert result.returncode != 0
    assert "DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE" in result.stderr, result.stderr
    with pytest.raises(Exception, match="DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE"):
        spark_sql(spark, theirs, statement)
    assert DeltaTable(str(ours)).version() == before


@pytest.mark.parametrize("statement", [
    "MERGE INTO {t} t USING {src} s ON t.id = s.id AND s.id > 100 WHEN MATCHED THEN UPDATE SET *",
    "MERGE INTO {t} t USING (SELECT * FROM {src} WHERE v > 1000) s ON t.id = s.id"
    " WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT *",
])
def test_merge_that_changes_nothing_makes_no_commit_as_delta_spark(spark, tables, source, statement):
    # delta-spark (commitIfNeeded) leaves the version as it is for both statements: run in
    # Spark on its copy of the table too, and compare.
    ours, theirs = tables
    before = DeltaTable(str(ours)).version()
    assert DeltaTable(str(theirs)).version() == before
    statement = statement.replace("{src}", f"delta.`{source}`")
    result = sluice_sql(ours, statement, "--format", "json")
    assert result.returncode == 0, result.stderr
    reported = json.loads(result.stdout)
    assert reported["committed"] is False and reported["version"] == before, reported
    assert DeltaTable(str(ours)).version() == before
    spark_sql(spark, theirs, statement)
    assert DeltaTable(str(theirs)).version() == before, "delta-spark committed this MERGE"
    assert rows(ours) == rows(theirs)


def test_change_data_feed_table_takes_dml_with_its_change_file(tmp_path):
    # The feed's content is checked against deltalake and Spark in test_change_data_feed_write.py.
    path = tmp_path / "cdf"
    write_deltalake(str(path), pa.table({"id": pa.array([1, 2], pa.int64())}),
                    configuration={"delta.enableChangeDataFeed": "true"})
    version = DeltaTable(str(path)).version()
    result = sluice_sql(path, "DELETE FROM {t} WHERE id = 1")
    assert result.returncode == 0, result.stderr
    assert sorted(r["id"] for r in read_deltalake(path).to_pylist()) == [2]
    assert DeltaTable(str(path)).version() == version + 1
    assert list((path / "_change_data").glob("*.parquet")), "no change data file written"


def test_select_and_errors_with_line_and_column(tables):
    ours, _ = tables
    folder_name = ours.name  # a bare name is the table given, by its folder's name
    result = sluice("sql", ours, f"SELECT id, v FROM {folder_name} WHERE part = 'b' ORDER BY id",
                    "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["5", "6", "7", "8"]
    bad = sluice("sql", ours, "UPDATE {}\nSET nope = 1".format(folder_name))
    assert bad.returncode != 0
    assert "<statement>:2:5: error: the target table has no column 'nope'" in bad.stderr, bad.stderr
    other = sluice("sql", ours, "DELETE FROM elsewhere WHERE id = 1")
    assert "unknown table 'elsewhere'" in other.stderr and "delta.`<path>`" in other.stderr, \
        other.stderr


def test_bare_names_in_a_pipeline_folder_are_its_datasets(tmp_path):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text(
        "name: shop\nstorage: ./data\nkafka:\n  default: {bootstrap.servers: \"127.0.0.1:9\"}\n")
    base_table(pipe / "data" / "tables" / "orders")
    result = sluice("sql", pipe, "DELETE FROM LIVE.orders WHERE id IN (1, 9)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("DELETE: committed table version 3;"), result.stdout
    assert "numDeletedRows=2" in result.stdout, result.stdout
    assert [r["id"] for r in rows(pipe / "data" / "tables" / "orders")] == [2, 3, 4, 5, 6, 7, 8, 10]
    missing = sluice("sql", pipe, "DELETE FROM nothing")
    assert missing.returncode != 0
    assert "pipeline 'shop' has no table 'nothing'" in missing.stderr, missing.stderr
