"""Incremental materialized views: a GROUP BY with mergeable aggregates over an append-only
streaming table is refreshed from the files added since the last refresh, merged with stored
partial aggregates; the result equals DuckDB over the raw rows at every update, and the event
log says which refresh was used and why."""
import json
import math
import random

import duckdb
from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE events
TBLPROPERTIES ('pipelines.reset.allowed' = 'true')
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                         value_schema => 'k STRING, v BIGINT, x DOUBLE');

CREATE OR REFRESH MATERIALIZED VIEW by_key
AS SELECT upper(k) AS key, count(*) AS n, count(v) AS nv, sum(v) AS total, min(v) AS lo, max(x) AS hi,
          avg(x) AS mean
   FROM events WHERE v IS NULL OR v <> 3 GROUP BY upper(k) HAVING count(*) > 1 ORDER BY n DESC, key LIMIT 1000;

CREATE OR REFRESH MATERIALIZED VIEW distinct_by_key
AS SELECT k, count(DISTINCT v) AS d FROM events GROUP BY k;
"""

ORACLE_BY_KEY = """
SELECT upper(k) AS key, count(*) AS n, count(v) AS nv, sum(v) AS total, min(v) AS lo, max(x) AS hi, avg(x) AS mean
FROM raw WHERE v IS NULL OR v <> 3 GROUP BY upper(k) HAVING count(*) > 1 ORDER BY n DESC, key NULLS FIRST LIMIT 1000
"""


def events(rng, n):
    out = []
    for _ in range(n):
        out.append({"k": rng.choice(["a", "b", "c", "d", "e", "f", None]),
                    "v": None if rng.random() < 0.1 else rng.randrange(0, 10),
                    "x": None if rng.random() < 0.1 else rng.randrange(0, 40) / 4})
    return out


def table(pipe, name):
    return DeltaTable(str(pipe / "data" / "tables" / name)).to_pyarrow_table().to_pylist()


def check_against_duckdb(pipe, produced):
    con = duckdb.connect()
    con.execute("CREATE TABLE raw (k VARCHAR, v BIGINT, x DOUBLE)")
    con.executemany("INSERT INTO raw VALUES (?, ?, ?)", [(e["k"], e["v"], e["x"]) for e in produced])
    expected = [tuple(r) for r in con.execute(ORACLE_BY_KEY).fetchall()]
    got = [(r["key"], r["n"], r["nv"], r["total"], r["lo"], r["hi"], r["mean"]) for r in table(pipe, "by_key")]
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g[:6] == e[:6]
        assert (g[6] is None and e[6] is None) or abs(g[6] - e[6]) < 1e-9
    expected_d = sorted(con.execute("SELECT k, count(DISTINCT v) FROM raw GROUP BY k").fetchall(),
                        key=lambda r: (r[0] is None, r[0] or ""))
    got_d = sorted(((r["k"], r["d"]) for r in table(pipe, "distinct_by_key")), key=lambda r: (r[0] is None, r[0] or ""))
    assert got_d == expected_d


def refreshes(pipe, dataset):
    out = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert out.returncode == 0, out.stderr
    found = []
    for e in map(json.loads, out.stdout.splitlines()):
        progress = e["details"].get("flow_progress", {})
        if e["dataset"] == dataset and "refresh" in progress:
            found.append((e["sequence"] if "sequence" in e else 0, e["timestamp"], progress["refresh"]))
    return [r for _, _, r in sorted(found, key=lambda f: (f[1], f[0]))]


def test_incremental_view_equals_full_recompute_over_updates(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "incmv", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    rng = random.Random(7)
    produced = []
    for update in range(4):
        batch = events(rng, 300 + 100 * update)
        produce_values(bootstrap, topic, batch, partitions=2)
        produced += batch
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
        check_against_duckdb(pipe, produced)

    modes = refreshes(pipe, "by_key")
    assert [m["mode"] for m in modes] == ["full", "incremental", "incremental", "incremental"], modes
    assert modes[0]["reason"] == "first refresh"
    assert "only appended" in modes[1]["reason"]
    for m in refreshes(pipe, "distinct_by_key"):
        assert m == {"mode": "full", "reason": "count(DISTINCT) does not merge from partial aggregates"}

    # A full refresh of the input removes its files: the view is recomputed, and says why.
    batch = events(rng, 200)
    produce_values(bootstrap, topic, batch, partitions=2)
    produced += batch
    r = run_sluice("run", pipe, "--once", "--full-refresh", "events")
    assert r.returncode == 0, r.stderr
    check_against_duckdb(pipe, produced)
    last = refreshes(pipe, "by_key")[-1]
    assert last["mode"] == "full" and "did not only append" in last["reason"], last

    # ... and the next update is incremental again.
    batch = events(rng, 150)
    produce_values(bootstrap, topic, batch, partitions=2)
    produced += batch
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    check_against_duckdb(pipe, produced)
    assert refreshes(pipe, "by_key")[-1]["mode"] == "incremental"

    # An update with nothing new keeps the view as it is, committing nothing (issue 15).
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    check_against_duckdb(pipe, produced)
    assert refreshes(pipe, "by_key")[-1]["mode"] == "none"


IDLE_SQL = """
CREATE OR REFRESH STREAMING TABLE events
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'k STRING, v BIGINT');

CREATE OR REFRESH MATERIALIZED VIEW sums AS SELECT k, sum(v) AS total FROM events GROUP BY k;

CREATE OR REFRESH MATERIALIZED VIEW distinct_vs AS SELECT k, count(DISTINCT v) AS d FROM events GROUP BY k;
"""


def test_view_whose_inputs_did_not_change_commits_nothing(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "idlemv", bootstrap)
    (pipe / "p.sql").write_text(IDLE_SQL.format(topic=topic))
    produce_values(bootstrap, topic, [{"k": "a", "v": 1}, {"k": "b", "v": 2}])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    tables = pipe / "data" / "tables"
    versions = {v: DeltaTable(str(tables / v)).version() for v in ("sums", "distinct_vs")}

    for _ in range(2):  # no new input: no new version of either view, and the update says why
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
        assert {v: DeltaTable(str(tables / v)).version() for v in versions} == versions
        for view in versions:
            last = refreshes(pipe, view)[-1]
            assert last["mode"] == "none" and "no input changed" in last["reason"], last
        assert "up to date: no input changed" in r.stdout, r.stdout

    produce_values(bootstrap, topic, [{"k": "a", "v": 5}])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    assert {v: DeltaTable(str(tables / v)).version() for v in versions} == {v: n + 1 for v, n in versions.items()}
    assert sorted((r["k"], r["total"]) for r in table(pipe, "sums")) == [("a", 6), ("b", 2)]
    assert sorted((r["k"], r["d"]) for r in table(pipe, "distinct_vs")) == [("a", 2), ("b", 1)]


def test_view_reading_a_view_of_another_file_is_refreshed_when_that_view_changes(tmp_path, bootstrap, new_topic):
    """A pipeline view is inlined where it is read: an edit to it (in another file) changes the
    materialized view's result though no input table moved, so it must not count as up to date
    (review finding: only the view's own file was fingerprinted)."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "idleview", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE events
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'k STRING, v BIGINT');
CREATE OR REFRESH MATERIALIZED VIEW big_sums AS SELECT k, sum(v) AS total FROM big GROUP BY k;
""")
    views = pipe / "views.sql"
    views.write_text("CREATE TEMPORARY VIEW big AS SELECT k, v FROM events WHERE v > 1;\n")
    produce_values(bootstrap, topic, [{"k": "a", "v": 1}, {"k": "a", "v": 2}, {"k": "b", "v": 3}])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    assert sorted((r["k"], r["total"]) for r in table(pipe, "big_sums")) == [("a", 2), ("b", 3)]
    views.write_text("CREATE TEMPORARY VIEW big AS SELECT k, v FROM events WHERE v > 2;\n")
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    assert sorted((r["k"], r["total"]) for r in table(pipe, "big_sums")) == [("b", 3)]
    assert refreshes(pipe, "big_sums")[-1]["mode"] != "none"


LIST_SQL = """
CREATE OR REFRESH STREAMING TABLE events
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                         value_schema => 'k STRING, v BIGINT, x DOUBLE, s STRING');

CREATE OR REFRESH MATERIALIZED VIEW lists
AS SELECT k, collect_list(s) AS l, collect_set(v) AS st, max_by(x, v) AS hi, min_by(s, x) AS lo,
          percentile_approx(x, 0.5) AS med, approx_percentile(v, array(0.25, 0.75), 100) AS qs
   FROM events GROUP BY k;
"""


def list_events(rng, n):
    return [{"k": rng.choice(["a", "b", "c", None]),
             "v": None if rng.random() < 0.15 else rng.randrange(0, 6),
             "x": None if rng.random() < 0.15 else rng.randrange(-20, 20) / 4,
             "s": None if rng.random() < 0.15 else rng.choice(["", "é", "日本", "z", "ÄÖ"])} for _ in range(n)]


def percentile_model(values, p):
    """The value at rank ceil(p * n) of the sorted non-NULL values (p = 0: the least)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    return values[min(max(math.ceil(p * len(values)), 1), len(values)) - 1]


def check_lists(pipe, produced):
    got = {r["k"]: r for r in table(pipe, "lists")}
    assert set(got) == {e["k"] for e in produced}
    for k, r in got.items():
        rows = [e for e in produced if e["k"] == k]
        assert sorted(r["l"]) == sorted(e["s"] for e in rows if e["s"] is not None)
        assert sorted(r["st"]) == sorted({e["v"] for e in rows if e["v"] is not None})
        with_v = [e for e in rows if e["v"] is not None]
        # max_by with ties: the x of some row whose v is the greatest (Spark's is nondeterministic too).
        assert (r["hi"] is None) if not with_v else r["hi"] in {e["x"] for e in with_v
                                                                if e["v"] == max(w["v"] for w in with_v)}
        with_x = [e for e in rows if e["x"] is not None]
        assert (r["lo"] is None) if not with_x else r["lo"] in {e["s"] for e in with_x
                                                                if e["x"] == min(w["x"] for w in with_x)}
        assert r["med"] == percentile_model([e["x"] for e in rows], 0.5)
        want = [percentile_model([e["v"] for e in rows], p) for p in (0.25, 0.75)]
        assert r["qs"] == (None if want[0] is None else want)


def test_list_aggregates_refresh_fully_and_match_a_python_model(tmp_path, bootstrap, new_topic):
    """collect_list, collect_set, max_by, min_by, percentile_approx / approx_percentile in a
    materialized view: equal to a Python model after each update; their partials do not merge,
    so each refresh after the first is full and the event log says why."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "listmv", bootstrap)
    (pipe / "p.sql").write_text(LIST_SQL.format(topic=topic))
    rng = random.Random(11)
    produced = []
    for update in range(2):
        batch = list_events(rng, 60)
        produce_values(bootstrap, topic, batch)
        produced += batch
        r = run_sluice("run", pipe, "--once")
        assert r.returncode == 0, r.stderr
        check_lists(pipe, produced)
    assert refreshes(pipe, "lists") == [{"mode": "full", "reason": "collect_list keeps every row of a group (no "
                                                                   "partial aggregate to merge)"}] * 2
