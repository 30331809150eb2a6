"""The `_rescued_data` rate per update (issue 16, rs): a Kafka flow's flow_progress event counts
the rows it wrote that rescued something, /api/schema_history gives them per update with the
columns an update changed, /metrics exports `sluice_rescued_rows_total` (promtool), and the
`rescued_rate_above` alert rule fires above its threshold, not at it, and resolves. Checked
against a Python count of the records produced and the rescued column read by deltalake and
DuckDB. No Spark."""
import json
import shutil
import subprocess

import pytest
from deltalake import DeltaTable

from conftest import duckdb_connection, run_sluice
from test_serve import get, metric, parse_metrics, start, stop
from test_sql_pipeline_e2e import kafka_pipeline, produce_values
from test_status import event_log

SQL = """
CREATE OR REFRESH STREAMING TABLE orders
AS SELECT value.*, _rescued_data FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                                         value_schema => 'id BIGINT, amount DOUBLE');
CREATE OR REFRESH STREAMING TABLE amounts AS SELECT id, amount FROM STREAM(orders);
CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n{extra} FROM orders;
"""

ALERTS = """alerts:
  rules:
    - {name: at_quarter, rescued_rate_above: 0.25, datasets: [orders]}
    - {name: above_fifth, rescued_rate_above: 0.2, datasets: [orders]}
"""


def records(first, n, rescued_ids):
    """n JSON records; those of `rescued_ids` carry an unknown key (odd ids) or a mistyped amount."""
    out = []
    for i in range(first, first + n):
        r = {"id": i, "amount": i * 0.5}
        if i in rescued_ids:
            if i % 2:
                r["coupon"] = f"c{i}"  # unknown key
            else:
                r["amount"] = f"{i} EUR"  # wrong type
        out.append(r)
    return out


def python_rescued(batch):
    return sum(1 for r in batch if set(r) != {"id", "amount"} or not isinstance(r["amount"], float))


def progress(events, dataset):
    return [e for e in events if e["event_type"] == "flow_progress" and e["origin"]["dataset_name"] == dataset
            and e["details"].get("flow_progress", {}).get("status")]  # not a full refresh's reset


def alerts(events):
    return [(e["details"]["alert"]["rule"], e["details"]["alert"]["state"], e["details"]["alert"]["value"])
            for e in events if e["event_type"] == "alert"]


def test_rescued_rows_are_counted_served_exported_and_alerted(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "rescue", bootstrap, extra=ALERTS)
    (pipe / "p.sql").write_text(SQL.format(topic=topic, extra=""))
    first = records(0, 20, {1, 4, 9, 12, 17})  # 5 of 20 = 0.25
    second = records(20, 12, set())  # none rescued
    produce_values(bootstrap, topic, first)
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr
    produce_values(bootstrap, topic, second)
    # The view gains a column: the update that rewrites it records the column added.
    (pipe / "p.sql").write_text(SQL.format(topic=topic, extra=", sum(amount) AS amount"))
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr

    events = event_log(pipe)
    orders = progress(events, "orders")
    assert len(orders) == 2
    counted = [e["details"]["flow_progress"]["rescued_data"] for e in orders]
    assert [c["num_rescued_rows"] for c in counted] == [python_rescued(first), python_rescued(second)] == [5, 0]
    assert [c["num_rows"] for c in counted] == [e["details"]["flow_progress"]["metrics"]["num_output_rows"]
                                                for e in orders] == [20, 12]
    assert counted[0]["rescued_rate"] == 0.25 and counted[1]["rescued_rate"] == 0
    # The table's own column agrees, read by two readers.
    table = pipe / "data" / "tables" / "orders"
    rows = DeltaTable(str(table)).to_pyarrow_table().to_pylist()
    assert sum(r["_rescued_data"] is not None for r in rows) == 5
    con = duckdb_connection()
    assert con.sql(f"SELECT count(*) FROM delta_scan('{table}') WHERE _rescued_data IS NOT NULL").fetchone()[0] == 5
    # A table without the column records none.
    assert all("rescued_data" not in e["details"]["flow_progress"] for e in progress(events, "amounts"))
    # The view's second update added a column (the first created the table: no change).
    totals = progress(events, "totals")
    assert "schema_change" not in totals[0]["details"]["flow_progress"]
    assert totals[-1]["details"]["flow_progress"]["schema_change"] == {
        "columns_added": ["amount double"], "columns_removed": [], "types_changed": []}
    assert [f.name for f in DeltaTable(str(pipe / "data" / "tables" / "totals")).schema().fields] == ["n", "amount"]
    # Alerts: 0.25 is above 0.2 (fires) but not above 0.25; the second update (0) resolves it.
    assert alerts(events) == [("above_fifth", "FIRING", 0.25), ("above_fifth", "RESOLVED", 0.0)]

    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, body = get(url + "/api/schema_history?dataset=orders")
        assert code == 200, body
        history = json.loads(body)["schema_history"]
        code, _, body = get(url + "/api/schema_history?dataset=totals")
        assert code == 200, body
        view_history = json.loads(body)["schema_history"]
        code, _, body = get(url + "/api/schema_history?dataset=orders&nope=1")
        assert code == 400 and "unknown parameter 'nope'" in body
        code, _, text = get(url + "/metrics")
        assert code == 200
    finally:
        assert stop(proc) == 0
    versions = [e["details"]["flow_progress"]["table_version"] for e in orders]
    assert [(h["table_version"], h["rows_written"], h["rescued_rows"], h["rescued_rate"]) for h in history] == [
        (versions[0], 20, 5, 0.25), (versions[1], 12, 0, 0.0)]
    assert view_history[-1]["columns_added"] == ["amount double"] and view_history[-1]["status"] == "COMPLETED"
    # Tables without the column: the rescued fields are there, null (README).
    assert [view_history[-1][k] for k in ("rescued_rows", "rescue_rows_written", "rescued_rate")] == [None] * 3
    metrics = parse_metrics(text)
    assert metric(metrics, "sluice_rescued_rows_total", pipeline="rescue", dataset="orders", flow="orders") == 5
    assert metric(metrics, "sluice_rescue_rows_written_total", pipeline="rescue", dataset="orders", flow="orders") == 32
    assert not [k for k in metrics if k[0] == "sluice_rescued_rows_total" and ("dataset", "amounts") in k[1]]
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)")
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rescued_rate_rule_is_checked_at_its_line(tmp_path, bootstrap):
    pipe = kafka_pipeline(tmp_path, "rescue_bad", bootstrap, extra="alerts:\n  rules:\n"
                                                                   "    - {name: r, rescued_rate_above: 1}\n")
    (pipe / "p.sql").write_text(SQL.format(topic="t", extra=""))
    r = run_sluice("validate", pipe)
    assert r.returncode == 1 and "pipeline.yaml:7:" in r.stderr and \
        "rescued_rate_above is a fraction from 0 to below 1" in r.stderr, r.stderr


RULE_ON = "alerts:\n  rules:\n    - {{name: r, rescued_rate_above: 0.1, datasets: [{}]}}\n"
NO_COLUMN = "no Kafka flow writes a `_rescued_data` column to '{}', so rescued_rate_above cannot fire on it"


def test_rescued_rate_rule_is_refused_where_no_kafka_flow_writes_the_column(tmp_path, bootstrap, new_topic):
    """Refused where it could never be evaluated: a table without the column, and one that has it
    from its upstream table (no Kafka flow counts its rows). A schema inferred at the first run
    is not known to `validate`: checked when the run has planned, before anything is written."""
    copy = "CREATE OR REFRESH STREAMING TABLE copy AS SELECT * FROM STREAM(orders);\n"
    for dataset in ["amounts", "copy"]:
        pipe = kafka_pipeline(tmp_path / dataset, "rescue_where", bootstrap, extra=RULE_ON.format(dataset))
        (pipe / "p.sql").write_text(SQL.format(topic="t", extra="") + copy)
        r = run_sluice("validate", pipe)
        assert r.returncode == 1 and "pipeline.yaml:7:" in r.stderr and NO_COLUMN.format(dataset) in r.stderr, r.stderr
    topic = new_topic(1)
    produce_values(bootstrap, topic, records(0, 4, {1}))
    pipe = kafka_pipeline(tmp_path / "inferred", "rescue_inferred", bootstrap, extra=RULE_ON.format("copy"))
    (pipe / "p.sql").write_text(f"""CREATE OR REFRESH STREAMING TABLE orders
AS SELECT value.*, _rescued_data FROM STREAM read_kafka(topic => '{topic}', value_format => 'json');
""" + copy)
    r = run_sluice("validate", pipe)
    assert r.returncode == 0 and "not checked" in r.stdout + r.stderr, r.stdout + r.stderr
    r = run_sluice("run", pipe, timeout=180)
    assert r.returncode == 1 and "pipeline.yaml:7:" in r.stderr and NO_COLUMN.format("copy") in r.stderr, r.stderr
    assert not (pipe / "data" / "tables" / "orders").exists()


def test_a_firing_rescued_rate_alert_resolves_when_no_kafka_flow_writes_its_column(tmp_path, bootstrap, new_topic):
    """A rule covering every dataset fires on two tables; the next run's SQL no longer defines
    one of them: its alert resolves at start (it could never be evaluated again), the other's
    stays firing (its idle update is not evaluated)."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "rescue_gone", bootstrap,
                          extra="alerts:\n  rules:\n    - {name: r, rescued_rate_above: 0.1}\n")
    table = """CREATE OR REFRESH STREAMING TABLE {name} AS SELECT value.*, _rescued_data
FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'id BIGINT, amount DOUBLE');
"""
    (pipe / "p.sql").write_text(table.format(name="a", topic=topic) + table.format(name="b", topic=topic))
    produce_values(bootstrap, topic, records(0, 4, {1}))  # 1 of 4
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr
    (pipe / "p.sql").write_text(table.format(name="a", topic=topic))
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr
    got = [(e["details"]["alert"]["dataset"], e["details"]["alert"]["state"], e["details"]["alert"]["value"])
           for e in event_log(pipe) if e["event_type"] == "alert"]
    assert sorted(got[:2]) == [("a", "FIRING", 0.25), ("b", "FIRING", 0.25)] and got[2:] == [("b", "RESOLVED", None)]
    resolved = [e for e in event_log(pipe) if e["event_type"] == "alert"][2]
    assert "no Kafka flow writes a `_rescued_data` column to this dataset any more" in resolved["message"], resolved


def test_a_failed_update_keeps_what_its_landed_commits_rescued(tmp_path, bootstrap, new_topic):
    """An update whose first commit lands and whose second fails (an expectation that fails the
    update): the event keeps the landed commit's rows in rescued_data although the failed
    report's num_output_rows does not; the API lists the FAILED update and /metrics exports the
    rate's denominator. Checked against the table read by deltalake."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "rescue_failed", bootstrap, extra="commit: {max_rows: 4}\n")
    (pipe / "p.sql").write_text(f"""CREATE OR REFRESH STREAMING TABLE orders (
  CONSTRAINT small EXPECT (id < 100) ON VIOLATION FAIL UPDATE
) AS SELECT value.*, _rescued_data FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                                          value_schema => 'id BIGINT, amount DOUBLE');
""")
    batch = records(0, 8, {1, 2, 5})
    batch[6]["id"] = 106  # the second commit (offsets 4-7) fails the update
    produce_values(bootstrap, topic, batch)
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 1 and "expectation 'small'" in ran.stderr, ran.stderr
    rows = DeltaTable(str(pipe / "data" / "tables" / "orders")).to_pyarrow_table().to_pylist()
    assert sorted(r["id"] for r in rows) == [0, 1, 2, 3]
    landed = sum(r["_rescued_data"] is not None for r in rows)
    assert landed == python_rescued(batch[:4]) == 2
    [update] = progress(event_log(pipe), "orders")
    p = update["details"]["flow_progress"]
    assert p["status"] == "FAILED" and p["rescued_data"] == {"num_rows": 4, "num_rescued_rows": 2, "rescued_rate": 0.5}
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, body = get(url + "/api/schema_history?dataset=orders")
        assert code == 200, body
        code, _, text = get(url + "/metrics")
        assert code == 200
    finally:
        assert stop(proc) == 0
    [h] = json.loads(body)["schema_history"]
    assert (h["status"], h["rescued_rows"], h["rescue_rows_written"], h["rescued_rate"]) == ("FAILED", 2, 4, 0.5)
    metrics = parse_metrics(text)
    assert metric(metrics, "sluice_rescue_rows_written_total", dataset="orders") == 4
    assert metric(metrics, "sluice_rescued_rows_total", dataset="orders") == 2


def test_full_refresh_records_the_columns_its_reset_commit_changed(tmp_path, bootstrap, new_topic):
    """--full-refresh of a table whose query gained a column: the reset commit adds it, and the
    update's flow_progress says so (the flow's own commits then see no change)."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "rescue_refresh", bootstrap)
    sql = """CREATE OR REFRESH STREAMING TABLE t TBLPROPERTIES ('pipelines.reset.allowed' = 'true')
AS SELECT {columns} FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                           value_schema => 'id BIGINT, amount DOUBLE');
"""
    (pipe / "p.sql").write_text(sql.format(columns="value.id", topic=topic))
    produce_values(bootstrap, topic, records(0, 3, set()))
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr
    (pipe / "p.sql").write_text(sql.format(columns="value.id, value.amount", topic=topic))
    ran = run_sluice("run", pipe, "--full-refresh", "t", timeout=180)
    assert ran.returncode == 0, ran.stderr
    updates = progress(event_log(pipe), "t")
    assert "schema_change" not in updates[0]["details"]["flow_progress"]
    assert updates[1]["details"]["flow_progress"]["schema_change"] == {
        "columns_added": ["amount double"], "columns_removed": [], "types_changed": []}
    assert [f.name for f in DeltaTable(str(pipe / "data" / "tables" / "t")).schema().fields] == ["id", "amount"]
