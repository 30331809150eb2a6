"""Stream-static joins: a streaming table joins each batch of its stream with the current
snapshot of a static table; rows already written keep the dimension values they were joined
with, later batches see the updated table (Spark's stream-static semantics)."""
import json

import duckdb
from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE customers_raw
AS SELECT c.id, c.name, c.tier FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, name STRING, tier STRING') AS c
  FROM STREAM read_kafka(topic => '{customers}'));

CREATE OR REFRESH MATERIALIZED VIEW customers
AS SELECT id, max(name) AS name, max(tier) AS tier FROM customers_raw GROUP BY id;

CREATE OR REFRESH STREAMING TABLE orders_enriched
AS SELECT s.order_id, s.customer_id, s.amount, c.name, c.tier
FROM (SELECT value.* FROM STREAM read_kafka(topic => '{orders}', value_format => 'json',
                                            value_schema => 'order_id BIGINT, customer_id BIGINT, amount DOUBLE')) s
LEFT JOIN customers c ON s.customer_id = c.id;

CREATE OR REFRESH STREAMING TABLE orders_known
AS SELECT s.o.order_id, c.tier
FROM (SELECT from_json(CAST(value AS STRING), 'order_id BIGINT, customer_id BIGINT') AS o,
             from_json(CAST(value AS STRING), 'order_id BIGINT, customer_id BIGINT').customer_id AS customer_id
      FROM STREAM read_kafka(topic => '{orders}')) s
JOIN customers c ON s.customer_id = c.id;
"""


def rows(pipe, table):
    return DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().to_pylist()


def test_stream_static_join_uses_the_snapshot_of_each_batch(tmp_path, bootstrap, new_topic):
    customers, orders = new_topic(1), new_topic(2)
    pipe = kafka_pipeline(tmp_path, "join", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(customers=customers, orders=orders))
    produce_values(bootstrap, customers, [{"id": i, "name": f"c{i}", "tier": "gold" if i % 2 else "basic"}
                                          for i in range(10)])
    first = [{"order_id": i, "customer_id": i % 15, "amount": i * 1.0} for i in range(100)]
    produce_values(bootstrap, orders, first, partitions=2)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr

    # The same join computed by DuckDB from what was produced.
    con = duckdb.connect()
    con.execute("CREATE TABLE c AS SELECT * FROM (VALUES " +
                ",".join(f"({i}, 'c{i}', '{'gold' if i % 2 else 'basic'}')" for i in range(10)) +
                ") t(id, name, tier)")
    con.execute("CREATE TABLE o AS SELECT * FROM (VALUES " +
                ",".join(f"({o['order_id']}, {o['customer_id']}, {o['amount']})" for o in first) +
                ") t(order_id, customer_id, amount)")
    expected = con.execute("SELECT o.order_id, o.customer_id, o.amount, c.name, c.tier FROM o "
                           "LEFT JOIN c ON o.customer_id = c.id ORDER BY 1").fetchall()
    got = sorted((r["order_id"], r["customer_id"], r["amount"], r["name"], r["tier"])
                 for r in rows(pipe, "orders_enriched"))
    assert got == expected
    assert sorted(r["order_id"] for r in rows(pipe, "orders_known")) == [o["order_id"] for o in first
                                                                         if o["customer_id"] < 10]

    # New customers arrive, then new orders: only the new orders see them.
    produce_values(bootstrap, customers, [{"id": i, "name": f"n{i}", "tier": "new"} for i in range(10, 15)])
    second = [{"order_id": 100 + i, "customer_id": 10 + i % 5, "amount": 1.0} for i in range(20)]
    produce_values(bootstrap, orders, second, partitions=2)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    enriched = {r["order_id"]: r for r in rows(pipe, "orders_enriched")}
    assert len(enriched) == 120
    for o in first:  # joined before customers 10..14 existed: stay unmatched
        if o["customer_id"] >= 10:
            assert enriched[o["order_id"]]["name"] is None
    for o in second:
        assert enriched[o["order_id"]]["name"] == f"n{o['customer_id']}"
        assert enriched[o["order_id"]]["tier"] == "new"


def test_joins_a_stream_cannot_make_are_refused(tmp_path):
    pipe = kafka_pipeline(tmp_path, "join2", "127.0.0.1:1")
    (pipe / "p.sql").write_text("""
CREATE OR REFRESH STREAMING TABLE a AS SELECT * FROM STREAM read_kafka(topic => 'x', value_format => 'json', value_schema => 'id INT');
CREATE OR REFRESH MATERIALIZED VIEW dim AS SELECT value.id AS id FROM a;
CREATE OR REFRESH STREAMING TABLE b AS SELECT s.id FROM dim d RIGHT JOIN (SELECT value.id AS id FROM STREAM(a)) s ON s.id = d.id;
CREATE OR REFRESH STREAMING TABLE c AS SELECT s.value.id FROM STREAM(a) s JOIN STREAM(a) t ON s.offset = t.offset;
CREATE OR REFRESH STREAMING TABLE e AS SELECT s.value.id FROM STREAM(a) s JOIN dim d ON s.value.id = d.id;
""")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1
    assert "stream-static join keeps the stream on the left" in r.stderr, r.stderr
    assert "each side of a stream-stream join needs a watermark" in r.stderr, r.stderr
    assert "a join key must be a column of its side, not a struct field" in r.stderr, r.stderr


def test_continuous_join_sees_a_new_static_version_mid_stream(tmp_path, bootstrap, new_topic):
    """One continuous run: the join keeps its hash table between batches and builds it again when
    the static table gets a new version; orders produced after that join the new customers."""
    import signal
    import subprocess
    from conftest import SLUICE
    from test_sql_pipeline_e2e import wait_for
    customers, orders = new_topic(1), new_topic(2)
    pipe = kafka_pipeline(tmp_path, "joinlive", bootstrap, "mode: continuous\ntrigger_interval: 50ms\n")
    (pipe / "p.sql").write_text(SQL.format(customers=customers, orders=orders))

    def count(table):
        try:
            return DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().num_rows
        except Exception:  # not created yet (or its first commit is being written)
            return 0

    phases = [
        ([{"id": i, "name": f"c{i}", "tier": "gold" if i % 2 else "basic"} for i in range(10)],
         [{"order_id": i, "customer_id": i % 15, "amount": i * 1.0} for i in range(100)]),
        ([{"id": i, "name": f"n{i}", "tier": "new"} for i in range(10, 15)],
         [{"order_id": 100 + i, "customer_id": (3 * i) % 16, "amount": 2.0} for i in range(60)]),
    ]
    err = open(tmp_path / "stderr.txt", "w")
    proc = None
    try:
        known, ordered, matched = 0, 0, 0
        ids = set()
        for new_customers, new_orders in phases:
            # The static table has its new version before the orders that should see it arrive.
            produce_values(bootstrap, customers, new_customers)
            if proc is None:  # the broker lists both topics before the run starts
                from confluent_kafka.admin import AdminClient
                admin = AdminClient({"bootstrap.servers": bootstrap})
                assert wait_for(lambda: {customers, orders} <= set(admin.list_topics(timeout=10).topics))
                proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
            known += len(new_customers)
            ids |= {c["id"] for c in new_customers}
            assert wait_for(lambda: count("customers") == known, timeout=120), "customers never refreshed"
            produce_values(bootstrap, orders, new_orders, partitions=2)
            ordered += len(new_orders)
            matched += sum(o["customer_id"] in ids for o in new_orders)
            # Both joins are done with these orders before the customers change again.
            assert wait_for(lambda: count("orders_enriched") == ordered and count("orders_known") == matched,
                            timeout=120), "orders never joined"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()

    # Oracle: DuckDB joins each phase's orders with the customers known by then.
    con = duckdb.connect()
    parts = []
    for p, (_, new_orders) in enumerate(phases):
        known = [c for cs, _ in phases[:p + 1] for c in cs]
        con.execute(f"CREATE TABLE c{p} AS SELECT * FROM (VALUES " +
                    ",".join(f"({c['id']}, '{c['name']}', '{c['tier']}')" for c in known) + ") t(id, name, tier)")
        con.execute(f"CREATE TABLE o{p} AS SELECT * FROM (VALUES " +
                    ",".join(f"({o['order_id']}, {o['customer_id']}, {o['amount']})" for o in new_orders) +
                    ") t(order_id, customer_id, amount)")
        parts.append(f"SELECT o.order_id, o.customer_id, o.amount, c.name, c.tier FROM o{p} o "
                     f"LEFT JOIN c{p} c ON o.customer_id = c.id")
    expected = con.execute(" UNION ALL ".join(parts) + " ORDER BY 1").fetchall()
    got = sorted((r["order_id"], r["customer_id"], r["amount"], r["name"], r["tier"])
                 for r in rows(pipe, "orders_enriched"))
    assert got == expected
    assert any(r[3] is not None and r[3].startswith("n") for r in got)  # joined against the new version
    expected_known = con.execute(" UNION ALL ".join(
        f"SELECT o.order_id FROM o{p} o JOIN c{p} c ON o.customer_id = c.id" for p in range(len(phases))) +
        " ORDER BY 1").fetchall()
    assert sorted(r["order_id"] for r in rows(pipe, "orders_known")) == [r[0] for r in expected_known]
