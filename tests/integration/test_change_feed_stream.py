"""A pipeline reading another table's change data feed: a streaming table FROM STREAM
table_changes('bronze', 0) and a materialized view over table_changes('bronze', 0), while
deltalake deletes and updates bronze's rows between runs (writing cdc files). Oracle:
deltalake's load_cdf of bronze; a crash before the change stream's commit, then a rerun, must
leave every change in it exactly once."""
import collections

import pyarrow as pa
from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE bronze TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')
AS SELECT e.id, e.v FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, v BIGINT') AS e
  FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
CREATE OR REFRESH STREAMING TABLE changes
AS SELECT id, v, _change_type, _commit_version FROM STREAM table_changes('bronze', 0);
CREATE OR REFRESH MATERIALIZED VIEW change_counts
AS SELECT _change_type, count(*) AS n FROM table_changes('bronze', 0) GROUP BY _change_type;
"""
COLUMNS = ["id", "v", "_change_type", "_commit_version"]


def table(pipe, name):
    return pa.table(DeltaTable(str(pipe / "data" / "tables" / name)).to_pyarrow_table())


def multiset(t):
    return collections.Counter(zip(*(t.column(c).to_pylist() for c in COLUMNS)))


def bronze_feed(pipe):
    """The oracle: deltalake's change feed of bronze."""
    reader = DeltaTable(str(pipe / "data" / "tables" / "bronze")).load_cdf(starting_version=0)
    return pa.table(reader.read_all())


def run(pipe, **env):
    r = run_sluice("run", pipe, "--once", env_extra=env or None)
    return r


def test_change_stream_reads_every_change_once_across_a_crash(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "cdf", bootstrap)
    (pipe / "tables.sql").write_text(SQL.format(topic=topic))
    produce_values(bootstrap, topic, [{"id": i, "v": i * 10} for i in range(10)])
    r = run(pipe)
    assert r.returncode == 0, r.stderr
    assert multiset(table(pipe, "changes")) == multiset(bronze_feed(pipe))
    assert len(table(pipe, "changes")) == 10

    # Another writer changes bronze: a delete and an update (cdc files), then more events.
    bronze = DeltaTable(str(pipe / "data" / "tables" / "bronze"))
    bronze.delete("id < 3")
    DeltaTable(str(pipe / "data" / "tables" / "bronze")).update(updates={"v": "v + 1"}, predicate="id = 5")
    produce_values(bootstrap, topic, [{"id": i, "v": i * 10} for i in range(10, 15)])
    # Dies after writing the changes' rows, before committing them with the progress.
    r = run(pipe, SLUICE_FAILPOINT="before_change_feed_commit")
    assert r.returncode == 137, r.stderr
    r = run(pipe)
    assert r.returncode == 0, r.stderr
    ours, oracle = multiset(table(pipe, "changes")), multiset(bronze_feed(pipe))
    assert ours == oracle
    kinds = collections.Counter(kind for (_, _, kind, _) in ours.elements())
    assert kinds == {"insert": 15, "delete": 3, "update_preimage": 1, "update_postimage": 1}

    counts = dict(zip(*(table(pipe, "change_counts").column(c).to_pylist() for c in ("_change_type", "n"))))
    assert counts == dict(kinds)
    # Nothing new: a rerun adds no change.
    r = run(pipe)
    assert r.returncode == 0, r.stderr
    assert multiset(table(pipe, "changes")) == oracle


def test_a_stream_with_an_end_is_refused(tmp_path, bootstrap, new_topic):
    pipe = kafka_pipeline(tmp_path, "end", bootstrap)
    (pipe / "tables.sql").write_text(SQL.format(topic="x").replace("table_changes('bronze', 0);",
                                                                   "table_changes('bronze', 0, 5);", 1))
    r = run_sluice("validate", pipe)
    assert r.returncode != 0
    assert "STREAM table_changes('bronze', ...) has an end ('5')" in r.stderr


def test_a_start_timestamp_after_the_latest_commit_waits_for_the_next_version(tmp_path, bootstrap, new_topic):
    """As Spark's streaming readChangeFeed with a startingTimestamp after the latest commit: the
    stream starts at the next version (whatever its commit time), not an error."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "future", bootstrap)
    (pipe / "tables.sql").write_text(SQL.format(topic=topic).replace(
        "STREAM table_changes('bronze', 0)", "STREAM table_changes('bronze', '2099-01-01 00:00:00')"))
    produce_values(bootstrap, topic, [{"id": i, "v": i} for i in range(5)])
    r = run(pipe)
    assert r.returncode == 0, r.stderr
    assert len(table(pipe, "changes")) == 0
    seen = DeltaTable(str(pipe / "data" / "tables" / "bronze")).version()
    produce_values(bootstrap, topic, [{"id": i, "v": i} for i in range(5, 8)])
    r = run(pipe)
    assert r.returncode == 0, r.stderr
    later = DeltaTable(str(pipe / "data" / "tables" / "bronze")).load_cdf(starting_version=seen + 1)
    assert multiset(table(pipe, "changes")) == multiset(pa.table(later.read_all()))
    assert sorted(table(pipe, "changes").column("id").to_pylist()) == [5, 6, 7]
