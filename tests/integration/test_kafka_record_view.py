"""Every field of a Kafka record reaches the bronze table as a plain Python consumer
(confluent_kafka, an independent librdkafka client) reads it: key and value (null, empty,
bytes), topic, partition, offset, timestamp and its type (CreateTime set by the producer,
LogAppendTime set by the broker), headers (none, several, a null value). The flow reads records
through kafka::RecordView, so this pins what the view carries."""
import datetime
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from conftest import run_sluice, write_pipeline
from readers import read_topic_to_end

RECORDS = [  # key, value, headers
    (None, b"v0", None),
    (b"", b"", [("h", b"x"), ("n", None), ("h", b"second")]),
    (b"k2", None, [("only", b"")]),
    (b"\x00\xffk", b"\x00\xff bytes", None),
]
SPARK_TYPE = {TIMESTAMP_CREATE_TIME: 0, TIMESTAMP_LOG_APPEND_TIME: 1}


def create_topic(bootstrap, partitions, config):
    name = f"rv-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config)])[name].result(30)
    return name


def produce(bootstrap, topic, partitions, timestamp_ms=None):
    producer = Producer({"bootstrap.servers": bootstrap})
    for i, (key, value, headers) in enumerate(RECORDS * 3):
        kwargs = {"partition": i % partitions, "key": key, "value": value}
        if headers is not None:
            kwargs["headers"] = headers
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms + i
        producer.produce(topic, **kwargs)
    assert producer.flush(30) == 0


def oracle(bootstrap, topic, partitions):
    """The records as confluent_kafka reads them, in bronze's column form."""
    out = []
    for m in read_topic_to_end(bootstrap, topic):
        ts_type, ts_ms = m.timestamp()
        out.append({
            "key": m.key(), "value": m.value(), "topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
            "timestamp": datetime.datetime.fromtimestamp(ts_ms / 1000, tz=datetime.timezone.utc),
            "timestampType": SPARK_TYPE[ts_type],
            "headers": [{"key": k, "value": v} for k, v in m.headers()] if m.headers() else None,
        })
    assert {r["partition"] for r in out} <= set(range(partitions))
    return sorted(out, key=lambda r: (r["partition"], r["offset"]))


def bronze(tmp_path, bootstrap, topic):
    pipe = write_pipeline(tmp_path / "pipe", f"name: rv\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "p.sql").write_text("CREATE OR REFRESH STREAMING TABLE raw AS SELECT * FROM STREAM "
                                f"read_kafka(topic => '{topic}', starting_offsets => 'earliest');")
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    rows = DeltaTable(str(pipe / "data" / "tables" / "raw")).to_pyarrow_table().to_pylist()
    return sorted(rows, key=lambda r: (r["partition"], r["offset"]))


def test_create_time_records_arrive_field_for_field(tmp_path, bootstrap):
    topic = create_topic(bootstrap, 2, {})
    produce(bootstrap, topic, 2, timestamp_ms=1_700_000_000_123)
    expected = oracle(bootstrap, topic, 2)
    assert len(expected) == 12 and {r["timestampType"] for r in expected} == {0}
    assert bronze(tmp_path, bootstrap, topic) == expected


def test_log_append_time_records_arrive_field_for_field(tmp_path, bootstrap):
    topic = create_topic(bootstrap, 3, {"message.timestamp.type": "LogAppendTime"})
    produce(bootstrap, topic, 3, timestamp_ms=1_000)  # the broker replaces it
    expected = oracle(bootstrap, topic, 3)
    assert len(expected) == 12 and {r["timestampType"] for r in expected} == {1}
    assert all(r["timestamp"].year >= 2026 for r in expected)
    assert bronze(tmp_path, bootstrap, topic) == expected


def test_a_timestamp_no_timestamp_column_holds_is_null_and_the_record_kept(tmp_path, bootstrap):
    """A topic that lets producers set any time (message.timestamp.after.max.ms): milliseconds
    beyond what microseconds hold (year ~294,000) are a null timestamp, the record kept."""
    topic = create_topic(bootstrap, 1, {"message.timestamp.after.max.ms": str(2**63 - 1)})
    producer = Producer({"bootstrap.servers": bootstrap})
    for i, ts in enumerate([1_700_000_000_000, 2**62, 2**63 - 1, 1_700_000_000_001]):
        producer.produce(topic, partition=0, value=f"r{i}".encode(), timestamp=ts)
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "oracle", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    stored = []
    while len(stored) < 4:
        m = consumer.poll(10)
        assert m is not None and not m.error(), m and m.error()
        stored.append(m.timestamp()[1])
    consumer.close()
    assert stored == [1_700_000_000_000, 2**62, 2**63 - 1, 1_700_000_000_001]  # the broker kept them
    rows = bronze(tmp_path, bootstrap, topic)
    assert [r["value"] for r in rows] == [b"r0", b"r1", b"r2", b"r3"]
    assert [r["timestampType"] for r in rows] == [0, 0, 0, 0]
    utc = datetime.timezone.utc
    assert [r["timestamp"] for r in rows] == [datetime.datetime.fromtimestamp(1_700_000_000, tz=utc), None, None,
                                              datetime.datetime.fromtimestamp(1_700_000_000.001, tz=utc)]
