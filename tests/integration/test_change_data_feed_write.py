"""The change data feed sluice writes (delta.enableChangeDataFeed): DELETE, UPDATE and MERGE
through `sluice sql` write _change_data files, appends and materialized-view refreshes write
none, and two independent readers -- deltalake's load_cdf and Spark's readChangeFeed -- return,
version by version, exactly the changes a Python model of the statements predicts. APPLY CHANGES
targets (SCD1 and SCD2) with the feed on are read by Spark too, against test_apply_changes.py's
models: the tables after every run, the feed as the models' successive states imply it."""
import functools
import random

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


APPLY_TARGETS = """
CREATE STREAMING TABLE cdc_raw AS SELECT c.* FROM (SELECT from_json(CAST(value AS STRING),
  'id BIGINT, name STRING, city STRING, op STRING, seq BIGINT') AS c FROM STREAM read_kafka(topic => '{topic}'));
CREATE STREAMING TABLE scd1 TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true');
APPLY CHANGES INTO scd1 FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd'
  SEQUENCE BY seq COLUMNS * EXCEPT (op) STORED AS SCD TYPE 1;
CREATE STREAMING TABLE scd2 TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true');
APPLY CHANGES INTO scd2 FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd'
  SEQUENCE BY seq COLUMNS * EXCEPT (op) STORED AS SCD TYPE 2;
"""


def feed_between(before, after, key, version):
    """The change rows a commit taking a table from the rows `before` to `after` records: per
    key (the SCD1 key, or SCD2's (key, __START_AT)) an insert, a delete, or an update's pre- and
    postimage; a row left as it was records nothing."""
    old, new = {key(r): r for r in before}, {key(r): r for r in after}
    assert len(old) == len(before) and len(new) == len(after), "the model's rows are unique per key"
    out = [old[k] + ("delete", version) for k in old.keys() - new.keys()]
    out += [new[k] + ("insert", version) for k in new.keys() - old.keys()]
    for k in old.keys() & new.keys():
        if old[k] != new[k]:
            out += [old[k] + ("update_preimage", version), new[k] + ("update_postimage", version)]
    return out


@pytest.mark.slow  # Spark; APPLY CHANGES runs under ASan in test_apply_changes.py, MERGE's change files above
def test_apply_changes_targets_and_their_feeds_read_by_spark(tmp_path, spark, bootstrap, new_topic):
    """SCD1 and SCD2 APPLY CHANGES targets with the change data feed on, over three runs of random
    change streams (deletes, re-inserts, duplicates, reordering, late changes between versions):
    after every run Spark's Delta reader returns each target as the Python models of
    test_apply_changes.py compute it; then Spark's readChangeFeed over every version equals the
    differences of the models' successive states (each run is one MERGE commit), and deltalake's
    load_cdf returns the same rows as Spark's."""
    from pyspark.sql import functions as F

    from test_apply_changes import change_stream, scd1_model, scd2_model
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "acfeed", bootstrap, "commit: {max_rows: 40}\n")
    (pipe / "p.sql").write_text(APPLY_TARGETS.format(topic=topic))
    tables = {n: pipe / "data" / "tables" / f"scd{n}" for n in (1, 2)}
    columns = {1: ["id", "name", "city", "seq"], 2: ["id", "name", "city", "seq", "__START_AT", "__END_AT"]}
    keys = {1: lambda r: r[0], 2: lambda r: (r[0], r[4])}
    models = {1: scd1_model, 2: scd2_model}
    states = {1: [[]], 2: [[]]}  # the model's rows after each commit, from the empty table (version 0)
    rng = random.Random(29)
    produced = []
    for run in range(3):
        chunk = change_stream(rng, 1 + 60 * run, 60)
        if produced:  # late changes: sequence values between versions already applied
            chunk += [dict(c, seq=c["seq"] + 5, name=f"late{c['seq']}") for c in rng.sample(produced, 4)]
        produce_values(bootstrap, topic, chunk)
        produced += chunk
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        for n, path in tables.items():
            states[n].append(sorted(models[n](produced), key=repr))
            assert DeltaTable(str(path)).version() == run + 1, "one MERGE commit per run"
    for n, path in tables.items():
        # Every run's version as Spark reads it (time travel), in one Spark job per target.
        versions = [spark.read.format("delta").option("versionAsOf", v).load(str(path))
                    .withColumn("_run_version", F.lit(v)) for v in range(1, len(states[n]))]
        by_spark = {v: [] for v in range(1, len(states[n]))}
        for r in functools.reduce(lambda a, b: a.unionByName(b), versions).collect():
            by_spark[r["_run_version"]].append(tuple(r[c] for c in columns[n]))
        for v, rows in by_spark.items():
            assert sorted(rows, key=repr) == states[n][v], f"SCD{n} after run {v - 1}"
        dt = DeltaTable(str(path))
        assert dt.history(1)[0]["operation"] == "MERGE"
        assert dt.metadata().configuration.get("delta.enableChangeDataFeed") == "true"
        assert dt.protocol().min_writer_version >= 4 or "changeDataFeed" in (dt.protocol().writer_features or [])
        expected = sorted((row for v in range(1, len(states[n]))
                           for row in feed_between(states[n][v - 1], states[n][v], keys[n], v)), key=repr)
        kinds = {r[-2] for r in expected}
        # SCD2 closes a version (an update of __END_AT) where SCD1 deletes the row.
        assert kinds == ({"insert", "update_preimage", "update_postimage"} | ({"delete"} if n == 1 else set()))
        df = spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0).load(str(path))
        by_spark = sorted((tuple(r[c] for c in columns[n] + ["_change_type", "_commit_version"])
                           for r in df.collect()), key=repr)
        assert by_spark == expected, f"SCD{n}"
        cdf = pa.table(DeltaTable(str(path)).load_cdf(starting_version=0).read_all()).to_pylist()
        by_deltalake = sorted((tuple(r[c] for c in columns[n] + ["_change_type", "_commit_version"]) for r in cdf),
                              key=repr)
        assert by_deltalake == by_spark, f"SCD{n}"
