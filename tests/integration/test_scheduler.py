"""The update's scheduler: independent branches of the graph run at the same time, and a
failing flow fails its downstream, not its siblings; the event log says why."""
from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

BRANCH = """
CREATE OR REFRESH STREAMING TABLE {b}_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE OR REFRESH STREAMING TABLE {b}_silver (
  CONSTRAINT small EXPECT (n < {limit}) ON VIOLATION FAIL UPDATE
) AS SELECT e.n FROM (SELECT from_json(CAST(value AS STRING), 'n BIGINT') AS e FROM STREAM({b}_bronze));
CREATE OR REFRESH MATERIALIZED VIEW {b}_gold AS SELECT count(*) AS c FROM {b}_silver;
"""


def events_of(pipe):
    import json
    r = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_failing_branch_skips_its_downstream_not_its_sibling(tmp_path, bootstrap, new_topic):
    good, bad = new_topic(1), new_topic(1)
    pipe = kafka_pipeline(tmp_path, "sched", bootstrap)
    (pipe / "good.sql").write_text(BRANCH.format(b="good", topic=good, limit=10**9))
    (pipe / "bad.sql").write_text(BRANCH.format(b="bad", topic=bad, limit=5))
    produce_values(bootstrap, good, [{"n": i} for i in range(100)])
    produce_values(bootstrap, bad, [{"n": i} for i in range(100)])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 1
    assert "expectation 'small' of table 'bad_silver'" in r.stderr, r.stderr
    assert "bad_gold" in r.stderr and "skipped because its input 'bad_silver' failed" in r.stderr

    tables = pipe / "data" / "tables"
    # The sibling branch ran to the end.
    assert DeltaTable(str(tables / "good_gold")).to_pyarrow_table().to_pylist() == [{"c": 100}]
    assert DeltaTable(str(tables / "bad_bronze")).to_pyarrow_table().num_rows == 100
    assert not (tables / "bad_silver").exists() and not (tables / "bad_gold").exists()

    status = {e["dataset"]: e["details"]["flow_progress"] for e in events_of(pipe)}
    assert status["good_gold"]["status"] == "COMPLETED"
    assert status["bad_silver"]["status"] == "FAILED"
    assert "small" in status["bad_silver"]["error"]["message"]
    stack = status["bad_silver"]["error"]["exceptions"][0]["stack"]
    assert stack[:3] == ["pipeline 'sched'", "dataset 'bad_silver' (streaming table)", "flow 'bad_silver'"]
    assert status["bad_gold"]["status"] == "SKIPPED"
    assert status["bad_gold"]["upstream"] == "bad_silver"


def test_independent_branches_run_at_the_same_time(tmp_path, bootstrap, new_topic):
    a, b = new_topic(2), new_topic(2)
    pipe = kafka_pipeline(tmp_path, "par", bootstrap)
    (pipe / "a.sql").write_text(BRANCH.format(b="a", topic=a, limit=10**12))
    (pipe / "b.sql").write_text(BRANCH.format(b="b", topic=b, limit=10**12))
    n = 300_000
    produce_values(bootstrap, a, [b'{"n": %d}' % i for i in range(n)], partitions=2)
    produce_values(bootstrap, b, [b'{"n": %d}' % i for i in range(n)], partitions=2)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    progress = {e["dataset"]: e["details"]["flow_progress"] for e in events_of(pipe)}
    span = {d: (p["start_time_ms"], p["end_time_ms"]) for d, p in progress.items()}
    # The two bronze flows (the long ones) overlap in time; each silver takes its bronze's rows
    # in process (commit_channel.h), so it starts with its bronze and ends after it.
    (a0, a1), (b0, b1) = span["a_bronze"], span["b_bronze"]
    assert a0 < b1 and b0 < a1, span
    assert span["a_silver"][0] >= a0 and span["b_silver"][0] >= b0
    assert span["a_silver"][1] >= a1 and span["b_silver"][1] >= b1
    assert span["a_gold"][0] >= span["a_silver"][1]
    for t in ("a_gold", "b_gold"):
        assert DeltaTable(str(pipe / "data" / "tables" / t)).to_pyarrow_table().to_pylist() == [{"c": n}]
