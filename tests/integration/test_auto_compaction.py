"""Auto compaction inside a running pipeline (pipelines.autoOptimize.managed, on by default): a
continuous run that writes many small files compacts them beside the flows as an OPTIMIZE with
dataChange=false and auto=true, while the flows keep committing. The table holds every produced
event once (deltalake, DuckDB, Spark), a STREAM reader of it gets each row once, Spark's history
shows the OPTIMIZE; a triggered run compacts at its end; `pipelines.autoOptimize.managed =
false` compacts nothing; unknown pipelines.* keys and bad Z-order columns are refused."""
import collections
import json
import signal
import subprocess
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from conftest import SLUICE, duckdb_connection, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

CONTINUOUS_SQL = """
CREATE OR REFRESH STREAMING TABLE bronze
TBLPROPERTIES ('sluice.autoCompact.minNumFiles' = '4', 'pipelines.autoOptimize.zOrderCols' = 'id')
AS SELECT e.id, e.user FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, user STRING') AS e
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
CREATE OR REFRESH STREAMING TABLE silver AS SELECT id, user FROM STREAM(bronze);
"""

ROUNDS_BEFORE, ROUNDS_AFTER, PER_ROUND = 8, 3, 5


def events(start, n):
    return [{"id": i, "user": f"u{i % 3}"} for i in range(start, start + n)]


def commits(table):
    """(version, commitInfo) of every commit in a table's log."""
    out = []
    for f in sorted((table / "_delta_log").glob("*.json")):
        for line in f.read_text().splitlines():
            action = json.loads(line)
            if "commitInfo" in action:
                out.append((int(f.stem), action["commitInfo"]))
    return out


def optimize_commits(table):
    return [(v, c) for v, c in commits(table) if c["operation"] == "OPTIMIZE"] \
        if (table / "_delta_log").exists() else []


def ids_of(table):
    # The log folder exists a moment before its first commit file: no table yet.
    if not any((table / "_delta_log").glob("*.json")):
        return []
    return DeltaTable(str(table)).to_pyarrow_table(columns=["id"]).column("id").to_pylist()


def wait_for(proc, condition, what, timeout=120):
    """Polls `condition` until it holds (fails if sluice exits first or the deadline passes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"sluice exited while waiting for {what}: {proc.stderr.read()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)  # a poll interval, not a synchronisation


@pytest.fixture(scope="module")
def compacted(tmp_path_factory, bootstrap):
    """A continuous run fed round by round (each round its own small file in bronze) until
    auto compaction commits, then a few rounds more; stopped once silver has every row."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topic = f"t-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=30)
    tmp = tmp_path_factory.mktemp("auto")
    pipe = kafka_pipeline(tmp, "auto", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    (pipe / "tables.sql").write_text(CONTINUOUS_SQL.format(topic=topic))
    bronze, silver = pipe / "data" / "tables" / "bronze", pipe / "data" / "tables" / "silver"
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    produced = []
    try:
        for r in range(ROUNDS_BEFORE + ROUNDS_AFTER):
            batch = events(len(produced), PER_ROUND)
            produce_values(bootstrap, topic, batch)
            produced += batch
            wait_for(proc, lambda: len(ids_of(bronze)) == len(produced), f"round {r} in bronze")
            if r == ROUNDS_BEFORE - 1:
                wait_for(proc, lambda: optimize_commits(bronze), "an auto compaction of bronze")
        wait_for(proc, lambda: len(ids_of(silver)) >= len(produced), "every row in silver")
    finally:
        proc.send_signal(signal.SIGTERM)
        stderr = proc.stderr.read()
        code = proc.wait(timeout=120)
    assert code == 0, stderr
    assert "auto compaction" not in stderr, stderr  # no failed compaction warned about
    yield {"pipe": pipe, "bronze": bronze, "silver": silver, "ids": [e["id"] for e in produced]}
    admin.delete_topics([topic])


def test_continuous_run_compacts_beside_the_flows_and_keeps_every_row_once(compacted):
    bronze, ids = compacted["bronze"], compacted["ids"]
    optimized = optimize_commits(bronze)
    assert optimized
    version, info = optimized[0]
    assert info["operationParameters"]["auto"] is True
    assert json.loads(info["operationParameters"]["zOrderBy"]) == ["id"]
    assert int(info["operationMetrics"]["numRemovedFiles"]) >= 4
    actions = [json.loads(line) for line in (bronze / "_delta_log" / f"{version:020}.json").read_text().splitlines()]
    files = [a.get("add") or a.get("remove") for a in actions if "add" in a or "remove" in a]
    assert files and all(f["dataChange"] is False for f in files)
    # The streaming writer went on committing after it (and never lost a race to it).
    assert any(v > version and c["operation"] == "STREAMING UPDATE" for v, c in commits(bronze))
    assert len(DeltaTable(str(bronze)).file_uris()) < len([c for _, c in commits(bronze)])
    assert sorted(ids_of(bronze)) == sorted(ids)
    con = duckdb_connection()
    duck = sorted(r[0] for r in con.sql(f"SELECT id FROM delta_scan('{bronze}')").fetchall())
    assert duck == sorted(ids)
    # The STREAM(bronze) reader skipped the compaction's dataChange=false files: each row once.
    assert collections.Counter(ids_of(compacted["silver"])) == collections.Counter(ids)
    # The event log tells of it.
    log = DeltaTable(str(compacted["pipe"] / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    done = [json.loads(e["details"])["maintenance_progress"] for e in log if e["event_type"] == "maintenance_progress"]
    assert any(d["status"] == "COMPLETED" and d["table_version"] == version for d in done), done


@pytest.mark.slow  # Spark; the C++ paths are covered by the test above
def test_spark_reads_the_compacted_table_and_its_history_shows_the_optimize(compacted):
    from spark_support import spark_session

    spark = spark_session()
    bronze = str(compacted["bronze"])
    got = sorted(r["id"] for r in spark.read.format("delta").load(bronze).select("id").collect())
    assert got == sorted(compacted["ids"])
    history = spark.sql(f"DESCRIBE HISTORY delta.`{bronze}`").collect()
    optimized = [h for h in history if h["operation"] == "OPTIMIZE"]
    assert optimized and optimized[-1]["operationParameters"]["auto"] == "true"


TRIGGERED_SQL = """
CREATE OR REFRESH STREAMING TABLE compacted
TBLPROPERTIES ('sluice.autoCompact.minNumFiles' = '3')
AS SELECT e.id FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS e
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
CREATE OR REFRESH MATERIALIZED VIEW total AS SELECT count(*) AS n FROM compacted;
CREATE OR REFRESH STREAMING TABLE unmanaged
TBLPROPERTIES ('pipelines.autoOptimize.managed' = 'false')
AS SELECT e.id FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS e
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
"""


def test_triggered_runs_compact_at_their_end_unless_managed_is_false(tmp_path, bootstrap, new_topic):
    from test_incremental_views import refreshes

    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "trig", bootstrap)
    (pipe / "tables.sql").write_text(TRIGGERED_SQL.format(topic=topic))
    tables = pipe / "data" / "tables"
    for run in range(4):
        produce_values(bootstrap, topic, [{"id": run * 2}, {"id": run * 2 + 1}])
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
        # The third run leaves three small files: compacted at its end.
        assert bool(optimize_commits(tables / "compacted")) == (run >= 2)
        if run == 2:
            # Only the compaction changed the view's input since its refresh: no new version.
            view_version = DeltaTable(str(tables / "total")).version()
            r = run_sluice("run", pipe, "--once")
            assert r.returncode == 0, r.stderr
            assert DeltaTable(str(tables / "total")).version() == view_version
            assert refreshes(pipe, "total")[-1]["mode"] == "none"
    assert not optimize_commits(tables / "unmanaged")
    assert len(DeltaTable(str(tables / "unmanaged")).file_uris()) == 4
    assert len(DeltaTable(str(tables / "compacted")).file_uris()) == 2  # 3 compacted into 1, then the 4th
    for name in ("compacted", "unmanaged"):
        assert sorted(ids_of(tables / name)) == list(range(8))
    assert DeltaTable(str(tables / "total")).to_pyarrow_table().column("n").to_pylist() == [8]


@pytest.mark.parametrize("props, message", [
    ("'pipelines.autoOptimize.zOrderCol' = 'id'",
     "table property 'pipelines.autoOptimize.zOrderCol' is not supported by sluice (did you mean 'pipelines.autoOptimize.zOrderCols'?)"),
    ("'pipelines.autoOptimize.zOrderCols' = 'nope'",
     "pipelines.autoOptimize.zOrderCols names column 'nope', which the table does not have; its columns are [id]"),
    ("'delta.autoOptimize.autoCompact' = 'auto'", "'auto' (Databricks' target size tuned to the table's size)"),
    ("'pipelines.autoOptimize.managed' = 'false', 'sluice.autoCompact.minNumFiles' = '5'",
     "it is off for this table"),
    ("'sluice.autocompact.minNumFiles' = '4'",
     "table property 'sluice.autocompact.minNumFiles' is not one sluice knows (it would be ignored) "
     "(did you mean 'sluice.autoCompact.minNumFiles'?)"),
], ids=["typo", "unknown-column", "auto", "tuned-while-off", "key-case"])
def test_settings_that_would_be_ignored_are_refused_where_they_are_written(tmp_path, props, message):
    pipe = kafka_pipeline(tmp_path, "bad", "127.0.0.1:1")
    (pipe / "tables.sql").write_text(
        f"CREATE OR REFRESH STREAMING TABLE t\nTBLPROPERTIES ({props})\nAS SELECT e.id FROM (\n"
        "  SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS e\n"
        "  FROM STREAM read_kafka(topic => 'x', starting_offsets => 'earliest'));\n")
    r = run_sluice("validate", pipe)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert not (pipe / "data" / "tables").exists()


def test_zorder_columns_on_a_clustered_table_are_refused_at_its_definition(tmp_path):
    # OPTIMIZE refuses Z-order on a clustered table: accepted, every compaction would fail later.
    pipe = kafka_pipeline(tmp_path, "bad", "127.0.0.1:1")
    (pipe / "tables.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE t\nCLUSTER BY (id)\n"
        "TBLPROPERTIES ('pipelines.autoOptimize.zOrderCols' = 'id')\nAS SELECT e.id FROM (\n"
        "  SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS e\n"
        "  FROM STREAM read_kafka(topic => 'x', starting_offsets => 'earliest'));\n")
    r = run_sluice("validate", pipe)
    assert r.returncode != 0
    assert "tables.sql:1:35: error: table 't': pipelines.autoOptimize.zOrderCols does not apply to a table with " \
           "CLUSTER BY" in r.stderr, r.stderr
    assert not (pipe / "data" / "tables").exists()
