"""`sluice status`: every dataset's state, last update, rows, Kafka lag, freshness and failing
expectations agree with what deltalake and the event log (read with Python's json) say; exit
code 2 when a flow failed, 1 when the status cannot be read, 0 otherwise. `sluice events` text
lines carry the numbers of the JSON events. No Spark."""
import datetime
import json
import os
import re

from deltalake import DeltaTable

from conftest import run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE orders (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW,
  CONSTRAINT small EXPECT (amount < 1000)
) TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT e.id, e.amount FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS e FROM STREAM read_kafka(topic => '{topic}'));

CREATE OR REFRESH STREAMING TABLE strict (
  CONSTRAINT tiny EXPECT (amount < 50) ON VIOLATION FAIL UPDATE
) AS SELECT e.id, e.amount FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS e FROM STREAM read_kafka(topic => '{topic}'));

CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(amount) AS total FROM orders;
CREATE MATERIALIZED VIEW strict_totals AS SELECT count(*) AS n FROM strict;
CREATE TEMPORARY VIEW big AS SELECT * FROM orders WHERE amount > 100;
"""

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
RECORDS = [{"id": None if i % 7 == 0 else i, "amount": -1.0 if i % 5 == 0 else float(i * 20)} for i in range(60)]


def event_log(pipe):
    """The event log read independently: deltalake for the table, json for the details."""
    rows = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    rows.sort(key=lambda r: (r["timestamp"], r["sequence"]["seq"]))
    for r in rows:
        r["details"] = json.loads(r["details"])
    return rows


def expected_status(pipe, events):
    """Per dataset what status should say, from deltalake and the event log."""
    latest, backlog, completed_ms = {}, {}, {}
    for e in events:
        p = e["details"].get("flow_progress")
        if e["event_type"] != "flow_progress" or not isinstance(p, dict) or "status" not in p:
            continue
        latest[e["origin"]["dataset_name"]] = p
        if p["status"] == "COMPLETED":
            micros = (e["timestamp"] - EPOCH) // datetime.timedelta(microseconds=1)
            completed_ms[e["origin"]["dataset_name"]] = micros // 1000
        if "backlog_records" in p.get("metrics", {}):
            backlog[e["origin"]["dataset_name"]] = p["metrics"]
    out = {}
    for name in ("orders", "strict", "totals", "strict_totals"):
        path = pipe / "data" / "tables" / name
        row = {"state": latest[name]["status"] if name in latest else "never run"}
        if (path / "_delta_log").exists():
            dt = DeltaTable(str(path))
            row["rows"] = dt.to_pyarrow_table().num_rows
            row["version"] = dt.version()
            # The commit's time as the Delta protocol defines it (no in-commit timestamps): the
            # modification time of the newest commit file.
            newest = path / "_delta_log" / f"{dt.version():020d}.json"
            row["last_update_ms"] = os.stat(newest).st_mtime_ns // 1_000_000
        else:
            row.update(rows=None, version=None, last_update_ms=None)
        quality = latest.get(name, {}).get("data_quality", {}).get("expectations", [])
        row["failing_expectations"] = sorted((x["name"], x["failed_records"]) for x in quality if x["failed_records"] > 0)
        row["kafka_lag"] = backlog[name]["backlog_records"] if name in backlog else None
        # Freshness counts from the newest commit, or from a later completed refresh (a view
        # whose inputs did not change commits nothing).
        row["fresh_since_ms"] = max(filter(None, [row["last_update_ms"], completed_ms.get(name)]), default=None)
        out[name] = row
    return out


def test_status_agrees_with_deltalake_and_the_event_log(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "status", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))

    # Never run: every dataset says so, healthy.
    before = run_sluice("status", pipe, "--format", "json")
    assert before.returncode == 0, before.stderr
    status = json.loads(before.stdout)
    assert status["event_log"]["state"] == "none"
    assert {d["name"]: d["state"] for d in status["datasets"]} == {
        "orders": "never run", "strict": "never run", "totals": "never run", "strict_totals": "never run",
        "big": "not stored"}
    assert all(d["rows"] is None for d in status["datasets"])

    produce_values(bootstrap, topic, RECORDS)
    run = run_sluice("run", pipe, "--once")
    assert run.returncode != 0  # strict failed its FAIL UPDATE expectation
    assert "tiny" in run.stderr

    result = run_sluice("status", pipe, "--format", "json")
    assert result.returncode == 2, result.stderr  # a flow's latest state is FAILED
    status = json.loads(result.stdout)
    assert status["healthy"] is False and status["exit_code"] == 2
    got = {d["name"]: d for d in status["datasets"]}
    want = expected_status(pipe, event_log(pipe))
    for name, w in want.items():
        g = got[name]
        assert g["state"] == w["state"], name
        assert g["rows"] == w["rows"], name
        assert g["version"] == w["version"], name
        assert g["last_update_ms"] == w["last_update_ms"], name
        assert sorted((x["name"], x["failed_records"]) for x in g["failing_expectations"]) == \
            w["failing_expectations"], name
        assert g["kafka_lag"] == w["kafka_lag"], name
        if w["last_update_ms"] is not None:
            assert g["freshness_seconds"] == (status["generated_at_ms"] - w["fresh_since_ms"]) / 1000, name
        else:
            assert g["freshness_seconds"] is None, name
    # What the pipeline did, checked against the records themselves.
    dropped = [r for r in RECORDS if r["id"] is None or not r["amount"] > 0]
    assert got["orders"]["state"] == "COMPLETED"
    assert got["orders"]["rows"] == len(RECORDS) - len(dropped)
    assert dict((x["name"], x["failed_records"]) for x in got["orders"]["failing_expectations"]) == {
        "has_id": sum(r["id"] is None for r in RECORDS),
        "positive": sum(not r["amount"] > 0 for r in RECORDS),
        "small": sum(r["amount"] >= 1000 for r in RECORDS)}
    assert got["orders"]["kafka_lag"] == 0 and got["orders"]["reads_kafka"] is True
    assert got["strict"]["state"] == "FAILED" and "tiny" in got["strict"]["error"]
    assert got["strict_totals"]["state"] == "SKIPPED"
    assert got["totals"]["state"] == "COMPLETED" and got["totals"]["reads_kafka"] is False

    # Text mode: a header and one line per dataset with its state and numbers; the error below.
    text = run_sluice("status", pipe)
    assert text.returncode == 2
    lines = text.stdout.splitlines()
    assert lines[1].split()[:4] == ["NAME", "KIND", "STATE", "LAST"]
    by_name = {line.split()[0]: line for line in lines[2:7]}
    assert set(by_name) == {"orders", "strict", "totals", "strict_totals", "big"}
    assert " COMPLETED " in by_name["orders"] and f" {got['orders']['rows']} " in by_name["orders"]
    assert "has_id: " in by_name["orders"] and "positive: " in by_name["orders"]
    assert " FAILED " in by_name["strict"]
    assert any(line.startswith("strict FAILED at ") and "tiny" in line for line in lines[7:])


def test_events_text_lines_carry_the_numbers_of_the_json_events(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "events", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic).split("CREATE OR REFRESH STREAMING TABLE strict")[0] +
                                "CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n FROM orders;\n")
    produce_values(bootstrap, topic, RECORDS[:30])
    assert run_sluice("run", pipe, "--once").returncode == 0
    produce_values(bootstrap, topic, RECORDS[30:])
    assert run_sluice("run", pipe, "--once").returncode == 0
    as_json = run_sluice("events", pipe, "--type", "flow_progress", "--format", "json")
    as_text = run_sluice("events", pipe, "--type", "flow_progress")
    assert as_json.returncode == 0 and as_text.returncode == 0, as_text.stderr
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    lines = as_text.stdout.splitlines()
    assert len(events) == len(lines) == 4  # orders and totals, two updates
    for e, line in zip(events, lines):
        p = e["details"]["flow_progress"]
        m = p["metrics"]
        rows = re.search(r"table version (\d+); (\d+) read, (\d+) written, (\d+) dropped, (\d+) quarantined, "
                         r"(\d+) dead-lettered", line)
        assert rows, line
        assert [int(x) for x in rows.groups()] == [
            p["table_version"], m["num_input_rows"], m["num_output_rows"], m["num_dropped_rows"],
            m.get("num_quarantined_rows", 0), m.get("num_dead_letter_rows", 0)]
        assert int(re.search(r"; (\d+) ms$", line).group(1)) == p["duration_ms"]
        expectations = {(n, int(a), int(b)) for n, a, b in re.findall(r"(\w+): (\d+) passed/(\d+) failed", line)}
        assert expectations == {(x["name"], x["passed_records"], x["failed_records"])
                                for x in p["data_quality"]["expectations"]}
        if "backlog_records" in m:
            assert f"backlog {m['backlog_records']}" in line
        assert f" {e['dataset']} " in line and e["message"] in line
    orders = [e for e in events if e["dataset"] == "orders"]
    assert sum(e["details"]["flow_progress"]["metrics"]["num_input_rows"] for e in orders) == len(RECORDS)
    assert sum(e["details"]["flow_progress"]["metrics"].get("num_quarantined_rows", 0) for e in orders) == \
        sum(r["id"] is None or not r["amount"] > 0 for r in RECORDS)


def test_status_of_a_missing_folder_and_a_corrupt_event_log(tmp_path, bootstrap, new_topic):
    missing = run_sluice("status", tmp_path / "nowhere")
    assert missing.returncode == 1 and "nowhere" in missing.stderr and "Traceback" not in missing.stderr

    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "corrupt", bootstrap)
    (pipe / "p.sql").write_text(f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                f"read_kafka(topic => '{topic}');")
    produce_values(bootstrap, topic, [b"x"] * 5)
    assert run_sluice("run", pipe, "--once").returncode == 0
    assert run_sluice("status", pipe).returncode == 0
    # A data file of the event log overwritten with garbage: status still shows the tables,
    # says the states are unknown and why, and exits 1.
    for f in (pipe / "data" / "system" / "event_log").glob("*.parquet"):
        f.write_bytes(b"not parquet at all")
    result = run_sluice("status", pipe, "--format", "json")
    assert result.returncode == 1
    assert "event log" in result.stderr and "unreadable" in result.stderr
    status = json.loads(result.stdout)
    assert status["event_log"]["state"] == "unreadable"
    raw = next(d for d in status["datasets"] if d["name"] == "raw")
    assert raw["state"] == "unknown" and raw["rows"] == 5
    events = run_sluice("events", pipe)
    assert events.returncode == 1 and "sluice: error:" in events.stderr
