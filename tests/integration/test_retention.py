"""Retention policies (`pipelines.retention` + `pipelines.retention.column`): after each update a
streaming table loses the rows older than its window, by whole-file removes where the files lie
entirely before the cut-off (a metadata-only DELETE) and by rewriting the rest; downstream
streaming readers skip those commits, so a gold table keeps what bronze expired, and the next run
appends without reading anything twice. The time retention measures from is fixed with
SLUICE_RETENTION_NOW, so nothing depends on the clock. Readers: deltalake, DuckDB, Spark."""
import datetime as dt
import json
import re
from collections import Counter

import pytest
from deltalake import DeltaTable

from conftest import duckdb_connection, run_sluice, write_pipeline
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

UTC = dt.timezone.utc
NOW1 = dt.datetime(2026, 12, 6, 0, 0, tzinfo=UTC)
NOW2 = NOW1 + dt.timedelta(hours=30)  # 2026-12-07 06:00
HOUR = dt.timedelta(hours=1)

SQL = """
CREATE OR REFRESH STREAMING TABLE bronze
PARTITIONED BY (event_date)
TBLPROPERTIES ('pipelines.retention' = '2 days', 'pipelines.retention.column' = 'ts',
               'delta.enableChangeDataFeed' = 'true')
AS SELECT e.id AS id, e.ts AS ts, CAST(e.ts AS DATE) AS event_date, e.amount AS amount
FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, ts TIMESTAMP, amount DOUBLE') AS e
      FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));

CREATE OR REFRESH STREAMING TABLE recent
TBLPROPERTIES ('pipelines.retention' = 'interval 36 hours', 'pipelines.retention.column' = 'TS')
AS SELECT id, ts, amount FROM STREAM(bronze);

CREATE OR REFRESH STREAMING TABLE feed
AS SELECT id, _change_type FROM STREAM table_changes('bronze', 0);

CREATE OR REFRESH STREAMING TABLE gold
TBLPROPERTIES ('pipelines.retention' = '30 days', 'pipelines.retention.column' = 'day')
AS SELECT window.start AS day, count(*) AS n, sum(amount) AS total
FROM STREAM(bronze) WATERMARK ts DELAY OF INTERVAL 1 HOUR
GROUP BY window(ts, '1 day');
"""


def events(first_id, start, count, step=2 * HOUR):
    return [{"id": first_id + i, "ts": start + i * step, "amount": float(first_id + i)} for i in range(count)]


# Run 1: every two hours from 2026-11-30 12:00 to 2026-12-05 22:00; run 2: 2026-12-06 00:00 to
# 2026-12-07 04:00 (newer than everything before, so the gold windows have no late rows).
RUN1 = events(0, NOW1 - dt.timedelta(hours=132), 66)
RUN2 = events(1000, NOW1, 15)


def as_json(e):
    return {"id": e["id"], "ts": e["ts"].strftime("%Y-%m-%d %H:%M:%S"), "amount": e["amount"]}


def cutoff(now, hours):
    """now - duration floored to the hour (durations of a day and more)."""
    c = now - dt.timedelta(hours=hours)
    return c.replace(minute=0, second=0, microsecond=0)


def table(pipe, name):
    return pipe / "data" / "tables" / name


def ids(rows):
    return sorted(r["id"] for r in rows)


def commits(path):
    """Every commit of the table: (version, actions)."""
    out = []
    for f in sorted((path / "_delta_log").glob("*.json")):
        out.append((int(f.stem), [json.loads(line) for line in f.read_text().splitlines() if line]))
    return out


def commit_info(actions):
    return next(a["commitInfo"] for a in actions if "commitInfo" in a)


def retention_commits(path):
    return [(v, a) for v, a in commits(path)
            if "sluice.retention" in commit_info(a).get("operationParameters", {})]


def flow_progress(pipe, dataset):
    r = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert r.returncode == 0, r.stderr
    return [e["details"]["flow_progress"] for e in map(json.loads, r.stdout.splitlines()) if e["dataset"] == dataset]


def daily(evts, watermark):
    """Closed daily windows of `evts` (count, sum): a window is written once the watermark
    (max event time - 1 hour) reaches its end."""
    out = {}
    for e in evts:
        day = e["ts"].replace(hour=0, minute=0, second=0, microsecond=0)
        n, s = out.get(day, (0, 0.0))
        out[day] = (n + 1, s + e["amount"])
    return {d: v for d, v in out.items() if d + dt.timedelta(days=1) <= watermark}


def run(pipe, now):
    r = run_sluice("run", pipe, "--once", env_extra={"SLUICE_RETENTION_NOW": now.strftime("%Y-%m-%d %H:%M:%S")})
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def retained(tmp_path_factory, bootstrap):
    """The pipeline after run 1 (at NOW1) and run 2 (at NOW2, with newer events), with what each
    table looked like after run 1."""
    from confluent_kafka.admin import AdminClient, NewTopic

    tmp = tmp_path_factory.mktemp("retention")
    topic = "retention-" + tmp.name.replace("_", "-")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    while True:  # as conftest's new_topic: until the partition has a leader in the metadata
        meta = admin.list_topics(topic=topic, timeout=10).topics.get(topic)
        if meta is not None and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()):
            break
    pipe = kafka_pipeline(tmp, "retention", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    produce_values(bootstrap, topic, [as_json(e) for e in RUN1])
    run(pipe, NOW1)
    after1 = {name: DeltaTable(str(table(pipe, name))).to_pyarrow_table().to_pylist()
              for name in ("bronze", "recent", "gold")}
    versions1 = {name: DeltaTable(str(table(pipe, name))).version() for name in ("bronze", "recent", "gold")}
    produce_values(bootstrap, topic, [as_json(e) for e in RUN2])
    run(pipe, NOW2)
    return {"pipe": pipe, "after1": after1, "versions1": versions1}


def test_bronze_keeps_only_its_window(retained):
    pipe = retained["pipe"]
    first = [e for e in RUN1 if e["ts"] >= cutoff(NOW1, 48)]
    assert ids(retained["after1"]["bronze"]) == ids(first)
    want = ids(e for e in RUN1 + RUN2 if e["ts"] >= cutoff(NOW2, 48))
    assert ids(DeltaTable(str(table(pipe, "bronze"))).to_pyarrow_table().to_pylist()) == want
    con = duckdb_connection()
    got = con.sql(f"SELECT id FROM delta_scan('{table(pipe, 'bronze')}') ORDER BY id").fetchall()
    assert [r[0] for r in got] == want


def test_whole_partitions_go_without_a_new_data_file(retained):
    """Run 1's cut-off (2026-12-04 00:00) is a day boundary: every expired file lies wholly before
    it, so the DELETE only removes files. Run 2's (2026-12-05 06:00) splits a day: that day's
    file is rewritten with its younger rows."""
    pipe = retained["pipe"]
    (v1, first), (v2, second) = retention_commits(table(pipe, "bronze"))
    assert v1 <= retained["versions1"]["bronze"] < v2
    assert not [a for a in first if "add" in a]
    removed = sorted({a["remove"]["partitionValues"]["event_date"] for a in first if "remove" in a})
    assert removed == ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03"]
    info = commit_info(first)
    assert info["operation"] == "DELETE"
    assert info["operationParameters"]["sluice.retention"] == "2 days"
    assert info["operationParameters"]["sluice.retention.cutoff"] == "TIMESTAMP '2026-12-04 00:00:00.000'"
    assert json.loads(info["operationParameters"]["predicate"]) == ["(ts < TIMESTAMP '2026-12-04 00:00:00.000')"]
    assert info["operationMetrics"]["numDeletedRows"] == str(sum(e["ts"] < cutoff(NOW1, 48) for e in RUN1))
    added = [a["add"] for a in second if "add" in a]
    assert {a["partitionValues"]["event_date"] for a in added} == {"2026-12-05"}
    assert {a["remove"]["partitionValues"]["event_date"] for a in second if "remove" in a} == {"2026-12-04", "2026-12-05"}
    # The retention commit records what happened in the update's flow_progress event.
    progress = flow_progress(pipe, "bronze")
    assert [p["retention"]["table_version"] for p in progress if p["retention"]["committed"]] == [v1, v2]


def test_downstream_stream_skips_the_deletes_and_reads_nothing_twice(retained):
    pipe = retained["pipe"]
    # Run 1 read bronze's snapshot (as a new stream does), then expired its own 36 hours.
    assert ids(retained["after1"]["recent"]) == ids(e for e in RUN1 if e["ts"] >= cutoff(NOW1, 36))
    want = ids(e for e in RUN1 + RUN2 if e["ts"] >= cutoff(NOW2, 36))
    assert ids(DeltaTable(str(table(pipe, "recent"))).to_pyarrow_table().to_pylist()) == want
    # Run 2 read only bronze's new rows: not the file bronze's retention wrote back.
    progress = flow_progress(pipe, "recent")
    assert progress[-1]["metrics"]["num_input_rows"] == len(RUN2)
    assert progress[-1]["retention"]["num_added_files"] >= 1  # its own window split a file


def test_a_change_feed_stream_sees_no_retention_deletes(retained):
    """STREAM table_changes(bronze): every event once as an insert; the expiry is not a change
    downstream (a batch read of the feed still shows it: Delta records it)."""
    rows = DeltaTable(str(table(retained["pipe"], "feed"))).to_pyarrow_table().to_pylist()
    assert ids(rows) == ids(RUN1 + RUN2)
    assert {r["_change_type"] for r in rows} == {"insert"}
    second = retention_commits(table(retained["pipe"], "bronze"))[1][1]
    assert [a for a in second if "cdc" in a], "the split day's deleted rows go to _change_data"


def test_gold_keeps_the_aggregates_of_expired_rows(retained):
    pipe = retained["pipe"]
    rows = DeltaTable(str(table(pipe, "gold"))).to_pyarrow_table().to_pylist()
    got = Counter()
    for r in rows:
        got[r["day"]] += 1
    assert all(n == 1 for n in got.values()), "a window written twice"
    result = {r["day"]: (r["n"], r["total"]) for r in rows}
    watermark = max(e["ts"] for e in RUN1 + RUN2) - HOUR
    assert result == daily(RUN1 + RUN2, watermark)
    assert min(result) < cutoff(NOW2, 48)  # days bronze no longer holds
    assert retention_commits(table(pipe, "gold")) == []  # nothing expired: no commit


def test_nothing_expired_makes_no_commit(retained):
    pipe = retained["pipe"]
    names = ("bronze", "recent", "gold")
    before = {n: len(retention_commits(table(pipe, n))) for n in names}
    run(pipe, NOW2 + dt.timedelta(minutes=59))  # the same hour: the cut-offs do not move
    assert {n: len(retention_commits(table(pipe, n))) for n in names} == before
    for n in names:
        assert flow_progress(pipe, n)[-1]["retention"]["committed"] is False


@pytest.mark.slow
def test_spark_reads_the_tables_and_shows_the_deletes(retained):
    from spark_support import spark_session

    pipe = retained["pipe"]
    spark = spark_session()
    for name in ("bronze", "recent"):
        path = str(table(pipe, name))
        got = sorted(r["id"] for r in spark.read.format("delta").load(path).select("id").collect())
        assert got == ids(DeltaTable(path).to_pyarrow_table().to_pylist())
        history = {r["version"]: r for r in spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()}
        for v, _ in retention_commits(table(pipe, name)):
            assert history[v]["operation"] == "DELETE"
            assert history[v]["operationParameters"]["predicate"].startswith('["(ts < TIMESTAMP')


VALIDATE_SQL = """
CREATE OR REFRESH STREAMING TABLE src AS
SELECT CAST(value AS STRING) AS s, timestamp AS ts, CAST(timestamp AS DATE) AS d
FROM STREAM read_kafka(topic => 'events');

CREATE OR REFRESH STREAMING TABLE typo TBLPROPERTIES ('pipelines.retentoin' = '2 days')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE no_column TBLPROPERTIES ('pipelines.retention' = '2 days')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE no_duration TBLPROPERTIES ('pipelines.retention.column' = 'ts')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE bad_duration
TBLPROPERTIES ('pipelines.retention' = '2 parsecs', 'pipelines.retention.column' = 'ts')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE months
TBLPROPERTIES ('pipelines.retention' = '1 month', 'pipelines.retention.column' = 'ts')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE zero
TBLPROPERTIES ('pipelines.retention' = '0 days', 'pipelines.retention.column' = 'ts')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE unknown_column
TBLPROPERTIES ('pipelines.retention' = '2 days', 'pipelines.retention.column' = 'tss')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE wrong_type
TBLPROPERTIES ('pipelines.retention' = '2 days', 'pipelines.retention.column' = 's')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH MATERIALIZED VIEW mv
TBLPROPERTIES ('pipelines.retention' = '2 days', 'pipelines.retention.column' = 'ts')
AS SELECT * FROM src;

CREATE OR REFRESH STREAMING TABLE append_only
TBLPROPERTIES ('pipelines.retention' = '2 days', 'pipelines.retention.column' = 'd', 'delta.appendOnly' = 'true')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE fine
TBLPROPERTIES ('pipelines.retention' = '12 hours', 'pipelines.retention.column' = 'd')
AS SELECT * FROM STREAM(src);

CREATE OR REFRESH STREAMING TABLE from_yaml AS SELECT * FROM STREAM(src);
"""


def test_validate_refuses_bad_policies_naming_where(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: v\nstorage: ./data\nkafka:\n  default: {bootstrap.servers: \"127.0.0.1:1\"}\n"
                                             "tables:\n  from_yaml:\n    properties:\n"
                                             "      pipelines.retention: 3 days\n      pipelines.retention.column: nope\n")
    (pipe / "p.sql").write_text(VALIDATE_SQL)
    r = run_sluice("validate", pipe)
    assert r.returncode != 0
    err = r.stderr + r.stdout
    line_of = {}
    for i, text in enumerate(VALIDATE_SQL.splitlines(), start=1):
        m = re.search(r"(?:STREAMING TABLE|MATERIALIZED VIEW) (\w+)", text)
        if m:
            line_of[m.group(1)] = i
    expected = {
        "typo": "table property 'pipelines.retentoin' is not supported by sluice (did you mean 'pipelines.retention'?)",
        "no_column": "pipelines.retention = '2 days' needs pipelines.retention.column",
        "no_duration": "pipelines.retention.column = 'ts' without pipelines.retention",
        "bad_duration": "pipelines.retention = '2 parsecs' is not a duration",
        "months": "pipelines.retention = '1 month' is not a duration",
        "zero": "pipelines.retention = '0 days' must be longer than zero",
        "unknown_column": "pipelines.retention.column = 'tss' names no column of the table (did you mean 'ts'?)",
        "wrong_type": "pipelines.retention.column = 's' names a column of type STRING",
        "mv": "pipelines.retention applies to streaming tables; 'mv' is a materialized view",
        "append_only": "the table only allows appends (delta.appendOnly = true)",
    }
    for name, message in expected.items():
        assert message in err, (name, err)
        assert re.search(rf"p\.sql:{line_of[name]}:\d+: error: table '{name}': ", err), (name, err)
    assert "pipeline.yaml: tables.from_yaml.properties: table 'from_yaml': pipelines.retention.column = 'nope'" in err, err
    assert "'fine'" not in err and "table 'src'" not in err, err
    assert not (pipe / "data").exists()
