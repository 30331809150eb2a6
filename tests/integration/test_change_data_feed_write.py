"""The change data feed sluice writes (delta.enableChangeDataFeed): DELETE, UPDATE and MERGE
through `sluice sql` write _change_data files, appends and materialized-view refreshes write
none, and two independent readers -- deltalake's load_cdf and Spark's readChangeFeed -- return,
version by version, exactly the changes a Python model of the statements predicts."""
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import run_sluice
from readers import read_deltalake, sluice, sluice_append
from spark_support import spark_session
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

FEED = {"delta.enableChangeDataFeed": "true"}
SCHEMA = pa.schema([("id", pa.int64()), ("part", pa.string()), ("v", pa.int64())])


@pytest.fixture(scope="module")
def spark():
    return spark_session()


def deltalake_changes(path, columns):
    table = pa.table(DeltaTable(str(path)).load_cdf(starting_version=0).read_all()).to_pylist()
    return sorted(tuple(r[c] for c in columns) + (r["_change_type"], r["_commit_version"]) for r in table)


def spark_changes(spark, path, columns):
    df = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
          .load(str(path)))
    return sorted(tuple(r[c] for c in columns) + (r["_change_type"], r["_commit_version"])
                  for r in df.collect())


class Model:
    """The table's rows by id and the change feed each statement should produce."""

    def __init__(self):
        self.rows, self.changes, self.version = {}, [], -1

    def commit(self):
        self.version += 1

    def insert(self, id_, part, v):
        self.rows[id_] = (part, v)
        self.changes.append((id_, part, v, "insert", self.version))

    def delete(self, id_):
        part, v = self.rows.pop(id_)
        self.changes.append((id_, part, v, "delete", self.version))

    def update(self, id_, v):
        part, old = self.rows[id_]
        self.changes.append((id_, part, old, "update_preimage", self.version))
        self.changes.append((id_, part, v, "update_postimage", self.version))
        self.rows[id_] = (part, v)


def sql(path, statement):
    result = sluice("sql", path, statement.replace("{t}", f"delta.`{path}`"))
    assert result.returncode == 0, result.stderr
    return result


def test_dml_change_feed_equals_the_model_in_deltalake_and_spark(tmp_path, spark):
    path = tmp_path / "t"
    m = Model()
    # v0: created by delta-rs with the feed on; v1: appended by sluice (no change files).
    m.commit()
    first = [(i, "a" if i <= 3 else "b", i * 10) for i in range(1, 7)]
    write_deltalake(str(path), pa.Table.from_pylist([dict(zip(SCHEMA.names, r)) for r in first], SCHEMA),
                    partition_by=["part"], configuration=FEED)
    for r in first:
        m.insert(*r)
    m.commit()
    sluice_append(path, pa.Table.from_pylist([{"id": 7, "part": "c", "v": 70}, {"id": 8, "part": "c", "v": 80}],
                                             SCHEMA))
    m.insert(7, "c", 70)
    m.insert(8, "c", 80)
    # v2: a row-level DELETE (rewrites files a and b).
    m.commit()
    sql(path, "DELETE FROM {t} WHERE id IN (2, 5)")
    m.delete(2)
    m.delete(5)
    # v3: UPDATE across partitions b and c.
    m.commit()
    sql(path, "UPDATE {t} SET v = v + 1 WHERE id >= 6")
    for i in (6, 7, 8):
        m.update(i, m.rows[i][1] + 1)
    # v4: MERGE with every clause kind.
    m.commit()
    sql(path, "MERGE INTO {t} t USING (VALUES (1, 0), (3, 33), (9, 90)) AS s(id, v) ON t.id = s.id "
              "WHEN MATCHED AND s.v = 0 THEN DELETE "
              "WHEN MATCHED THEN UPDATE SET v = s.v "
              "WHEN NOT MATCHED THEN INSERT (id, part, v) VALUES (s.id, 'a', s.v) "
              "WHEN NOT MATCHED BY SOURCE AND t.id = 4 THEN DELETE "
              "WHEN NOT MATCHED BY SOURCE AND t.id = 6 THEN UPDATE SET v = -6")
    m.delete(1)
    m.update(3, 33)
    m.insert(9, "a", 90)
    m.delete(4)
    m.update(6, -6)
    # v5: a DELETE of a whole partition: removes only, the feed derived from them.
    m.commit()
    sql(path, "DELETE FROM {t} WHERE part = 'c'")
    m.delete(7)
    m.delete(8)
    # v6: a MERGE whose matched row no clause takes: its file is copied, no row changes.
    m.commit()
    sql(path, "MERGE INTO {t} t USING (VALUES (3, 0)) AS s(id, v) ON t.id = s.id "
              "WHEN MATCHED AND s.v = 1 THEN DELETE")

    dt = DeltaTable(str(path))
    assert dt.version() == m.version
    assert dt.protocol().min_writer_version >= 4 or "changeDataFeed" in (dt.protocol().writer_features or [])
    expected = sorted(m.changes)
    columns = ["id", "part", "v"]
    assert deltalake_changes(path, columns) == expected
    assert spark_changes(spark, path, columns) == expected
    now = sorted((r["id"], r["part"], r["v"]) for r in read_deltalake(path).to_pylist())
    assert now == sorted((i, p, v) for i, (p, v) in m.rows.items())
    # Change files only where rows were rewritten and changed (v2, v3, v4).
    cdc_versions = set()
    for v in range(m.version + 1):
        log = (path / "_delta_log" / f"{v:020d}.json").read_text()
        if '"cdc"' in log:
            cdc_versions.add(v)
    assert cdc_versions == {2, 3, 4}


SQL = """
CREATE OR REFRESH STREAMING TABLE events
TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                         value_schema => 'id BIGINT, k STRING');

CREATE OR REFRESH MATERIALIZED VIEW per_key
AS SELECT k, count(*) AS n FROM events GROUP BY k;
"""


def test_pipeline_tables_with_the_feed(tmp_path, spark, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "cdfw", bootstrap,
                          "tables:\n  per_key:\n    properties: {delta.enableChangeDataFeed: 'true'}\n")
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    events, per_key = pipe / "data" / "tables" / "events", pipe / "data" / "tables" / "per_key"
    produce_values(bootstrap, topic, [{"id": 1, "k": "x"}, {"id": 2, "k": "y"}])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    for table in (events, per_key):
        protocol = DeltaTable(str(table)).protocol()
        assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 4), (table, protocol)
    produce_values(bootstrap, topic, [{"id": 3, "k": "x"}])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    deleted = sluice("sql", pipe, "DELETE FROM LIVE.events WHERE id = 2")
    assert deleted.returncode == 0, deleted.stderr

    # The streaming table: appends (inserts derived from adds), then the DELETE's change file.
    v_events = DeltaTable(str(events)).history()
    by_op = {}
    for h in v_events:
        by_op.setdefault(h["operation"], []).append(h["version"])
    [dml_version] = by_op["DELETE"]
    first, second = sorted(by_op["STREAMING UPDATE"])
    expected = sorted([(1, "x", "insert", first), (2, "y", "insert", first), (3, "x", "insert", second),
                       (2, "y", "delete", dml_version)])
    assert deltalake_changes(events, ["id", "k"]) == expected
    assert spark_changes(spark, events, ["id", "k"]) == expected

    # The view: each refresh overwrites it, so its feed is the old rows deleted and the new
    # rows inserted (Spark's overwrite), derived from the refresh's removes and adds.
    expected_view = sorted([("x", 1, "insert", 0), ("y", 1, "insert", 0),
                            ("x", 1, "delete", 1), ("y", 1, "delete", 1),
                            ("x", 2, "insert", 1), ("y", 1, "insert", 1)])
    assert deltalake_changes(per_key, ["k", "n"]) == expected_view
    assert spark_changes(spark, per_key, ["k", "n"]) == expected_view
