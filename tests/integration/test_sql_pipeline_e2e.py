"""End to end: a three-level SQL pipeline (Kafka -> bronze -> silver with from_json and
expectations -> gold materialized view) over a real topic gives the gold rows DuckDB computes
from the produced events; a second run after more events picks up exactly the new ones."""
import json
import random

import duckdb
import pyarrow as pa
from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import run_sluice, write_pipeline

SILVER = """
CREATE OR REFRESH STREAMING TABLE events_silver (
  CONSTRAINT has_user EXPECT (user_id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT known_type EXPECT (event_type IN ('view', 'click', 'purchase'))
) AS SELECT e.user_id, e.event_type, e.event_time, e.amount, CAST(e.event_time AS DATE) AS event_date
FROM (SELECT from_json(CAST(value AS STRING),
        'user_id STRING, event_type STRING, event_time TIMESTAMP, amount DOUBLE') AS e
      FROM STREAM(LIVE.events_bronze));
"""

GOLD = """
CREATE OR REFRESH MATERIALIZED VIEW revenue_by_type
COMMENT 'per event type'
AS SELECT event_type, count(*) AS n, sum(amount) AS revenue, count(DISTINCT user_id) AS users,
          max(event_time) AS last_seen
FROM events_silver
WHERE amount IS NOT NULL OR event_type = 'view'
GROUP BY event_type
HAVING count(*) > ${min_count}
ORDER BY event_type;
"""


def kafka_pipeline(tmp_path, name, bootstrap, extra=""):
    """A pipeline folder whose default Kafka cluster is the test broker."""
    return write_pipeline(tmp_path / "pipe", f"name: {name}\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n{extra}")


def produce_values(bootstrap, topic, values, partitions=1):
    """Produces each value (dict -> JSON, bytes as they are) round-robin over partitions."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i, v in enumerate(values):
        payload = v if isinstance(v, bytes) else json.dumps(v).encode()
        while True:
            try:
                producer.produce(topic, value=payload, partition=i % partitions)
                break
            except BufferError:  # local queue full: let deliveries drain
                producer.poll(0.1)
    assert producer.flush(60) == 0


def produce_events(bootstrap, topic, n, seed):
    """JSON events, some malformed or without user_id or with an unknown type; returns the
    raw payloads produced."""
    rng = random.Random(seed)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    payloads = []
    for i in range(n):
        r = rng.random()
        if r < 0.03:
            payload = b'{"user_id": "u1", broken'
        else:
            event = {
                "user_id": None if r < 0.08 else f"u{rng.randint(1, 300)}",
                "event_type": rng.choice(["view", "click", "purchase", "refund"]),
                "event_time": f"2024-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
                "amount": None if rng.random() < 0.2 else round(rng.uniform(1, 500), 2),
            }
            payload = json.dumps(event).encode()
        payloads.append(payload)
        producer.produce(topic, value=payload, partition=i % 3)
    producer.flush(30)
    return payloads


def oracle(payloads, min_count):
    """The gold rows computed by DuckDB from the raw payloads."""
    rows = []
    for p in payloads:
        try:
            e = json.loads(p)
        except ValueError:
            continue
        rows.append(e)
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("user_id", pa.string()), ("event_type", pa.string()), ("event_time", pa.string()),
        ("amount", pa.float64())]))
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    con.register("events", table)
    return con.sql(f"""
        SELECT event_type, count(*) AS n, sum(amount) AS revenue, count(DISTINCT user_id) AS users,
               max(CAST(event_time AS TIMESTAMPTZ)) AS last_seen
        FROM events
        WHERE user_id IS NOT NULL AND (amount IS NOT NULL OR event_type = 'view')
        GROUP BY event_type HAVING count(*) > {min_count} ORDER BY event_type""").arrow().read_all()


def assert_gold_matches(table_dir, expected):
    got = DeltaTable(str(table_dir)).to_pyarrow_table().sort_by("event_type")
    assert got.column_names == ["event_type", "n", "revenue", "users", "last_seen"]
    got_rows, want_rows = got.to_pylist(), expected.to_pylist()
    assert [r["event_type"] for r in got_rows] == [r["event_type"] for r in want_rows]
    for g, w in zip(got_rows, want_rows):
        assert g["n"] == w["n"] and g["users"] == w["users"], (g, w)
        assert abs(g["revenue"] - w["revenue"]) < 1e-6 * max(1.0, abs(w["revenue"])), (g, w)
        assert g["last_seen"] == w["last_seen"], (g, w)


def test_three_level_sql_pipeline_matches_duckdb(tmp_path, bootstrap, new_topic):
    topic = new_topic(3)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: shop
storage: ./data
kafka:
  default:
    bootstrap.servers: {bootstrap}
configuration:
  min_count: "5"
""")
    (pipe / "bronze.sql").write_text(
        f"CREATE OR REFRESH STREAMING TABLE events_bronze\n"
        f"AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    (pipe / "silver.sql").write_text(SILVER)
    (pipe / "gold.sql").write_text(GOLD)

    validate = run_sluice("validate", pipe)
    assert validate.returncode == 0, validate.stderr
    assert "revenue_by_type (materialized view) <- events_silver" in validate.stdout

    payloads = produce_events(bootstrap, topic, 4000, seed=1)
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    tables = pipe / "data" / "tables"
    assert DeltaTable(str(tables / "events_bronze")).to_pyarrow_table().num_rows == 4000
    silver = DeltaTable(str(tables / "events_silver")).to_pyarrow_table()
    parsed = [json.loads(p) for p in payloads if not p.endswith(b"broken")]
    assert silver.num_rows == sum(1 for e in parsed if e["user_id"] is not None)
    # Expectations are counted over every input row, a NULL result as a failure: the warn-only
    # one failed for unknown types and for malformed records (NULL), and kept those rows.
    malformed = len(payloads) - len(parsed)
    unknown = sum(1 for e in parsed if e["event_type"] == "refund") + malformed
    no_user = sum(1 for e in parsed if e["user_id"] is None) + malformed
    assert f"has_user:{no_user} failed known_type:{unknown} failed" in first.stdout, first.stdout
    assert f"{no_user} dropped" in first.stdout
    assert "refund" in silver.column("event_type").to_pylist()
    assert_gold_matches(tables / "revenue_by_type", oracle(payloads, 5))

    payloads += produce_events(bootstrap, topic, 1500, seed=2)
    second = run_sluice("run", pipe, "--once")
    assert second.returncode == 0, second.stderr
    assert DeltaTable(str(tables / "events_bronze")).to_pyarrow_table().num_rows == 5500
    silver = DeltaTable(str(tables / "events_silver")).to_pyarrow_table()
    parsed = [json.loads(p) for p in payloads if not p.endswith(b"broken")]
    assert silver.num_rows == sum(1 for e in parsed if e["user_id"] is not None)
    assert_gold_matches(tables / "revenue_by_type", oracle(payloads, 5))
    # Each streaming commit says what it added, as Spark's do (readers show it in DESCRIBE HISTORY).
    for t, rows in (("events_bronze", 5500), ("events_silver", silver.num_rows)):
        appends = [h for h in DeltaTable(str(tables / t)).history() if h["operation"] == "STREAMING UPDATE"]
        assert sum(int(h["operationMetrics"]["numOutputRows"]) for h in appends) == rows, (t, appends)
        assert all(int(h["operationMetrics"]["numAddedFiles"]) >= 1 for h in appends
                   if int(h["operationMetrics"]["numOutputRows"]) > 0), (t, appends)
        assert all(h["operationParameters"]["outputMode"] == "Append" for h in appends), (t, appends)

    # A run with nothing new changes neither streaming table.
    versions = {t: DeltaTable(str(tables / t)).version() for t in ("events_bronze", "events_silver")}
    third = run_sluice("run", pipe, "--once")
    assert third.returncode == 0, third.stderr
    assert {t: DeltaTable(str(tables / t)).version() for t in versions} == versions


def test_fail_update_expectation_stops_before_commit(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [b'{"n": 1}', b'{"n": -5}'])
    pipe = kafka_pipeline(tmp_path, "strict", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE OR REFRESH STREAMING TABLE checked (
  CONSTRAINT positive EXPECT (n > 0) ON VIOLATION FAIL UPDATE
) AS SELECT j.n FROM (SELECT from_json(CAST(value AS STRING), 'n INT') AS j FROM STREAM(raw));
CREATE OR REFRESH STREAMING TABLE checked_at_source (
  CONSTRAINT positive EXPECT (n > 0) ON VIOLATION FAIL UPDATE
) AS SELECT value.n FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'n INT')
  WHERE value.n < 100;
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1
    assert "expectation 'positive' of table 'checked' failed for 1 row(s)" in result.stderr
    assert "table 'checked'" in result.stderr and "-5" in result.stderr
    # The failing record's source position: the upstream commit, or the Kafka offset.
    assert "It came from table 'raw' (the commit of version 0)." in result.stderr, result.stderr
    assert f"It came from Kafka topic '{topic}' partition 0 offset 1." in result.stderr, result.stderr
    assert not (pipe / "data" / "tables" / "checked" / "_delta_log").exists()


def test_validate_type_checks_every_query_before_running(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: typed\nstorage: ./data\nkafka:\n  default: {bootstrap.servers: '127.0.0.1:1'}\n")
    (pipe / "p.sql").write_text(
        "CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => 't');\n"
        "CREATE STREAMING TABLE parsed AS SELECT j.id, j.nope\n"
        "  FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS j FROM STREAM(raw));\n"
        "CREATE MATERIALIZED VIEW totals AS SELECT topic, sum(value) AS s FROM raw GROUP BY topic;\n"
        "CREATE MATERIALIZED VIEW downstream AS SELECT * FROM parsed;\n")
    result = run_sluice("validate", pipe)
    assert result.returncode == 1
    assert "2 error(s) in the pipeline" in result.stderr, result.stderr
    assert "p.sql:2:47: error: struct 'j' has no field 'nope'" in result.stderr, result.stderr
    assert "p.sql:4:50: error: sum needs numbers, not BINARY" in result.stderr, result.stderr
    # Nothing ran: no table was created; only the event log records the failed update.
    run = run_sluice("run", pipe, "--once")
    assert run.returncode == 1 and not (pipe / "data" / "tables").exists()
    assert (pipe / "data" / "system" / "event_log" / "_delta_log").exists()


def test_views_and_ctes_are_inlined(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [{"k": i % 4, "v": i} for i in range(20)])
    pipe = kafka_pipeline(tmp_path, "inline", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE TEMPORARY VIEW parsed AS
  SELECT j.k, j.v FROM (SELECT from_json(CAST(value AS STRING), 'k INT, v INT') AS j FROM STREAM(raw));
CREATE STREAMING TABLE evens AS SELECT k, v FROM STREAM(parsed) WHERE v % 2 = 0;
CREATE MATERIALIZED VIEW per_key AS
  WITH big AS (SELECT * FROM evens WHERE v >= 4)
  SELECT k, count(*) AS n, sum(v) AS total FROM big GROUP BY k ORDER BY k;
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    assert not (pipe / "data" / "tables" / "parsed").exists(), "a view must not be stored"
    rows = DeltaTable(str(pipe / "data" / "tables" / "per_key")).to_pyarrow_table().to_pylist()
    expected = {}
    for i in range(20):
        if i % 2 == 0 and i >= 4:
            n, t = expected.get(i % 4, (0, 0))
            expected[i % 4] = (n + 1, t + i)
    assert {r["k"]: (r["n"], r["total"]) for r in rows} == expected


def test_several_flows_append_into_one_streaming_table(tmp_path, bootstrap, new_topic):
    eu, us = new_topic(1), new_topic(2)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(30):
        producer.produce(eu, value=json.dumps({"id": i, "amount": i * 1.5}).encode())
    for i in range(20):
        producer.produce(us, value=json.dumps({"id": 1000 + i, "amount": 2.0}).encode(), partition=i % 2)
    producer.flush(30)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: flows
storage: ./data
kafka:
  default: {{bootstrap.servers: "{bootstrap}"}}
tables:
  orders:
    properties: {{delta.checkpointInterval: "3", owner: "yaml"}}
""")
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE orders (
  id BIGINT NOT NULL, amount DOUBLE, region STRING,
  CONSTRAINT has_amount EXPECT (amount IS NOT NULL)
) TBLPROPERTIES ('owner' = 'sql', 'quality' = 'silver');
CREATE FLOW orders_eu COMMENT 'EU orders: ids and amounts' AS INSERT INTO orders BY NAME
  SELECT o.id, o.amount, 'eu' AS region
  FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS o FROM STREAM read_kafka(topic => '{eu}'));
CREATE FLOW orders_us AS INSERT INTO orders BY NAME
  SELECT o.id, 'us' AS region
  FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT') AS o
        FROM STREAM read_kafka(bootstrapServers => '{bootstrap}', subscribe => '{us}', startingOffsets => 'earliest',
                               `kafka.client.id` => 'us-flow'));
CREATE MATERIALIZED VIEW by_region AS SELECT region, count(*) AS n FROM orders GROUP BY region;
""")
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    table = DeltaTable(str(pipe / "data" / "tables" / "orders"))
    rows = table.to_pyarrow_table().to_pylist()
    assert len(rows) == 50 and len({r["id"] for r in rows}) == 50
    assert {r["region"] for r in rows} == {"eu", "us"}
    assert all(r["amount"] is None for r in rows if r["region"] == "us")  # BY NAME: missing column is null
    assert "has_amount:20 failed" in first.stdout, first.stdout
    # Each flow keeps its own progress: one txn per topic partition.
    txns = [json.loads(line)["txn"]["appId"] for f in sorted((pipe / "data" / "tables" / "orders" / "_delta_log").glob("*.json"))
            for line in f.read_text().splitlines() if '"txn"' in line]
    txns = [t for t in txns if not t.startswith("sluice:last_record:")]  # fingerprints beside progress
    assert sorted(set(txns)) == sorted([f"flows/orders_eu/{eu}/0", f"flows/orders_us/{us}/0", f"flows/orders_us/{us}/1"])
    # TBLPROPERTIES become the table's configuration; pipeline.yaml overrides win.
    assert table.metadata().configuration == {"delta.checkpointInterval": "3", "owner": "yaml", "quality": "silver",
                                              "sluice.definedProperties": '["delta.checkpointInterval","owner","quality"]'}
    gold = {r["region"]: r["n"] for r in DeltaTable(str(pipe / "data" / "tables" / "by_region")).to_pyarrow_table().to_pylist()}
    assert gold == {"eu": 30, "us": 20}
    again = run_sluice("run", pipe, "--once")
    assert again.returncode == 0 and DeltaTable(str(pipe / "data" / "tables" / "orders")).to_pyarrow_table().num_rows == 50
    # A flow's COMMENT is kept: it is in the flow's flow_definition event (it was once parsed and dropped).
    events = run_sluice("events", pipe, "--type", "flow_definition", "--format", "json")
    assert events.returncode == 0, events.stderr
    definitions = {e["message"].split("'")[1]: e["details"]["flow_definition"]
                   for e in map(json.loads, events.stdout.splitlines())}
    assert definitions["orders_eu"]["comment"] == "EU orders: ids and amounts"
    assert "comment" not in definitions["orders_us"]


def test_materialized_view_joins_match_duckdb(tmp_path, bootstrap, new_topic):
    orders_topic, users_topic = new_topic(2), new_topic(1)
    rng = random.Random(7)
    producer = Producer({"bootstrap.servers": bootstrap})
    orders = [{"order_id": i, "user_id": rng.randint(1, 40), "amount": round(rng.uniform(1, 100), 2)}
              for i in range(300)]
    users = [{"user_id": u, "country": rng.choice(["nl", "pt", "de"])} for u in range(1, 31)]  # 31..40 unknown
    for o in orders:
        producer.produce(orders_topic, value=json.dumps(o).encode(), partition=o["order_id"] % 2)
    for u in users:
        producer.produce(users_topic, value=json.dumps(u).encode())
    producer.flush(30)
    pipe = kafka_pipeline(tmp_path, "joins", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE orders AS
  SELECT o.* FROM (SELECT from_json(CAST(value AS STRING), 'order_id BIGINT, user_id INT, amount DOUBLE') AS o
                   FROM STREAM read_kafka(topic => '{orders_topic}'));
CREATE STREAMING TABLE users AS
  SELECT u.* FROM (SELECT from_json(CAST(value AS STRING), 'user_id INT, country STRING') AS u
                   FROM STREAM read_kafka(topic => '{users_topic}'));
CREATE MATERIALIZED VIEW revenue_by_country AS
  SELECT coalesce(u.country, 'unknown') AS country, count(*) AS orders, round(sum(o.amount), 2) AS revenue
  FROM orders o LEFT JOIN users u ON o.user_id = u.user_id
  GROUP BY coalesce(u.country, 'unknown') ORDER BY country;
CREATE MATERIALIZED VIEW extremes AS
  SELECT 'max' AS kind, max(amount) AS amount FROM orders
  UNION ALL SELECT 'min', min(amount) FROM orders
  UNION ALL SELECT 'count', count(*) FROM orders
  ORDER BY kind;
CREATE MATERIALIZED VIEW big_spenders AS
  SELECT o.order_id, u.country, o.amount FROM orders AS o JOIN users AS u USING (user_id)
  WHERE o.amount > 90;
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    con = duckdb.connect()
    con.register("o", pa.Table.from_pylist(orders))
    con.register("u", pa.Table.from_pylist(users))
    expected = con.sql("""SELECT coalesce(u.country, 'unknown') AS country, count(*) AS orders,
                                 round(sum(o.amount), 2) AS revenue
                          FROM o LEFT JOIN u ON o.user_id = u.user_id GROUP BY 1 ORDER BY 1""").fetchall()
    got = DeltaTable(str(pipe / "data" / "tables" / "revenue_by_country")).to_pyarrow_table().to_pylist()
    assert [(r["country"], r["orders"], r["revenue"]) for r in got] == [tuple(r) for r in expected]
    ext = DeltaTable(str(pipe / "data" / "tables" / "extremes")).to_pyarrow_table().to_pylist()
    amounts = [o["amount"] for o in orders]
    assert [(r["kind"], r["amount"]) for r in ext] == [("count", 300.0), ("max", max(amounts)), ("min", min(amounts))]
    big = con.sql("SELECT o.order_id, u.country, o.amount FROM o JOIN u USING (user_id) WHERE o.amount > 90").fetchall()
    got_big = DeltaTable(str(pipe / "data" / "tables" / "big_spenders")).to_pyarrow_table().to_pylist()
    assert sorted((r["order_id"], r["country"], r["amount"]) for r in got_big) == sorted(big)


def test_graph_json_has_column_lineage(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: lineage\nstorage: ./data\nkafka:\n  default: {bootstrap.servers: '127.0.0.1:1'}\n")
    (pipe / "p.sql").write_text("""
CREATE STREAMING TABLE orders AS
  SELECT o.* FROM (SELECT from_json(CAST(value AS STRING), 'order_id BIGINT, user_id INT, amount DOUBLE') AS o
                   FROM STREAM read_kafka(topic => 'orders'));
CREATE STREAMING TABLE users AS
  SELECT u.user_id, upper(u.country) AS country
  FROM (SELECT from_json(CAST(value AS STRING), 'user_id INT, country STRING') AS u FROM STREAM read_kafka(topic => 'users'));
CREATE MATERIALIZED VIEW revenue AS
  SELECT u.country, count(*) AS n, sum(o.amount * 2) AS doubled
  FROM orders o JOIN users u ON o.user_id = u.user_id GROUP BY u.country;
""")
    result = run_sluice("graph", pipe, "--format", "json")
    assert result.returncode == 0, result.stderr
    graph = json.loads(result.stdout)
    columns = {d["name"]: {c["name"]: c["from"] for c in d["columns"]} for d in graph["datasets"]}
    assert columns["orders"]["amount"] == ["kafka:orders.value"]
    assert columns["users"]["country"] == ["kafka:users.value"]
    assert columns["revenue"] == {"country": ["users.country"], "n": [], "doubled": ["orders.amount"]}
    assert graph["order"].index("revenue") > graph["order"].index("orders")


def test_table_override_for_unknown_table_is_an_error(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: o\nkafka:\n  default: {bootstrap.servers: '127.0.0.1:1'}\n"
                                             "tables:\n  event_silver:\n    properties: {a: b}\n")
    (pipe / "p.sql").write_text("CREATE STREAMING TABLE events_silver AS SELECT * FROM STREAM read_kafka(topic => 't');\n")
    result = run_sluice("validate", pipe)
    assert result.returncode == 1
    assert "pipeline.yaml: tables.event_silver names no dataset of the pipeline (did you mean 'events_silver'?)" in result.stderr


def test_apply_changes_is_type_checked_while_validating(tmp_path):
    """APPLY CHANGES is type-checked by validate (it runs: test_apply_changes.py); what run would
    refuse, validate refuses too."""
    pipe = write_pipeline(tmp_path / "pipe", "name: cdc\nkafka:\n  default: {bootstrap.servers: '127.0.0.1:1'}\n")
    (pipe / "p.sql").write_text("""
CREATE STREAMING TABLE cdc_raw AS SELECT c.* FROM (SELECT from_json(CAST(value AS STRING),
  'id BIGINT, name STRING, op STRING, ts TIMESTAMP') AS c FROM STREAM read_kafka(topic => 'cdc'));
CREATE STREAMING TABLE customers;
APPLY CHANGES INTO customers FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd'
  SEQUENCE BY ts COLUMNS * EXCEPT (op) STORED AS SCD TYPE 2;
""")
    ok = run_sluice("validate", pipe)
    assert ok.returncode == 0, ok.stderr
    (pipe / "p.sql").write_text((pipe / "p.sql").read_text().replace("KEYS (id)", "KEYS (id) IGNORE NULL UPDATES"))
    refused = run_sluice("validate", pipe)
    assert refused.returncode == 1, refused.stdout
    assert "p.sql:5:1: error: IGNORE NULL UPDATES with STORED AS SCD TYPE 2 is not supported yet" in refused.stderr, \
        refused.stderr
    (pipe / "p.sql").write_text((pipe / "p.sql").read_text().replace("op = 'd'", "op + 1"))
    bad = run_sluice("validate", pipe)
    assert bad.returncode == 1
    assert "'+' needs numbers, not STRING and INT" in bad.stderr, bad.stderr


def test_every_aggregate_in_a_materialized_view(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    rng = random.Random(3)
    rows = [{"k": rng.randint(0, 2), "x": None if rng.random() < 0.1 else round(rng.uniform(-10, 10), 3),
             "s": None if rng.random() < 0.1 else f"s{rng.randint(0, 8)}"} for _ in range(200)]
    produce_values(bootstrap, topic, rows)
    pipe = kafka_pipeline(tmp_path, "aggs", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE src AS SELECT r.* FROM (SELECT from_json(CAST(value AS STRING), 'k INT, x DOUBLE, s STRING') AS r
                                              FROM STREAM read_kafka(topic => '{topic}'));
CREATE MATERIALIZED VIEW stats AS
  SELECT k, count(*) AS n, count(x) AS nx, count(DISTINCT s) AS ds, sum(x) AS sx, avg(x) AS ax,
         min(s) AS mins, max(x) AS maxx, stddev(x) AS sd, approx_count_distinct(s) AS acd
  FROM src GROUP BY k ORDER BY k;
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    got = DeltaTable(str(pipe / "data" / "tables" / "stats")).to_pyarrow_table().to_pylist()
    con = duckdb.connect()
    con.register("src", pa.Table.from_pylist(rows, schema=pa.schema([("k", pa.int32()), ("x", pa.float64()), ("s", pa.string())])))
    want = con.sql("""SELECT k, count(*) AS n, count(x) AS nx, count(DISTINCT s) AS ds, sum(x) AS sx, avg(x) AS ax,
                             min(s) AS mins, max(x) AS maxx, stddev_samp(x) AS sd, count(DISTINCT s) AS acd
                      FROM src GROUP BY k ORDER BY k""").arrow().read_all().to_pylist()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for key in w:
            if isinstance(w[key], float):
                assert abs(g[key] - w[key]) < 1e-9 * max(1.0, abs(w[key])), (key, g, w)
            else:
                assert g[key] == w[key], (key, g, w)


def test_event_log_counts_match_an_independent_count(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    rng = random.Random(11)
    values = [rng.choice([None, -3, 0, 5, 8]) for _ in range(120)]
    producer = Producer({"bootstrap.servers": bootstrap})
    for v in values:
        producer.produce(topic, value=json.dumps({"v": v}).encode())
    producer.flush(30)
    pipe = kafka_pipeline(tmp_path, "quality", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE STREAMING TABLE checked (
  CONSTRAINT present EXPECT (v IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT positive EXPECT (v > 0)
) AS SELECT j.v FROM (SELECT from_json(CAST(value AS STRING), 'v INT') AS j FROM STREAM(raw));
""")
    assert run_sluice("run", pipe, "--once").returncode == 0
    events = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    assert events.returncode == 0, events.stderr
    progress = {e["dataset"]: e["details"]["flow_progress"] for e in map(json.loads, events.stdout.splitlines())}
    checked = progress["checked"]
    rate = checked["metrics"].pop("processed_rows_per_second")  # rows over the update's duration
    assert rate == (120 * 1000 / checked["duration_ms"] if checked["duration_ms"] else 0)
    assert checked["metrics"] == {"num_input_rows": 120, "num_output_rows": sum(v is not None for v in values),
                                  "num_dropped_rows": sum(v is None for v in values)}
    quality = {x["name"]: (x["passed_records"], x["failed_records"]) for x in checked["data_quality"]["expectations"]}
    assert quality["present"] == (sum(v is not None for v in values), sum(v is None for v in values))
    assert quality["positive"] == (sum(v is not None and v > 0 for v in values), sum(v is None or v <= 0 for v in values))
    # The log is a Delta table other readers open.
    log = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table()
    assert set(log.column("event_type").to_pylist()) == {"create_update", "flow_definition", "flow_progress", "update_progress"}
    # A failed update is logged too.
    (pipe / "p.sql").write_text((pipe / "p.sql").read_text().replace("EXPECT (v > 0)", "EXPECT (v > 0) ON VIOLATION FAIL UPDATE"))
    assert run_sluice("run", pipe, "--once").returncode == 0  # nothing new: no row to fail on
    producer.produce(topic, value=b'{"v": -1}')
    producer.flush(30)
    assert run_sluice("run", pipe, "--once").returncode == 1
    failed = run_sluice("events", pipe, "--type", "update_progress", "--limit", "1", "--format", "json")
    last = json.loads(failed.stdout.splitlines()[-1])
    assert last["level"] == "ERROR" and last["details"]["update_progress"]["state"] == "FAILED"
    assert "expectation 'positive'" in last["details"]["error"]


def wait_for(predicate, timeout=60.0, interval=0.2):
    import time
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_continuous_mode_follows_the_topic_and_stops_cleanly_on_sigterm(tmp_path, bootstrap, new_topic):
    import signal
    import subprocess
    import time
    from conftest import SLUICE
    topic = new_topic(2)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: live
storage: ./data
mode: continuous
trigger_interval: 200ms
kafka:
  default: {{bootstrap.servers: "{bootstrap}"}}
""")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE STREAMING TABLE parsed AS SELECT j.n FROM (SELECT from_json(CAST(value AS STRING), 'n INT') AS j FROM STREAM(raw));
""")
    producer = Producer({"bootstrap.servers": bootstrap})

    def produce_range(lo, hi):
        for n in range(lo, hi):
            producer.produce(topic, value=json.dumps({"n": n}).encode(), partition=n % 2)
        producer.flush(30)

    def parsed_rows():
        path = pipe / "data" / "tables" / "parsed"
        # The folder exists a moment before its first commit file: a table is there once
        # 00000000000000000000.json is (the commit is written whole, by rename or put-if-absent).
        if not (path / "_delta_log" / "00000000000000000000.json").exists():
            return []
        return DeltaTable(str(path)).to_pyarrow_table().column("n").to_pylist()

    produce_range(0, 500)
    proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(parsed_rows()) >= 500), "first records never arrived"
        produce_range(500, 800)
        assert wait_for(lambda: len(parsed_rows()) >= 800), "the pipeline did not follow the topic"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sorted(parsed_rows()) == list(range(800))


def test_read_kafka_offset_options(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    produce_values(bootstrap, topic, [str(i).encode() for i in range(200)], partitions=2)
    pipe = kafka_pipeline(tmp_path, "offsets", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT partition, offset FROM STREAM read_kafka(
  topic => '{topic}',
  startingOffsets => '{{"{topic}": {{"0": 10, "1": -2}}}}',
  endingOffsets => '{{"{topic}": {{"0": 60, "1": 80}}}}',
  maxOffsetsPerTrigger => 40);
""")
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    table = pipe / "data" / "tables" / "raw"
    # --once reads up to the ending offsets at once, in commits of at most 40 records.
    appends = [h for h in DeltaTable(str(table)).history() if h["operation"] == "STREAMING UPDATE"]
    assert len(appends) >= 4 and all(int(h["operationMetrics"]["numOutputRows"]) <= 40 for h in appends)
    assert run_sluice("run", pipe, "--once").returncode == 0  # nothing before the ending offsets is left
    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    got = sorted((r["partition"], r["offset"]) for r in rows)
    assert got == sorted([(0, o) for o in range(10, 60)] + [(1, o) for o in range(0, 80)])
    bad = pipe / "p.sql"
    bad.write_text(bad.read_text().replace("maxOffsetsPerTrigger => 40", "maxOffsetsPerTrigger => 'many'"))
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1 and "max_offsets_per_trigger must be a number, not 'many'" in result.stderr


def test_full_refresh_reprocesses_from_bronze_and_protects_kafka_tables(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [{"n": i} for i in range(50)])
    pipe = kafka_pipeline(tmp_path, "refresh", bootstrap)
    sql = f"""
CREATE STREAMING TABLE bronze AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE STREAMING TABLE silver AS SELECT j.n FROM (SELECT from_json(CAST(value AS STRING), 'n INT') AS j FROM STREAM(bronze));
"""
    (pipe / "p.sql").write_text(sql)
    tables = pipe / "data" / "tables"
    assert run_sluice("run", pipe, "--once").returncode == 0

    def ns(table):
        return sorted(DeltaTable(str(tables / table)).to_pyarrow_table().column(
            "n" if table == "silver" else "offset").to_pylist())

    assert ns("silver") == list(range(50))
    before = DeltaTable(str(tables / "silver")).version()
    result = run_sluice("run", pipe, "--once", "--full-refresh", "silver")
    assert result.returncode == 0, result.stderr
    assert ns("silver") == list(range(50)), "rebuilt from bronze, not doubled"
    assert DeltaTable(str(tables / "silver")).version() == before + 2  # reset, then reprocess
    refused = run_sluice("run", pipe, "--once", "--full-refresh", "bronze")
    assert refused.returncode == 1
    assert "table 'bronze' reads Kafka directly and keeps its history" in refused.stderr
    everything = run_sluice("run", pipe, "--once", "--full-refresh")
    assert everything.returncode == 0, everything.stderr
    assert ns("bronze") == list(range(50)) and ns("silver") == list(range(50))
    (pipe / "p.sql").write_text(sql.replace("CREATE STREAMING TABLE bronze AS",
                                            "CREATE STREAMING TABLE bronze TBLPROPERTIES ('pipelines.reset.allowed' = 'true') AS"))
    allowed = run_sluice("run", pipe, "--once", "--full-refresh", "bronze")
    assert allowed.returncode == 0, allowed.stderr
    assert ns("bronze") == list(range(50)), "re-read from Kafka once, not doubled"
