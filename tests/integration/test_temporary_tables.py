"""Temporary tables (CREATE TEMPORARY STREAMING TABLE / MATERIALIZED VIEW, @dlt.table(temporary=True),
private=True): stored under the pipeline's storage and read by its datasets like any table, marked
`sluice.temporary` in the Delta metadata and in the event log's flow_definition, but left out of
`sluice catalog` and `sluice status` unless --all. Checked with deltalake against a Python model."""
import json

from deltalake import DeltaTable

from conftest import run_sluice
from test_serve import get, start, stop
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH TEMPORARY STREAMING TABLE staged
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                         value_schema => 'k STRING, v BIGINT');
CREATE OR REFRESH STREAMING TABLE published AS SELECT k, v * 10 AS v10 FROM STREAM(staged);
"""

PY = """
import dlt
from pyspark.sql import functions as F

@dlt.table(temporary=True)
def per_key():
    return dlt.read("staged").groupBy("k").agg(F.sum("v").alias("total"))

@dlt.table(private=True)
def big_keys():
    return dlt.read("per_key").filter(F.col("total") > 3)

@dlt.table
def report():
    return dlt.read("big_keys").select("k", "total")
"""


def rows(path, *order):
    return sorted(DeltaTable(str(path)).to_pyarrow_table().to_pylist(), key=lambda r: tuple(r[c] for c in order))


def json_of(*args):
    result = run_sluice(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_temporary_tables_are_stored_marked_and_not_listed(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "temp", bootstrap)
    (pipe / "a.sql").write_text(SQL.format(topic=topic))
    (pipe / "b.py").write_text(PY)
    values = [{"k": "a", "v": 1}, {"k": "b", "v": 2}, {"k": "a", "v": 3}, {"k": "b", "v": 1}, {"k": "c", "v": 9}]
    produce_values(bootstrap, topic, values)
    run = run_sluice("run", pipe, "--once")
    assert run.returncode == 0, run.stderr

    tables = pipe / "data" / "tables"
    totals = {}
    for r in values:
        totals[r["k"]] = totals.get(r["k"], 0) + r["v"]
    # Stored like any table and read downstream (the Python model of each hop).
    assert rows(tables / "staged", "k", "v") == sorted(values, key=lambda r: (r["k"], r["v"]))
    assert rows(tables / "published", "k", "v10") == sorted(({"k": r["k"], "v10": r["v"] * 10} for r in values),
                                                            key=lambda r: (r["k"], r["v10"]))
    assert rows(tables / "per_key", "k") == [{"k": k, "total": t} for k, t in sorted(totals.items())]
    big = [{"k": k, "total": t} for k, t in sorted(totals.items()) if t > 3]
    assert rows(tables / "big_keys", "k") == big and rows(tables / "report", "k") == big
    # Marked in the Delta metadata; a published table is not.
    for name in ("staged", "per_key", "big_keys"):
        assert DeltaTable(str(tables / name)).metadata().configuration.get("sluice.temporary") == "true", name
    for name in ("published", "report"):
        assert "sluice.temporary" not in DeltaTable(str(tables / name)).metadata().configuration, name

    # Marked in the event log's flow definitions.
    events = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    definitions = {}
    for e in events:
        if e["event_type"] == "flow_definition":
            definition = json.loads(e["details"])["flow_definition"]
            definitions[definition["output_dataset"]] = definition
    assert {d for d, f in definitions.items() if f.get("temporary")} == {"staged", "per_key", "big_keys"}
    assert set(definitions) == {"staged", "published", "per_key", "big_keys", "report"}

    # Not published: catalog and status leave them out unless --all.
    catalog = json_of("catalog", pipe, "--format", "json")
    assert sorted(d["name"] for d in catalog["datasets"]) == ["published", "report"]
    everything = json_of("catalog", pipe, "--format", "json", "--all")
    assert {d["name"]: d["temporary"] for d in everything["datasets"]} == {
        "staged": True, "published": False, "per_key": True, "big_keys": True, "report": False}
    text = run_sluice("catalog", pipe)
    # Left out as datasets; a published table's inputs and lineage still name what it reads.
    assert text.returncode == 0 and "staged (" not in text.stdout and "report (materialized view)" in text.stdout
    text_all = run_sluice("catalog", pipe, "--all")
    assert "staged (temporary streaming table)" in text_all.stdout

    status = json_of("status", pipe, "--format", "json")
    assert sorted(r["name"] for r in status["datasets"]) == ["published", "report"]
    assert status["temporary_omitted"] == 3 and status["healthy"]
    status_all = json_of("status", pipe, "--format", "json", "--all")
    assert sorted(r["name"] for r in status_all["datasets"] if r["temporary"]) == ["big_keys", "per_key", "staged"]
    assert "temporary_omitted" not in status_all
    table = run_sluice("status", pipe)
    assert "3 temporary table(s) not shown" in table.stdout and "\nstaged " not in table.stdout

    # The server is the operator's view: every dataset, temporary ones flagged (its graph needs them).
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, body = get(url + "/api/datasets")
        assert code == 200
        served = {r["name"]: r.get("temporary") for r in json.loads(body)["datasets"]}
        assert served == {"staged": True, "published": False, "per_key": True, "big_keys": True, "report": False}
    finally:
        stop(proc)


def test_a_table_property_cannot_contradict_temporary(tmp_path, bootstrap):
    pipe = kafka_pipeline(tmp_path, "temp_bad", bootstrap)
    (pipe / "a.sql").write_text("CREATE OR REFRESH STREAMING TABLE s AS SELECT * FROM STREAM read_kafka(topic => 'x');\n"
                                "CREATE MATERIALIZED VIEW m TBLPROPERTIES ('sluice.temporary' = 'maybe') "
                                "AS SELECT * FROM s;\n")
    result = run_sluice("validate", pipe)
    assert result.returncode != 0
    assert "a.sql:2:26: error: table 'm'" in result.stderr and "'sluice.temporary' is 'true'" in result.stderr \
        and "not 'maybe'" in result.stderr


def test_pipeline_yaml_cannot_publish_a_table_declared_temporary(tmp_path, bootstrap):
    # pipeline.yaml's properties win over the statement's: a 'false' there would have silently
    # published a table its statement declares TEMPORARY (session 23 review). 'true' is harmless.
    for value, refused in (("false", True), ("true", False)):
        pipe = kafka_pipeline(tmp_path / value, "temp_yaml", bootstrap,
                              extra=f"tables:\n  m:\n    properties: {{sluice.temporary: \"{value}\"}}\n")
        (pipe / "a.sql").write_text(
            "CREATE OR REFRESH STREAMING TABLE s AS SELECT * FROM STREAM read_kafka(topic => 'x');\n"
            "CREATE TEMPORARY MATERIALIZED VIEW m AS SELECT * FROM s;\n")
        result = run_sluice("validate", pipe)
        if refused:
            assert result.returncode != 0
            assert "pipeline.yaml" in result.stderr and "declared TEMPORARY" in result.stderr \
                and "'sluice.temporary' to 'false'" in result.stderr, result.stderr
        else:
            assert result.returncode == 0, result.stderr
