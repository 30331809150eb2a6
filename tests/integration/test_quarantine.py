"""Quarantine tables: rows that DROP ROW expectations remove go to <table>_quarantine with the
expectations they broke and their source position, exactly once for both tables, also after a
crash between the quarantine commit and the target commit."""
import json

from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

BRONZE = """
CREATE OR REFRESH STREAMING TABLE raw
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');
"""

# Two tables with quarantine: one fed by Kafka directly, one by the bronze Delta table.
SILVER = """
CREATE OR REFRESH STREAMING TABLE {name} (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW,
  CONSTRAINT known_kind EXPECT (kind IN ('a', 'b'))
) TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT e.id, e.amount, e.kind, {position}
FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE, kind STRING') AS e, * FROM STREAM {source});
"""


def events(lo, hi):
    out = []
    for i in range(lo, hi):
        out.append({"id": None if i % 7 == 0 else i, "amount": -1.0 if i % 5 == 0 else float(i),
                    "kind": "c" if i % 3 == 0 else "a", "n": i})
    return out


def expected_failures(e):
    failed = []
    if e["id"] is None:
        failed.append("has_id")
    if not e["amount"] > 0:
        failed.append("positive")
    if e["kind"] not in ("a", "b"):
        failed.append("known_kind")
    return failed


def write_sql(pipe, topic):
    (pipe / "bronze.sql").write_text(BRONZE.format(topic=topic))
    (pipe / "silver.sql").write_text(
        SILVER.format(name="from_bronze", source="raw", position="offset AS src_offset") +
        SILVER.format(name="from_kafka", source=f"read_kafka(topic => '{topic}')",
                      position="offset AS src_offset"))


def check_tables(pipe, produced):
    """Each table and its quarantine together hold every produced record exactly once."""
    by_offset = {i: e for i, e in enumerate(produced)}  # one partition: offset == index
    for table in ("from_bronze", "from_kafka"):
        good = DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().to_pylist()
        bad = DeltaTable(str(pipe / "data" / "tables" / f"{table}_quarantine")).to_pyarrow_table().to_pylist()
        good_offsets = sorted(r["src_offset"] for r in good)
        bad_offsets = sorted(r["src_offset"] for r in bad)
        assert len(good_offsets) == len(set(good_offsets)), f"{table}: doubled rows"
        assert len(bad_offsets) == len(set(bad_offsets)), f"{table}_quarantine: doubled rows"
        want_bad = {o for o, e in by_offset.items() if e["id"] is None or not e["amount"] > 0}
        assert set(bad_offsets) == want_bad, table
        assert set(good_offsets) == set(by_offset) - want_bad, table
        for r in bad:
            e = by_offset[r["src_offset"]]
            assert r["_failed_expectations"] == expected_failures(e), (table, r)
            assert r["amount"] == e["amount"]
            if table == "from_kafka":
                assert (r["_source_partition"], r["_source_offset"]) == (0, r["src_offset"])
            else:
                assert r["_source_name"] == "raw" and r["_source_partition"] is None
                assert r["_source_offset"] >= 0  # the bronze version that added the row
            assert r["_quarantined_at"] is not None


def test_dropped_rows_go_to_quarantine_exactly_once(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "quarantine", bootstrap)
    write_sql(pipe, topic)
    produced = events(0, 300)
    produce_values(bootstrap, topic, produced)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    check_tables(pipe, produced)

    # The event log counts what went to quarantine.
    r = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    quarantined = sum(e["details"]["flow_progress"]["metrics"].get("num_quarantined_rows", 0)
                      for e in rows if e["dataset"] == "from_kafka")
    assert quarantined == sum(1 for e in produced if e["id"] is None or not e["amount"] > 0)

    # A crash after the quarantine commit and before the target's: the next run neither loses
    # nor doubles rows in either table.
    more = events(300, 500)
    produce_values(bootstrap, topic, more)
    produced += more
    crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "after_side_table_commit"})
    assert crashed.returncode == 137, crashed.stderr
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    check_tables(pipe, produced)
    r = run_sluice("run", pipe, "--once")  # nothing new: nothing changes
    assert r.returncode == 0, r.stderr
    check_tables(pipe, produced)


def test_quarantine_table_name_must_be_free(tmp_path):
    pipe = kafka_pipeline(tmp_path, "q2", "127.0.0.1:1")
    (pipe / "a.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE t (CONSTRAINT c EXPECT (x > 0) ON VIOLATION DROP ROW) "
        "TBLPROPERTIES ('sluice.quarantine' = 'true') AS SELECT 1 AS x, * FROM STREAM read_kafka(topic => 'x');\n"
        "CREATE OR REFRESH MATERIALIZED VIEW t_quarantine AS SELECT x FROM t;\n")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1
    assert "t_quarantine" in r.stderr and "quarantine" in r.stderr


def test_quarantine_on_a_windowed_or_dedup_table_is_refused_not_ignored(tmp_path):
    """A window or dedup row stands for many input rows: sluice refuses the property, at its
    place in the SQL, instead of dropping what the expectations remove as if there were none."""
    for name, query in [
        ("w", "SELECT k, count(*) AS n FROM (SELECT CAST(key AS STRING) AS k, timestamp AS ts "
              "FROM STREAM read_kafka(topic => 'x')) WATERMARK ts DELAY OF INTERVAL 1 MINUTE "
              "GROUP BY k, window(ts, '1 minute')"),
        ("d", "SELECT DISTINCT k, ts FROM (SELECT CAST(key AS STRING) AS k, timestamp AS ts "
              "FROM STREAM read_kafka(topic => 'x')) WATERMARK ts DELAY OF INTERVAL 1 MINUTE"),
    ]:
        pipe = kafka_pipeline(tmp_path / name, "q3", "127.0.0.1:1")
        (pipe / "a.sql").write_text(
            "CREATE OR REFRESH STREAMING TABLE t (CONSTRAINT c EXPECT (k IS NOT NULL) ON VIOLATION DROP ROW)\n"
            f"TBLPROPERTIES ('sluice.quarantine' = 'true') AS {query};\n")
        r = run_sluice("validate", pipe)
        assert r.returncode == 1, (name, r.stdout)
        assert "a.sql:1:1" in r.stderr and "'sluice.quarantine' on a windowed or deduplicating" in r.stderr, r.stderr
        assert not (pipe / "data" / "tables" / "t").exists()
