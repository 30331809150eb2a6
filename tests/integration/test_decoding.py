"""read_kafka decodes payloads at the source (value_format): JSON with a declared schema gives
typed columns in `value`, what does not fit goes to `_rescued_data`, and records that cannot
be decoded at all go to `<table>_dead_letter` with topic, partition, offset, error and raw
bytes — exactly once, also after a crash between the dead-letter and the target commits."""
import json
import time

from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE orders
AS SELECT value.*, _rescued_data, partition AS src_partition, offset AS src_offset
FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                       value_schema => 'id BIGINT, amount DOUBLE, sku STRING');
"""


def payloads(lo, hi):
    """Every 10th record is not JSON, every 7th has an extra field, every 5th a wrong type."""
    out = []
    for i in range(lo, hi):
        if i % 10 == 3:
            out.append(b'{"id": %d, "amount": ' % i)  # truncated
        elif i % 7 == 0:
            out.append(json.dumps({"id": i, "amount": i * 1.5, "sku": f"s{i}", "coupon": "X1"}).encode())
        elif i % 5 == 0:
            out.append(json.dumps({"id": i, "amount": "lots", "sku": f"s{i}"}).encode())
        else:
            out.append(json.dumps({"id": i, "amount": i * 1.5, "sku": f"s{i}"}).encode())
    return out


def check(pipe, produced):
    tables = pipe / "data" / "tables"
    rows = DeltaTable(str(tables / "orders")).to_pyarrow_table().to_pylist()
    dead = DeltaTable(str(tables / "orders_dead_letter")).to_pyarrow_table().to_pylist()
    offsets = [r["src_offset"] for r in rows]
    dead_offsets = [r["offset"] for r in dead]
    assert len(offsets) == len(set(offsets)) and len(dead_offsets) == len(set(dead_offsets))
    bad = {i for i in range(len(produced)) if i % 10 == 3}
    assert set(dead_offsets) == bad
    assert set(offsets) == set(range(len(produced))) - bad
    for r in dead:
        assert r["value"] == produced[r["offset"]]
        assert r["topic"] and r["partition"] == 0
        assert "invalid JSON" in r["error"], r["error"]
    for r in rows:
        i = r["src_offset"]
        assert r["id"] == i and r["sku"] == f"s{i}"
        if i % 7 == 0:
            assert json.loads(r["_rescued_data"]) == {"coupon": "X1"}
            assert r["amount"] == i * 1.5
        elif i % 5 == 0:
            assert r["amount"] is None
            assert json.loads(r["_rescued_data"]) == {"amount": "lots"}
        else:
            assert r["_rescued_data"] is None and r["amount"] == i * 1.5


def test_json_values_rescued_data_and_dead_letters_exactly_once(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "decode", bootstrap)
    (pipe / "orders.sql").write_text(SQL.format(topic=topic))
    produced = payloads(0, 200)
    produce_values(bootstrap, topic, produced)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    check(pipe, produced)

    more = payloads(200, 400)
    produce_values(bootstrap, topic, more)
    produced += more
    crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "after_side_table_commit"})
    assert crashed.returncode == 137, crashed.stderr
    assert run_sluice("run", pipe, "--once").returncode == 0
    check(pipe, produced)

    r = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    counted = sum(json.loads(line)["details"]["flow_progress"]["metrics"].get("num_dead_letter_rows", 0)
                  for line in r.stdout.splitlines())
    # The crashed update's events died with it; its dead letters were committed and are not
    # counted again by the update that finished its work.
    assert counted == len([i for i in range(200) if i % 10 == 3])


def test_bad_value_format_arguments_are_clear_errors(tmp_path):
    pipe = kafka_pipeline(tmp_path, "decode2", "127.0.0.1:1")
    (pipe / "t.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(topic => 'x', value_format => 'xml');")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1 and "value_format must be 'json' or 'avro', not 'xml'" in r.stderr, r.stderr
    (pipe / "t.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(topic => 'x', value_format => 'json');")
    # No value_schema: one is inferred from the topic at the first run. validate contacts no
    # broker (it returns at once) and says the columns are not known yet; run needs the broker.
    started = time.monotonic()
    r = run_sluice("validate", pipe)
    assert time.monotonic() - started < 5
    assert r.returncode == 0, r.stderr
    assert ("not checked: its value columns are inferred from topic 'x' at the first run and not known yet "
            "(sluice validate --infer-schemas samples the topic now)") in r.stdout, r.stdout
    assert not (pipe / "data").exists()
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 1 and "cannot reach Kafka cluster 'default' at 127.0.0.1:1" in r.stderr, r.stderr


def test_json_schema_is_inferred_from_a_sample_then_fixed(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "infer", bootstrap)
    (pipe / "t.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE events TBLPROPERTIES ('pipelines.reset.allowed' = 'true')
AS SELECT value.*, _rescued_data FROM STREAM read_kafka(topic => '{topic}', value_format => 'json');
""")
    first = [{"id": i, "score": 1.5 if i % 2 else 2, "user": {"name": f"u{i}", "vip": i % 3 == 0},
              "tags": ["a"] if i % 4 else []} for i in range(50)]
    produce_values(bootstrap, topic, first, partitions=2)
    frozen = pipe / "data" / "system" / "inferred_schemas" / "events.ddl"
    # validate samples only when asked, and never freezes what it sampled.
    r = run_sluice("validate", pipe)
    assert r.returncode == 0 and "not checked: its value columns are inferred" in r.stdout, r.stdout
    r = run_sluice("validate", pipe, "--infer-schemas")
    assert r.returncode == 0, r.stderr
    assert "id BIGINT, score DOUBLE, user STRUCT<name: STRING, vip: BOOLEAN>, tags ARRAY<STRING>" in r.stdout, r.stdout
    assert f"value columns sampled from topic '{topic}' now (not frozen" in r.stdout, r.stdout
    assert not frozen.exists()
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    table = DeltaTable(str(pipe / "data" / "tables" / "events")).to_pyarrow_table()
    assert str(table.schema.field("id").type) == "int64"
    assert str(table.schema.field("score").type) == "double"
    assert str(table.schema.field("user").type) == "struct<name: string, vip: bool>"
    assert str(table.schema.field("tags").type) == "list<element: string>"
    assert sorted(table.column("id").to_pylist()) == list(range(50))
    assert (pipe / "data" / "system" / "inferred_schemas").is_dir()

    # The schema is fixed now: a new field is rescued, not added.
    produce_values(bootstrap, topic, [{"id": 100, "score": 3.0, "coupon": "X"}])
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    rows = DeltaTable(str(pipe / "data" / "tables" / "events")).to_pyarrow_table().to_pylist()
    new = [row for row in rows if row["id"] == 100]
    assert len(new) == 1 and json.loads(new[0]["_rescued_data"]) == {"coupon": "X"}
    assert "coupon" not in rows[0]
    r = run_sluice("validate", pipe)
    assert r.returncode == 0 and f"value columns inferred from topic '{topic}', frozen in {frozen}" in r.stdout, r.stdout

    # A full refresh of the table infers the schema again: coupon is a column now.
    r = run_sluice("run", pipe, "--once", "--full-refresh", "events")
    assert r.returncode == 0, r.stderr
    assert "`coupon` STRING" in frozen.read_text()
    rows = DeltaTable(str(pipe / "data" / "tables" / "events")).to_pyarrow_table().to_pylist()
    assert [row["coupon"] for row in rows if row["id"] == 100] == ["X"]
