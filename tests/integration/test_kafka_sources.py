"""read_kafka source options against the real broker: topic lists, patterns (a topic created
later is picked up by the next update), startingTimestamp, include_headers."""
import json
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from conftest import run_sluice, write_pipeline


def pipeline(tmp_path, bootstrap, sql):
    pipe = write_pipeline(tmp_path / "pipe", f"name: src\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "p.sql").write_text(sql)
    return pipe


def produce(bootstrap, topic, values, partitions=1, timestamp=None, headers=None):
    producer = Producer({"bootstrap.servers": bootstrap})
    for i, v in enumerate(values):
        kwargs = {"partition": i % partitions}
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        if headers is not None:
            kwargs["headers"] = headers
        producer.produce(topic, value=v.encode(), **kwargs)
    producer.flush(30)


def rows(pipe, table="raw"):
    return DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().to_pylist()


def txn_versions(table):
    """appId -> version of the latest txn action, read straight from the JSON commits."""
    out = {}
    for commit in sorted((table / "_delta_log").glob("*.json")):
        for line in commit.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                out[action["txn"]["appId"]] = action["txn"]["version"]
    return out


def run_once(pipe):
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    return result


def test_topic_list_reads_every_topic_with_progress_per_topic(tmp_path, bootstrap, new_topic):
    a, b = new_topic(2), new_topic(1)
    produce(bootstrap, a, [f"a{i}" for i in range(10)], partitions=2)
    produce(bootstrap, b, [f"b{i}" for i in range(5)])
    pipe = pipeline(tmp_path, bootstrap, f"""
CREATE STREAMING TABLE raw AS SELECT topic, partition, offset, CAST(value AS STRING) AS v
FROM STREAM read_kafka(subscribe => '{a}, {b}');
""")
    run_once(pipe)
    produce(bootstrap, b, [f"b{i}" for i in range(5, 8)])
    run_once(pipe)
    got = rows(pipe)
    assert sorted(r["v"] for r in got) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(8)])
    assert {r["topic"] for r in got} == {a, b}
    txns = txn_versions(pipe / "data" / "tables" / "raw")
    assert txns[f"src/raw/{a}/0"] == 5 and txns[f"src/raw/{a}/1"] == 5
    assert txns[f"src/raw/{b}/0"] == 8


def test_missing_topic_in_a_list_names_the_existing_ones(tmp_path, bootstrap, new_topic):
    a = new_topic(1)
    pipe = pipeline(tmp_path, bootstrap, f"""
CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{a},no-such-topic-x');
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1
    assert "Kafka topic 'no-such-topic-x' does not exist on cluster 'default'; existing topics:" in result.stderr
    assert "pipeline 'src', table 'raw'" in result.stderr


def test_pattern_picks_up_a_topic_created_after_the_first_update(tmp_path, bootstrap):
    prefix = f"pat{int(time.time() * 1000)}"
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def create(name, partitions):
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[name].result(30)

    create(f"{prefix}-one", 2)
    create(f"other{prefix}", 1)  # does not match
    produce(bootstrap, f"{prefix}-one", [f"one{i}" for i in range(6)], partitions=2)
    produce(bootstrap, f"other{prefix}", ["nope"])
    pipe = pipeline(tmp_path, bootstrap, f"""
CREATE STREAMING TABLE raw AS SELECT topic, CAST(value AS STRING) AS v
FROM STREAM read_kafka(subscribePattern => '{prefix}-.*', startingOffsets => 'earliest');
""")
    run_once(pipe)
    assert sorted(r["v"] for r in rows(pipe)) == [f"one{i}" for i in range(6)]
    create(f"{prefix}-two", 3)
    produce(bootstrap, f"{prefix}-two", [f"two{i}" for i in range(9)], partitions=3)
    run_once(pipe)
    got = rows(pipe)
    assert sorted(r["v"] for r in got) == sorted([f"one{i}" for i in range(6)] + [f"two{i}" for i in range(9)])
    run_once(pipe)
    assert len(rows(pipe)) == 15  # exactly once across updates


def test_starting_timestamp_skips_older_records(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    base = 1_700_000_000_000
    produce(bootstrap, topic, [f"old{i}" for i in range(4)], partitions=2, timestamp=base)
    produce(bootstrap, topic, [f"new{i}" for i in range(6)], partitions=2, timestamp=base + 60_000)
    pipe = pipeline(tmp_path, bootstrap, f"""
CREATE STREAMING TABLE raw AS SELECT CAST(value AS STRING) AS v
FROM STREAM read_kafka(topic => '{topic}', startingTimestamp => '{base + 30_000}');
CREATE STREAMING TABLE by_partition AS SELECT partition, CAST(value AS STRING) AS v
FROM STREAM read_kafka(topic => '{topic}',
  startingOffsetsByTimestamp => '{{"{topic}": {{"0": {base + 30_000}, "1": {base}}}}}');
""")
    run_once(pipe)
    assert sorted(r["v"] for r in rows(pipe)) == sorted(f"new{i}" for i in range(6))
    got = sorted((r["partition"], r["v"]) for r in rows(pipe, "by_partition"))
    assert got == sorted([(0, f"new{i}") for i in (0, 2, 4)] + [(1, "old1"), (1, "old3")] +
                         [(1, f"new{i}") for i in (1, 3, 5)])


def test_include_headers_false_drops_the_headers_column(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce(bootstrap, topic, ["x", "y"], headers=[("h", b"1")])
    pipe = pipeline(tmp_path, bootstrap, f"""
CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}', includeHeaders => 'false');
CREATE STREAMING TABLE with_headers AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
""")
    run_once(pipe)
    schema = DeltaTable(str(pipe / "data" / "tables" / "raw")).to_pyarrow_table().schema
    assert "headers" not in schema.names and "value" in schema.names
    assert len(rows(pipe)) == 2
    kept = rows(pipe, "with_headers")
    assert kept[0]["headers"] == [{"key": "h", "value": b"1"}]
