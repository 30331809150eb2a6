"""Reading the change data feed: `table_changes(...)` through `sluice sql`, over tables whose
changes delta-spark (INSERT, UPDATE, DELETE, MERGE, a whole-partition DELETE) and deltalake
(append, delete, update, merge) wrote, and commits that only give a file another deletion vector
(Spark's DELETE with vectors, RESTORE). Oracles: Spark's readChangeFeed and deltalake's
load_cdf over the same table, compared as row multisets per version including _change_type
and _commit_version."""
import collections
import pathlib
import tempfile

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from deltalake import DeltaTable, write_deltalake

from readers import sluice
from spark_support import spark_session

DATA = ["id", "part", "v"]
CDF = {"delta.enableChangeDataFeed": "true"}


def sluice_changes(path, *bounds):
    """table_changes over the table at `path`, as a pyarrow Table (or the failed run)."""
    args = ", ".join(str(b) if isinstance(b, int) else f"'{b}'" for b in bounds)
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out.arrow"
        result = sluice("sql", path, f"SELECT * FROM table_changes('delta.`{path}`', {args})",
                        "--output", out)
        if result.returncode != 0:
            return result
        return ipc.open_file(out).read_all()


def multiset(table):
    """Rows as a multiset of (id, part, v, _change_type, _commit_version)."""
    cols = DATA + ["_change_type", "_commit_version"]
    table = table.select(cols)
    rows = zip(*(table.column(c).to_pylist() for c in cols))
    return collections.Counter(tuple(r) for r in rows)


def spark_changes(path, start, end=None):
    reader = spark_session().read.format("delta").option("readChangeFeed", "true") \
        .option("startingVersion", start)
    if end is not None:
        reader = reader.option("endingVersion", end)
    return reader.load(str(path)).toArrow()


def deltalake_changes(path, start, end=None):
    reader = DeltaTable(str(path)).load_cdf(starting_version=start, ending_version=end)
    return pa.table(reader.read_all())


@pytest.fixture(scope="module")
def spark_table(tmp_path_factory):
    """Versions 0-6 by delta-spark: create, insert, update, delete, merge, whole-partition
    delete, insert."""
    path = tmp_path_factory.mktemp("cdf") / "spark"
    spark = spark_session()
    t = f"delta.`{path}`"
    for statement in [
        f"CREATE TABLE {t} (id BIGINT, part STRING, v BIGINT) USING delta PARTITIONED BY (part) "
        "TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')",
        f"INSERT INTO {t} VALUES (1, 'a', 10), (2, 'a', 20), (3, 'b', 30), (4, 'b', 40), (5, 'c', 50)",
        f"UPDATE {t} SET v = v + 1 WHERE id IN (1, 3)",
        f"DELETE FROM {t} WHERE id = 4",
        f"MERGE INTO {t} AS t USING (SELECT * FROM VALUES (2, 'a', 200), (6, 'c', 60) AS s(id, part, v)) AS s "
        "ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
        f"DELETE FROM {t} WHERE part = 'c'",
        f"INSERT INTO {t} VALUES (7, 'b', 70)",
    ]:
        spark.sql(statement)
    return path


@pytest.fixture(scope="module")
def deltalake_table(tmp_path_factory):
    """Versions 0-4 by deltalake: write, append, delete, update, merge (cdc files for the last
    three)."""
    path = tmp_path_factory.mktemp("cdf") / "deltalake"
    schema = pa.schema([("id", pa.int64()), ("part", pa.string()), ("v", pa.int64())])
    rows = pa.table({"id": [1, 2, 3], "part": ["a", "a", "b"], "v": [10, 20, 30]}, schema=schema)
    write_deltalake(str(path), rows, configuration=CDF, partition_by=["part"])
    write_deltalake(str(path), pa.table({"id": [4], "part": ["b"], "v": [40]}, schema=schema),
                    mode="append")
    DeltaTable(str(path)).delete("id = 2")
    DeltaTable(str(path)).update(updates={"v": "v + 1"}, predicate="id = 3")
    source = pa.table({"id": [1, 9], "part": ["a", "c"], "v": [100, 900]}, schema=schema)
    DeltaTable(str(path)).merge(source, "t.id = s.id", source_alias="s", target_alias="t") \
        .when_matched_update_all().when_not_matched_insert_all().execute()
    return path


@pytest.mark.parametrize("bounds", [(0,), (2, 4), (3, 3), (5,)])
def test_spark_table_changes_equal_spark_and_deltalake(spark_table, bounds):
    ours = sluice_changes(spark_table, *bounds)
    assert isinstance(ours, pa.Table), ours.stderr
    assert multiset(ours) == multiset(spark_changes(spark_table, *bounds))
    assert multiset(ours) == multiset(deltalake_changes(spark_table, *bounds))


def test_commit_timestamps_equal_spark(spark_table):
    ours = sluice_changes(spark_table, 0)
    theirs = spark_changes(spark_table, 0)

    def times(t):
        return {(v, ts) for v, ts in zip(t.column("_commit_version").to_pylist(),
                                         t.column("_commit_timestamp").to_pylist())}
    assert times(ours) == times(theirs)


@pytest.mark.parametrize("bounds", [(0,), (1, 3), (4,)])
def test_deltalake_table_changes_equal_deltalake_and_spark(deltalake_table, bounds):
    ours = sluice_changes(deltalake_table, *bounds)
    assert isinstance(ours, pa.Table), ours.stderr
    assert multiset(ours) == multiset(deltalake_changes(deltalake_table, *bounds))
    assert multiset(ours) == multiset(spark_changes(deltalake_table, *bounds))


def snapshot_difference(path, version):
    """The oracle of a version's changes: rows of deltalake's snapshot at version - 1 missing at
    `version` deleted, new ones inserted (deltalake's DataFusion scan applies deletion vectors)."""
    from deltalake import QueryBuilder

    def snapshot(v):
        reader = QueryBuilder().register("t", DeltaTable(str(path), version=v)).execute("SELECT * FROM t")
        return collections.Counter(tuple(r[c] for c in DATA) for r in pa.table(reader.read_all()).to_pylist())
    before, after = snapshot(version - 1), snapshot(version)
    return collections.Counter({**{r + ("delete", version): n for r, n in (before - after).items()},
                                **{r + ("insert", version): n for r, n in (after - before).items()}})


def test_deletion_vector_changes_without_cdc_files_equal_spark(tmp_path):
    """Spark 4's DELETE on a table with deletion vectors and the feed writes no cdc files (the
    commit only gives the file a new vector), nor does RESTORE: the changes are the vectors'
    difference. Versions: 1 insert, 2 and 3 DELETE, 4 RESTORE to version 2, 5 sluice's DELETE."""
    path = tmp_path / "dv"
    spark = spark_session()
    t = f"delta.`{path}`"
    spark.sql(f"CREATE TABLE {t} (id BIGINT, part STRING, v BIGINT) USING delta TBLPROPERTIES "
              "('delta.enableDeletionVectors' = 'true', 'delta.enableChangeDataFeed' = 'true')")
    spark.range(0, 10).selectExpr("id", "'a' AS part", "id * 10 AS v").coalesce(1) \
        .write.format("delta").mode("append").save(str(path))
    spark.sql(f"DELETE FROM {t} WHERE id IN (2, 3, 7)")
    spark.sql(f"DELETE FROM {t} WHERE id = 4")
    spark.sql(f"RESTORE TABLE {t} TO VERSION AS OF 2")
    result = sluice("sql", path, f"DELETE FROM {t} WHERE id IN (4, 5)")
    assert result.returncode == 0, result.stderr
    log = (path / "_delta_log" / f"{3:020d}.json").read_text()
    assert '"deletionVector"' in log and '"cdc"' not in log, log  # what this test is about
    ours = sluice_changes(path, 1)
    assert isinstance(ours, pa.Table), ours.stderr
    assert multiset(ours) == multiset(spark_changes(path, 1))
    for version in (2, 3, 4, 5):
        one = sluice_changes(path, version, version)
        assert multiset(one) == snapshot_difference(path, version), version
    assert multiset(sluice_changes(path, 4, 4)) == {(4, "a", 40, "insert", 4): 1}


def test_query_over_changes_filters_and_projects(deltalake_table):
    result = sluice("sql", deltalake_table,
                    f"SELECT id, v FROM table_changes('delta.`{deltalake_table}`', 2) "
                    "WHERE _change_type = 'update_postimage' ORDER BY id", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"id":"1","v":"100"}', '{"id":"3","v":"31"}']


def test_timestamp_bounds_pick_the_versions_committed_in_them(spark_table):
    history = spark_changes(spark_table, 0)
    stamps = sorted({(v, ts) for v, ts in zip(history.column("_commit_version").to_pylist(),
                                              history.column("_commit_timestamp").to_pylist())})
    ts_of = dict(stamps)
    start = ts_of[2].strftime("%Y-%m-%d %H:%M:%S.%f")
    end = ts_of[3].strftime("%Y-%m-%d %H:%M:%S.%f")
    ours = sluice_changes(spark_table, start, end)
    assert isinstance(ours, pa.Table), ours.stderr
    versions = {v for v in ours.column("_commit_version").to_pylist()}
    expected = {v for v, ts in stamps if ts_of[2] <= ts <= ts_of[3]}
    assert versions == expected and 2 in versions


@pytest.mark.parametrize("bounds, message", [
    ((4, 2), "start version 4 is after end version 2"),
    ((99,), "start version 99 is after the latest version 6"),
    ((0, "not a time"), "neither a version"),
])
def test_bad_ranges_are_refused_naming_table_and_range(spark_table, bounds, message):
    result = sluice_changes(spark_table, *bounds)
    assert not isinstance(result, pa.Table)
    assert message in result.stderr and "table_changes" in result.stderr


def test_versions_without_change_data_feed_are_refused(tmp_path):
    path = tmp_path / "t"
    schema = pa.schema([("id", pa.int64()), ("part", pa.string()), ("v", pa.int64())])
    write_deltalake(str(path), pa.table({"id": [1], "part": ["a"], "v": [1]}, schema=schema))
    DeltaTable(str(path)).alter.set_table_properties(CDF)
    write_deltalake(str(path), pa.table({"id": [2], "part": ["a"], "v": [2]}, schema=schema),
                    mode="append")
    result = sluice_changes(path, 0)
    assert not isinstance(result, pa.Table)
    assert "not enabled at version 0" in result.stderr and "versions [0, 2]" in result.stderr
    ours = sluice_changes(path, 1)
    assert isinstance(ours, pa.Table), ours.stderr
    assert multiset(ours) == multiset(deltalake_changes(path, 1))
