"""Alerts (pipeline.yaml `alerts:`): a rule fires once while its condition holds, across runs
(the state comes back from the event log), and resolves; each transition reaches a webhook (a
Python http.server in this process), a command (argv, the JSON on stdin) and a Kafka topic of
the test broker, and is an `alert` event; a webhook that hangs or refuses is recorded and never
stops the pipeline; `sluice status` shows active alerts and whether a run holds the run lock.
Checked against the event log read with deltalake, the topic read with confluent_kafka, and the
table read with deltalake. No Spark."""
import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from deltalake import DeltaTable

from conftest import SLUICE, run_sluice
from readers import read_topic_to_end
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE orders (
  CONSTRAINT positive EXPECT (amount > 0)
) AS SELECT e.id, e.amount FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS e FROM STREAM read_kafka(topic => '{topic}'));
"""

RECORDER = """import sys
with open(sys.argv[1], "a") as out:
    out.write(sys.stdin.read().replace("\\n", " ") + "\\n")
"""


class Receiver:
    """An HTTP server in this process that keeps every POST body (JSON) it receives."""

    def __init__(self):
        self.bodies = []
        received = self.bodies

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                received.append((self.path, self.headers["Content-Type"], json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def alert_events(pipe, event_type="alert"):
    rows = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    rows.sort(key=lambda r: (r["timestamp"], r["sequence"]["seq"]))
    return [json.loads(r["details"])[event_type] for r in rows if r["event_type"] == event_type]


def test_an_alert_fires_once_across_runs_resolves_and_reaches_every_destination(tmp_path, bootstrap, new_topic):
    topic, alerts_topic = new_topic(1), new_topic(1)
    receiver = Receiver()
    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    received_by_command = tmp_path / "command.jsonl"
    pipe = kafka_pipeline(tmp_path, "alerting", bootstrap, extra=f"""alerts:
  destinations:
    hook: {{webhook: {{url: "{receiver.url}/services/T0/B0/hook-token", timeout: 10s}}}}
    cmd: {{command: {{argv: ["{sys.executable}", "{recorder}", "{received_by_command}"]}}}}
    bus: {{kafka: {{topic: {alerts_topic}}}}}
  rules:
    - name: quality
      expectation_pass_rate_below: 0.9
      expectation: positive
      datasets: [orders]
      notify: [hook, cmd, bus]
    - name: failed
      flow_failed: true
""")
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    try:
        # Half the records fail `positive`: FIRING, delivered to all three destinations.
        produce_values(bootstrap, topic, [{"id": i, "amount": -1.0 if i % 2 else 5.0} for i in range(20)])
        first = run_sluice("run", pipe, "--once")
        assert first.returncode == 0, first.stderr
        assert "alert 'quality' FIRING on 'orders'" in first.stderr
        assert [a["state"] for a in alert_events(pipe)] == ["FIRING"]
        fired = alert_events(pipe)[0]
        assert fired["rule"] == "quality" and fired["condition"] == "expectation_pass_rate_below"
        assert fired["dataset"] == "orders" and fired["value"] == 0.5 and fired["threshold"] == 0.9
        assert fired["destinations"] == ["hook", "cmd", "bus"]
        assert len(receiver.bodies) == 1
        path, content_type, body = receiver.bodies[0]
        assert path == "/services/T0/B0/hook-token" and content_type == "application/json"
        assert body["text"] == fired["message"]  # Slack's field
        assert {k: body[k] for k in fired} == fired  # the event's fields, as the event log has them
        commands = [json.loads(line) for line in received_by_command.read_text().splitlines()]
        assert commands == [body]
        on_topic = read_topic_to_end(bootstrap, alerts_topic)
        assert [json.loads(m.value()) for m in on_topic] == [body]
        assert on_topic[0].key() == b"quality/orders"

        status = json.loads(run_sluice("status", pipe, "--format", "json").stdout)
        assert status["run"]["state"] == "NOT RUNNING" and status["active_alerts"] == 1
        orders = next(d for d in status["datasets"] if d["name"] == "orders")
        assert [(a["rule"], a["since_ms"]) for a in orders["active_alerts"]] == [("quality", fired["since_ms"])]
        text = run_sluice("status", pipe)
        assert "orders ALERT quality FIRING since" in text.stdout

        # Still failing in a new run: the state comes back from the event log, nothing is sent.
        produce_values(bootstrap, topic, [{"id": i, "amount": -2.0} for i in range(20, 30)])
        second = run_sluice("run", pipe, "--once")
        assert second.returncode == 0, second.stderr
        assert [a["state"] for a in alert_events(pipe)] == ["FIRING"]
        assert len(receiver.bodies) == 1 and len(received_by_command.read_text().splitlines()) == 1

        # Good records: RESOLVED, delivered, and status has no active alert left.
        produce_values(bootstrap, topic, [{"id": i, "amount": 3.0} for i in range(30, 40)])
        third = run_sluice("run", pipe, "--once")
        assert third.returncode == 0, third.stderr
        events = alert_events(pipe)
        assert [a["state"] for a in events] == ["FIRING", "RESOLVED"]
        assert events[1]["value"] == 1.0 and events[1]["since_ms"] == fired["since_ms"]
        assert [b["state"] for _, _, b in receiver.bodies] == ["FIRING", "RESOLVED"]
        assert len(received_by_command.read_text().splitlines()) == 2
        assert [json.loads(m.value())["state"] for m in read_topic_to_end(bootstrap, alerts_topic)] == \
            ["FIRING", "RESOLVED"]
        status = json.loads(run_sluice("status", pipe, "--format", "json").stdout)
        assert status["active_alerts"] == 0
        assert alert_events(pipe, "alert_delivery") == []
        assert DeltaTable(str(pipe / "data" / "tables" / "orders")).to_pyarrow_table().num_rows == 40
    finally:
        receiver.close()

    # validate checks the rules against the SQL: an unknown dataset names the rule's line.
    yaml = (pipe / "pipeline.yaml").read_text().replace("datasets: [orders]", "datasets: [ordres]")
    (pipe / "pipeline.yaml").write_text(yaml)
    refused = run_sluice("validate", pipe)
    assert refused.returncode == 1
    assert "pipeline.yaml:11:7: alert rule 'quality' names dataset 'ordres', which the pipeline does not define" \
        in refused.stderr


class Trickler:
    """An HTTP server that answers every request with a status line and then one header line every
    100 ms for as long as the test runs: cpp-httplib's per-read timeout never expires on it (a
    run delivering to it used to hang for ever)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.1)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            threading.Thread(target=self.trickle, args=(conn,), daemon=True).start()

    def trickle(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            while not self.stopped.wait(0.1):
                conn.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass  # sluice gave up and closed it
        finally:
            conn.close()

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.listener.close()


def test_a_webhook_that_hangs_trickles_or_refuses_is_recorded_and_the_pipeline_goes_on(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    # Accepts connections (the kernel's backlog) and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    trickler = Trickler()
    # A port nobody listens on: connections are refused.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    pipe = kafka_pipeline(tmp_path, "hanging", bootstrap, extra=f"""alerts:
  destinations:
    silent: {{webhook: {{url: "http://127.0.0.1:{silent.getsockname()[1]}/hooks/secret-path-token", timeout: 300ms}}}}
    trickle: {{webhook: {{url: "{trickler.url}/hooks/secret-path-token", timeout: 300ms}}}}
    refused: {{webhook: {{url: "http://127.0.0.1:{closed_port}/hooks/secret-path-token", timeout: 300ms}}}}
  rules:
    - {{name: quality, expectation_pass_rate_below: 1, notify: [silent, trickle, refused]}}
""")
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    try:
        produce_values(bootstrap, topic, [{"id": i, "amount": -1.0 if i == 0 else 1.0} for i in range(10)])
        # The trickler never stops while the run lasts: the run ending at all is the check (it
        # hung before), then the failure says the whole request's timeout cut it off.
        run = run_sluice("run", pipe, "--once", timeout=120)
    finally:
        silent.close()
        trickler.close()
    assert run.returncode == 0, run.stderr
    assert DeltaTable(str(pipe / "data" / "tables" / "orders")).to_pyarrow_table().num_rows == 10
    assert [a["state"] for a in alert_events(pipe)] == ["FIRING"]
    failures = {f["destination"]: f for f in alert_events(pipe, "alert_delivery")}
    assert set(failures) == {"silent", "trickle", "refused"}
    assert failures["silent"]["kind"] == "webhook" and failures["silent"]["rule"] == "quality"
    assert failures["silent"]["error"].endswith(": no answer within 300 ms"), failures["silent"]
    assert failures["trickle"]["error"] == f"webhook {trickler.url}/<redacted>: no answer within 300 ms"
    assert "Connection" in failures["refused"]["error"]
    assert f"http://127.0.0.1:{closed_port}/<redacted>" in failures["refused"]["error"]
    for text in (run.stderr, run.stdout, json.dumps(failures)):
        assert "secret-path-token" not in text


def test_alerts_are_refused_in_a_scale_out_run(tmp_path):
    # Every read_kafka joins a consumer group and the run is continuous: several processes may
    # share the pipeline, each seeing its own partitions; refused before anything is read.
    pipe = kafka_pipeline(tmp_path, "scaled", "127.0.0.1:1", extra="""mode: continuous
alerts:
  rules:
    - {name: failed, flow_failed: true}
""")
    (pipe / "p.sql").write_text(SQL.format(topic="t").replace("topic => 't'", "topic => 't', group_mode => 'subscribe'"))
    run = run_sluice("run", pipe, timeout=60)
    assert run.returncode != 0
    assert "pipeline.yaml:8:7: alerts are not supported in a scale-out run yet" in run.stderr, run.stderr


def test_status_says_running_while_a_run_holds_the_lock_and_not_after_it_died(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "live", bootstrap, extra="mode: continuous\ntrigger_interval: 100ms\n")
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    proc = subprocess.Popen([str(SLUICE), "run", pipe], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:  # the run takes its lock at start: wait for status to see it
            status = json.loads(run_sluice("status", pipe, "--format", "json").stdout)
            if status["run"]["state"] == "RUNNING":
                break
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, status["run"]
        holder = status["run"]["holders"][0]
        assert holder["pid"] == proc.pid and holder["mode"] == "exclusive"
        assert f"RUNNING (pid {proc.pid} on " in run_sluice("status", pipe).stdout
    finally:
        proc.send_signal(signal.SIGKILL)  # dies holding the lock: its record stays behind
        proc.wait(timeout=60)
    assert any((pipe / "data" / "system" / "runs").iterdir())  # the dead run's record
    status = json.loads(run_sluice("status", pipe, "--format", "json").stdout)
    assert status["run"] == {"state": "NOT RUNNING", "holders": []}


def test_schema_drift_fires_when_a_view_gains_a_column_and_resolves_after(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "drifting", bootstrap, extra="""alerts:
  rules:
    - {name: drift, schema_drift: true, datasets: [totals]}
""")
    view = "CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n{more} FROM orders;\n"
    (pipe / "p.sql").write_text(SQL.format(topic=topic) + view.format(more=""))
    produce_values(bootstrap, topic, [{"id": i, "amount": 1.0} for i in range(5)])
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    assert alert_events(pipe) == []  # a new table is not a drift
    # A changed query replaces the view's schema (materialized views are rewritten whole).
    (pipe / "p.sql").write_text(SQL.format(topic=topic) + view.format(more=", sum(amount) AS total"))
    second = run_sluice("run", pipe, "--once")
    assert second.returncode == 0, second.stderr
    fields = DeltaTable(str(pipe / "data" / "tables" / "totals")).to_pyarrow_table().column_names
    assert fields == ["n", "total"]  # deltalake sees the new column
    assert [(a["state"], a["detail"]) for a in alert_events(pipe)] == [("FIRING", "added total double")]
    produce_values(bootstrap, topic, [{"id": 5, "amount": 1.0}])
    third = run_sluice("run", pipe, "--once")
    assert third.returncode == 0, third.stderr
    assert [a["state"] for a in alert_events(pipe)] == ["FIRING", "RESOLVED"]


STRICT = """
CREATE OR REFRESH STREAMING TABLE strict (
  CONSTRAINT tiny EXPECT (amount < {limit}) ON VIOLATION FAIL UPDATE
) AS SELECT e.id, e.amount FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS e FROM STREAM read_kafka(topic => '{topic}'));
"""


def test_a_failed_flow_and_a_slow_one_fire_on_what_their_progress_events_record(tmp_path, bootstrap, new_topic):
    """flow_failed and throughput_below end to end (their evaluation is unit-tested): the run maps
    a FAILED flow_progress event and its rows/s to the rules, the figure compared is the one the
    event log holds (read with deltalake), a failure that repeats in the next run is not announced
    again, and the next COMPLETED update resolves it."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "failing", bootstrap, extra="""alerts:
  rules:
    - {name: failed, flow_failed: true, datasets: [strict]}
    - {name: slow, throughput_below: 1000000000, datasets: [orders]}
""")
    (pipe / "p.sql").write_text(SQL.format(topic=topic) + STRICT.format(topic=topic, limit=50))
    produce_values(bootstrap, topic, [{"id": i, "amount": 10.0 * i} for i in range(10)])  # 50 and up fail `tiny`

    def progress(dataset):
        rows = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
        rows.sort(key=lambda r: (r["timestamp"], r["sequence"]["seq"]))
        return [json.loads(r["details"])["flow_progress"] for r in rows
                if r["event_type"] == "flow_progress" and r["origin"]["dataset_name"] == dataset]

    first = run_sluice("run", pipe, "--once")
    assert first.returncode != 0 and "tiny" in first.stderr  # strict FAILED; orders COMPLETED
    fired = {a["rule"]: a for a in alert_events(pipe)}
    assert set(fired) == {"failed", "slow"} and {a["state"] for a in fired.values()} == {"FIRING"}
    failed_update = progress("strict")[-1]
    assert failed_update["status"] == "FAILED"
    assert fired["failed"]["dataset"] == "strict" and fired["failed"]["value"] is None
    error_line = failed_update["error"]["message"].splitlines()[0]
    assert "tiny" in error_line and len(error_line) < 499  # not cut (the cut is unit-tested)
    assert fired["failed"]["detail"] == error_line
    orders = progress("orders")[-1]
    assert orders["status"] == "COMPLETED" and orders["metrics"]["num_input_rows"] == 10
    assert fired["slow"]["dataset"] == "orders" and fired["slow"]["unit"] == "rows/s"
    assert fired["slow"]["value"] == orders["metrics"]["processed_rows_per_second"] > 0
    assert fired["slow"]["threshold"] == 1000000000

    # The same records fail strict again (its failed update committed nothing): still FIRING, not
    # announced twice; orders read nothing (idle is not slow): its alert stays as it was.
    second = run_sluice("run", pipe, "--once")
    assert second.returncode != 0
    assert progress("strict")[-1]["status"] == "FAILED"
    assert [(a["rule"], a["state"]) for a in alert_events(pipe)] == [(r, "FIRING") for r in fired]

    # A looser expectation: strict COMPLETES and its alert resolves.
    (pipe / "p.sql").write_text(SQL.format(topic=topic) + STRICT.format(topic=topic, limit=1000))
    third = run_sluice("run", pipe, "--once")
    assert third.returncode == 0, third.stderr
    assert progress("strict")[-1]["status"] == "COMPLETED"
    assert [(a["rule"], a["state"]) for a in alert_events(pipe)] == \
        [(r, "FIRING") for r in fired] + [("failed", "RESOLVED")]
    assert DeltaTable(str(pipe / "data" / "tables" / "strict")).to_pyarrow_table().num_rows == 10
