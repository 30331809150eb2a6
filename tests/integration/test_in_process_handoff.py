"""Bronze's rows handed to silver in process (pipeline/commit_channel.h): in a triggered run
silver takes the rows of each bronze commit as bronze writes them and commits bronze's version
only after bronze's commit landed. Checked against a run that reads bronze's files (the
handoff turned off, or overflowing a tiny budget) and against the produced events, with
deltalake and DuckDB; a crash between bronze's commit and silver's, then a rerun: exactly once."""
import json

import pyarrow as pa
from deltalake import DeltaTable

from conftest import duckdb_connection, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');
CREATE OR REFRESH STREAMING TABLE silver (
  CONSTRAINT positive EXPECT (n >= 0) ON VIOLATION DROP ROW
) AS SELECT e.id, e.n, partition
FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, n BIGINT') AS e, partition FROM STREAM(bronze));
"""
EVENTS = 30_000
PARTITIONS = 3


def events():
    # Every 7th event is dropped by the expectation.
    return [{"id": i, "n": -1 if i % 7 == 0 else i * 3} for i in range(EVENTS)]


def expected_silver():
    return sorted((e["id"], e["n"]) for e in events() if e["n"] >= 0)


def pipeline(tmp_path, name, bootstrap, topic, commit):
    # Small bronze commits: several per run, so silver takes several of them.
    pipe = kafka_pipeline(tmp_path / name, name, bootstrap, extra=f"commit: {{{commit}}}\n")
    (pipe / "tables.sql").write_text(SQL.format(topic=topic))
    return pipe


def silver_rows(pipe):
    """(id, n) of silver, by deltalake and by DuckDB: both must agree."""
    path = str(pipe / "data" / "tables" / "silver")
    by_deltalake = pa.table(DeltaTable(path).to_pyarrow_table())
    rows = sorted(zip(by_deltalake.column("id").to_pylist(), by_deltalake.column("n").to_pylist()))
    by_duckdb = sorted(duckdb_connection().execute(f"SELECT id, n FROM delta_scan('{path}')").fetchall())
    assert rows == by_duckdb
    return rows


def silver_progress(pipe):
    """The flow_progress metrics of silver's runs, oldest first."""
    r = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        e = json.loads(line)
        if e["dataset"] == "silver" and e["details"]["flow_progress"]["status"] == "COMPLETED":
            progress = e["details"]["flow_progress"]
            out.append({**progress["metrics"], **progress["source_rows"]})
    return out


def bronze_versions(pipe):
    return DeltaTable(str(pipe / "data" / "tables" / "bronze")).version()


def test_silver_takes_bronze_rows_in_process_and_equals_a_run_reading_files(tmp_path, bootstrap, new_topic):
    topic = new_topic(PARTITIONS)
    produce_values(bootstrap, topic, events(), partitions=PARTITIONS)
    handed = pipeline(tmp_path, "handed", bootstrap, topic, "max_rows: 4000")
    files = pipeline(tmp_path, "files", bootstrap, topic, "max_rows: 4000, handoff_bytes: 0")
    for pipe in (handed, files):
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
    assert bronze_versions(handed) >= 3, "several bronze commits"
    [handed_metrics] = silver_progress(handed)
    [files_metrics] = silver_progress(files)
    assert handed_metrics["num_rows_in_process"] == EVENTS and handed_metrics["num_rows_from_files"] == 0
    assert files_metrics["num_rows_in_process"] == 0 and files_metrics["num_rows_from_files"] == EVENTS
    for m in (handed_metrics, files_metrics):
        assert m["num_input_rows"] == EVENTS and m["num_dropped_rows"] == EVENTS - len(expected_silver())
    assert silver_rows(handed) == silver_rows(files) == expected_silver()
    # One silver commit per bronze commit taken, each recording that bronze version.
    silver_log = DeltaTable(str(handed / "data" / "tables" / "silver")).history()
    assert len(silver_log) == bronze_versions(handed) + 1


def test_a_commit_over_the_handoff_budget_is_read_from_files_with_the_same_result(tmp_path, bootstrap,
                                                                                   new_topic):
    topic = new_topic(PARTITIONS)
    produce_values(bootstrap, topic, events(), partitions=PARTITIONS)
    pipe = pipeline(tmp_path, "tiny", bootstrap, topic, "max_rows: 4000, handoff_bytes: 1")
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    [metrics] = silver_progress(pipe)
    assert metrics["num_rows_in_process"] == 0 and metrics["num_rows_from_files"] == EVENTS
    assert silver_rows(pipe) == expected_silver()


def test_a_crash_between_bronze_and_silver_commits_then_a_rerun_is_exactly_once(tmp_path, bootstrap, new_topic):
    topic = new_topic(PARTITIONS)
    produce_values(bootstrap, topic, events(), partitions=PARTITIONS)
    pipe = pipeline(tmp_path, "crash", bootstrap, topic, "max_rows: 4000")
    # Dies right after bronze's first commit landed, before silver commits what it took of it.
    r = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "before_in_process_commit"})
    assert r.returncode == 137, r.stderr
    assert bronze_versions(pipe) >= 0
    silver = pipe / "data" / "tables" / "silver"
    assert not list((silver / "_delta_log").glob("*.json")), "silver committed nothing of it"
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    metrics = silver_progress(pipe)[-1]
    # Bronze's commit of the crashed run comes from its files, the rest in process.
    assert metrics["num_rows_from_files"] > 0 and metrics["num_rows_in_process"] > 0
    assert metrics["num_rows_from_files"] + metrics["num_rows_in_process"] == EVENTS
    assert silver_rows(pipe) == expected_silver()  # each event once


def test_a_partitioned_bronze_is_read_from_its_files(tmp_path, bootstrap, new_topic):
    # A file read takes partition columns from the log, where "" is written as null (as Spark
    # does); rows handed over in process would still hold "". So such a bronze is read from its
    # files, and silver sees exactly what a run reading files sees.
    topic = new_topic(PARTITIONS)
    produce_values(bootstrap, topic, events(), partitions=PARTITIONS)
    sql = f"""
CREATE OR REFRESH STREAMING TABLE bronze PARTITIONED BY (tag)
AS SELECT *, CASE WHEN partition = 0 THEN '' ELSE concat('p', CAST(partition AS STRING)) END AS tag
FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');
CREATE OR REFRESH STREAMING TABLE silver
AS SELECT e.id, e.n, partition, tag IS NULL AS untagged
FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, n BIGINT') AS e, partition, tag FROM STREAM(bronze));
"""
    results = {}
    for name, commit in (("handed", "max_rows: 4000"), ("files", "max_rows: 4000, handoff_bytes: 0")):
        pipe = kafka_pipeline(tmp_path / name, name, bootstrap, extra=f"commit: {{{commit}}}\n")
        (pipe / "tables.sql").write_text(sql)
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
        [metrics] = silver_progress(pipe)
        assert metrics["num_rows_in_process"] == 0 and metrics["num_rows_from_files"] == EVENTS
        path = str(pipe / "data" / "tables" / "silver")
        results[name] = sorted(duckdb_connection().execute(
            f"SELECT id, n, partition, untagged FROM delta_scan('{path}')").fetchall())
    assert results["handed"] == results["files"]
    assert {(p, u) for _, _, p, u in results["files"]} == {(0, True), (1, False), (2, False)}
