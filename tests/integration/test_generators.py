"""Generators end to end: explode / posexplode / LATERAL VIEW in streaming tables fed from Kafka
(two updates, so each record is expanded once, never again) and in a materialized view that
aggregates a LATERAL VIEW's rows, checked against a plain Python model of Spark's semantics."""
from collections import defaultdict

from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SCHEMA = "id BIGINT, tags ARRAY<STRING>, attrs MAP<STRING, INT>"


def events(first, n):
    """Arrays with NULLs, empty and absent ones, Unicode; maps with NULL values."""
    out = []
    for i in range(first, first + n):
        tags = [None, [], ["a"], ["b", None, "ü✓"], ["a", "a", ""]][i % 5]
        attrs = [{"x": i}, {}, None, {"y": None, "x": 1}, {"日本": -i}][i % 5]
        e = {"id": i}
        if tags is not None:
            e["tags"] = tags
        if attrs is not None:
            e["attrs"] = attrs
        out.append(e)
    return out


def model(evts):
    """Spark's LATERAL VIEW OUTER posexplode(tags), explode(attrs) and the grouped view."""
    tags, attrs, totals = [], [], defaultdict(lambda: [0, None])
    for e in evts:
        t = e.get("tags")
        if not t:
            tags.append((e["id"], None, None))
        tags += [(e["id"], p, v) for p, v in enumerate(t or [])]
        for k, v in (e.get("attrs") or {}).items():
            attrs.append((e["id"], k, v))
            totals[k][0] += 1
            if v is not None:
                totals[k][1] = (totals[k][1] or 0) + v
    return sorted(tags, key=repr), sorted(attrs, key=repr), {k: tuple(v) for k, v in totals.items()}


def rows(path, *columns):
    table = DeltaTable(str(path)).to_pyarrow_table()
    return sorted(zip(*(table.column(c).to_pylist() for c in columns)), key=repr)


def test_generators_in_streaming_tables_and_a_view_match_a_model(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "gen", bootstrap)
    (pipe / "gen.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE parsed AS
SELECT e.id AS id, e.tags AS tags, e.attrs AS attrs FROM (
  SELECT from_json(CAST(value AS STRING), '{SCHEMA}') AS e
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));

CREATE OR REFRESH STREAMING TABLE tag_rows AS
SELECT id, t.pos, t.tag FROM STREAM(parsed) LATERAL VIEW OUTER posexplode(tags) t AS pos, tag;

CREATE OR REFRESH STREAMING TABLE attr_rows AS
SELECT id, explode(attrs) AS (k, v) FROM STREAM(parsed);

CREATE OR REFRESH MATERIALIZED VIEW attr_totals AS
SELECT k, count(*) AS n, sum(v) AS total FROM parsed LATERAL VIEW explode(attrs) a AS k, v GROUP BY k;
""")
    tables = pipe / "data" / "tables"
    sent = []
    for first, n in ((0, 23), (23, 17)):
        batch = events(first, n)
        produce_values(bootstrap, topic, batch, partitions=2)
        sent += batch
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        tags, attrs, totals = model(sent)
        assert rows(tables / "tag_rows", "id", "pos", "tag") == tags
        assert rows(tables / "attr_rows", "id", "k", "v") == attrs
        got = {k: (n, t) for k, n, t in rows(tables / "attr_totals", "k", "n", "total")}
        assert got == totals


def test_a_nested_or_second_generator_is_refused_where_written(tmp_path):
    pipe = kafka_pipeline(tmp_path, "gen", "127.0.0.1:1")
    (pipe / "gen.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => 't');\n"
        "CREATE OR REFRESH MATERIALIZED VIEW two AS\n"
        "SELECT explode(headers), explode(headers) FROM raw;\n")
    result = run_sluice("validate", pipe)
    assert result.returncode != 0
    assert "gen.sql:3:26: error: only one generator is allowed per SELECT" in result.stderr, result.stderr
    (pipe / "gen.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => 't');\n"
        "CREATE OR REFRESH MATERIALIZED VIEW nested AS SELECT size(explode(headers)) FROM raw;\n")
    result = run_sluice("validate", pipe)
    assert result.returncode != 0
    assert "gen.sql:2:59: error: explode is a generator" in result.stderr, result.stderr
