"""`sluice serve` and `sluice run --serve`: the JSON API says what `sluice status --format json`
says, /metrics row counters equal deltalake row counts and the event log's numbers (read with
Python's json), `promtool check metrics` accepts the exposition, a non-loopback bind needs a
token checked on every request, and a continuous run's counters grow while it runs. No Spark."""
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from conftest import SLUICE, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values
from test_status import event_log

SQL = """
CREATE OR REFRESH STREAMING TABLE orders (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT small EXPECT (amount < 1000)
) TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT e.id, e.amount FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS e FROM STREAM read_kafka(topic => '{topic}'));

CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n FROM orders;
"""
RECORDS = [{"id": None if i % 6 == 0 else i, "amount": float(i * 50)} for i in range(40)]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels)): value} from the exposition text, comments skipped."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def metric(metrics, name, **labels):
    """The value of the one series of `name` whose labels include `labels`."""
    found = [v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def get(url, token=None, method="GET"):
    """(status, content type, body) of a request; errors are answers too."""
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def start(*args, env=None):
    """A sluice process that serves; returns (process, base URL) once it printed the URL."""
    proc = subprocess.Popen([str(SLUICE), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:  # the URL is its first line about serving; EOF if it failed
        if line.startswith("sluice: serving "):
            return proc, line.split()[-1].rstrip("/")
    proc.wait(timeout=30)
    pytest.fail(f"sluice did not serve (exit {proc.returncode}): {proc.stderr.read()}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


def without_clock(status):
    """A status without what depends on the moment it was built."""
    status = json.loads(json.dumps(status))
    for key in ("generated_at", "generated_at_ms"):
        status.pop(key)
    for d in status["datasets"]:
        d.pop("freshness_seconds")
        d.pop("event_time_freshness_seconds")
    return status


def test_api_and_metrics_agree_with_status_deltalake_and_the_event_log(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "served", bootstrap, extra="serve: {cpu_price_per_hour: 0.04}\n")
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    produce_values(bootstrap, topic, RECORDS[:25])
    assert run_sluice("run", pipe, "--once").returncode == 0
    produce_values(bootstrap, topic, RECORDS[25:])
    assert run_sluice("run", pipe, "--once").returncode == 0

    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        # /api/datasets is `sluice status --format json`.
        code, kind, body = get(url + "/api/datasets")
        assert code == 200 and kind.startswith("application/json")
        status = run_sluice("status", pipe, "--format", "json")
        assert status.returncode == 0, status.stderr
        assert without_clock(json.loads(body)) == without_clock(json.loads(status.stdout))

        code, kind, text = get(url + "/metrics")
        assert code == 200 and kind.startswith("text/plain; version=0.0.4")
        metrics = parse_metrics(text)
        events = event_log(pipe)
        orders = DeltaTable(str(pipe / "data" / "tables" / "orders"))
        quarantine = DeltaTable(str(pipe / "data" / "tables" / "orders_quarantine"))
        progress = [e["details"]["flow_progress"] for e in events
                    if e["event_type"] == "flow_progress" and e["origin"]["dataset_name"] == "orders"]
        assert len(progress) == 2
        served = {"pipeline": "served", "dataset": "orders"}
        # Append-only table: the rows ever written are the rows it holds.
        assert metric(metrics, "sluice_flow_output_rows_total", **served) == orders.to_pyarrow_table().num_rows
        assert metric(metrics, "sluice_table_rows", **served) == orders.to_pyarrow_table().num_rows
        assert metric(metrics, "sluice_table_version", **served) == orders.version()
        assert metric(metrics, "sluice_table_files", **served) == len(orders.file_uris())
        assert metric(metrics, "sluice_flow_input_rows_total", **served) == len(RECORDS) == \
            sum(p["metrics"]["num_input_rows"] for p in progress)
        assert metric(metrics, "sluice_flow_dropped_rows_total", **served) == \
            sum(p["metrics"]["num_dropped_rows"] for p in progress) == sum(r["id"] is None for r in RECORDS)
        assert metric(metrics, "sluice_flow_quarantined_rows_total", **served) == quarantine.to_pyarrow_table().num_rows
        for name in ("has_id", "small"):
            for kind_ in ("passed", "failed"):
                want = sum(x[f"{kind_}_records"] for p in progress for x in p["data_quality"]["expectations"]
                           if x["name"] == name)
                assert metric(metrics, f"sluice_expectation_{kind_}_records_total", expectation=name, **served) == want
        assert metric(metrics, "sluice_expectation_failed_records_total", expectation="small", **served) == \
            sum(r["amount"] >= 1000 for r in RECORDS)
        assert metric(metrics, "sluice_flow_updates_total", status="COMPLETED", **served) == 2
        assert metric(metrics, "sluice_kafka_lag_records", topic=topic, partition="0", **served) == 0
        assert metric(metrics, "sluice_pipeline_healthy", pipeline="served") == 1
        assert metric(metrics, "process_resident_memory_bytes") > 0
        # The cost counts the records of a run in this process: `sluice serve` runs none.
        assert not any(n == "sluice_cost_per_million_records" for n, _ in metrics)

        # Table details, the latest progress per flow, filtered events, expectations over time.
        code, _, body = get(url + "/api/datasets/orders")
        details = json.loads(body)
        assert code == 200 and details["version"] == orders.version()
        assert details["num_files"] == len(orders.file_uris())
        assert [c["name"] for c in details["columns"]] == [f.name for f in orders.schema().fields]
        assert details["partition_columns"] == orders.metadata().partition_columns
        assert details["latest_progress"]["details"]["flow_progress"] == progress[-1]
        code, _, body = get(url + "/api/flows")
        flows = {f["dataset"]: f for f in json.loads(body)["flows"]}
        assert code == 200 and flows["orders"]["progress"] == progress[-1] and flows["totals"]["status"] == "COMPLETED"
        code, _, body = get(url + "/api/events?type=flow_progress&dataset=orders&limit=1")
        page = json.loads(body)
        assert code == 200 and page["matched"] == 2 and page["truncated"] is True
        assert [e["details"]["flow_progress"] for e in page["events"]] == progress[-1:]
        code, _, body = get(url + "/api/expectations?dataset=orders&expectation=has_id")
        rows = json.loads(body)["expectations"]
        assert [(r["passed_records"], r["failed_records"]) for r in rows] == \
            [(x["passed_records"], x["failed_records"]) for p in progress for x in p["data_quality"]["expectations"]
             if x["name"] == "has_id"]
        code, _, body = get(url + "/api/pipeline")
        assert code == 200 and json.loads(body)["name"] == "served" and json.loads(body)["state"] == "COMPLETED"

        # Errors: JSON, naming what is wrong.
        for path, want_code, word in [("/api/events?limit=0", 400, "limit"), ("/api/events?since=soon", 400, "since"),
                                      ("/api/flows?x=1", 400, "'x'"), ("/api/nope", 404, "/api/nope"),
                                      ("/api/datasets/nope", 404, "nope")]:
            code, kind, body = get(url + path)
            assert code == want_code and kind.startswith("application/json"), path
            assert word in json.loads(body)["error"], (path, body)
        code, _, body = get(url + "/api/datasets", method="POST")
        assert code == 405 and "GET" in json.loads(body)["error"]
    finally:
        assert stop(proc) == 0
    # Last, so a machine without promtool still ran every other check.
    if shutil.which("promtool") is None:
        pytest.skip("promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)")
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_non_loopback_needs_a_token_checked_on_every_request(tmp_path, bootstrap):
    pipe = kafka_pipeline(tmp_path, "guarded", bootstrap)
    (pipe / "p.sql").write_text("CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                "read_kafka(topic => 'never-produced');")
    refused = run_sluice("serve", pipe, "--listen", "0.0.0.0:0", timeout=60)
    assert refused.returncode == 1 and "token" in refused.stderr and "0.0.0.0:0" in refused.stderr
    bad = run_sluice("serve", pipe, "--listen", "somewhere:80", timeout=60)
    assert bad.returncode == 1 and "somewhere:80" in bad.stderr

    secret = "s3cr3t-token-value"
    env = dict(__import__("os").environ, SLUICE_SERVE_TOKEN=secret)
    proc, url = start("serve", pipe, "--listen", "0.0.0.0:0", env=env)
    try:
        local = re.sub(r"//0\.0\.0\.0:", "//127.0.0.1:", url)
        code, _, body = get(local + "/api/pipeline")
        assert code == 401 and "Bearer" in json.loads(body)["error"]
        assert get(local + "/metrics", token="wrong")[0] == 401
        assert get(local + "/metrics", token=secret[:-1])[0] == 401
        code, _, body = get(local + "/api/pipeline", token=secret)
        assert code == 200 and json.loads(body)["state"] == "never run"
        # The token split: the dashboard's own files are public (they hold no pipeline data), with a
        # CSP and nosniff; every /api path, the live stream among them, needs the token.
        for path in ["/", "/index.html", "/app.js", "/app.css"]:
            with urllib.request.urlopen(local + path, timeout=60) as r:
                assert r.status == 200 and r.read()
                assert r.headers["Content-Security-Policy"].startswith("default-src 'self'")
                assert r.headers["X-Content-Type-Options"] == "nosniff"
        for path in ["/api/stream", "/api/events", "/api/graph", "/api/datasets", "/api", "/nowhere.js"]:
            code, _, body = get(local + path)
            assert code == 401 and "Bearer" in json.loads(body)["error"], path
        conn, live = open_stream(local, {"Accept": "text/event-stream", "Authorization": "Bearer wrong"})
        assert live.status == 401
        conn.close()
        conn, live = open_stream(local, {"Authorization": f"Bearer {secret}"})
        assert live.status == 200 and live.headers["Content-Type"].startswith("text/event-stream")
        conn.close()
        # The same port again: refused, naming the address.
        port = url.rsplit(":", 1)[1]
        taken = run_sluice("serve", pipe, "--listen", f"0.0.0.0:{port}", "--serve-token", "x", timeout=60)
        assert taken.returncode == 1 and f"0.0.0.0:{port}" in taken.stderr and "in use" in taken.stderr
    finally:
        assert stop(proc) == 0
    out, err = proc.communicate()
    assert secret not in out and secret not in err


def test_run_serve_answers_while_a_continuous_run_goes_on(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "live", bootstrap,
                          extra="mode: continuous\ntrigger_interval: 100ms\nserve: {cpu_price_per_hour: 0.04}\n")
    (pipe / "p.sql").write_text(f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                f"read_kafka(topic => '{topic}');")
    proc, url = start("run", pipe, "--serve=127.0.0.1:0")
    try:
        def written():
            code, _, text = get(url + "/metrics")
            assert code == 200
            series = [v for (n, ls), v in parse_metrics(text).items()
                      if n == "sluice_flow_output_rows_total" and ("dataset", "raw") in ls]
            return (series[0] if series else 0), parse_metrics(text)

        def wait_for(rows):
            deadline = time.monotonic() + 90
            while True:
                got, metrics = written()
                if got == rows:
                    return metrics
                assert got < rows and time.monotonic() < deadline, f"{got} rows counted, waiting for {rows}"
                time.sleep(0.2)  # a poll interval, not a synchronisation

        produce_values(bootstrap, topic, [b"a"] * 30, partitions=2)
        wait_for(30)
        produce_values(bootstrap, topic, [b"b"] * 45, partitions=2)
        metrics = wait_for(75)
        assert DeltaTable(str(pipe / "data" / "tables" / "raw")).to_pyarrow_table().num_rows == 75
        assert metric(metrics, "process_cpu_seconds_total") > 0
        assert metric(metrics, "sluice_cost_per_million_records", pipeline="live") > 0
        code, _, body = get(url + "/api/pipeline")
        assert code == 200 and json.loads(body)["state"] == "RUNNING"
        assert json.loads(body)["served_by"] == "sluice run --serve"
    finally:
        assert stop(proc) == 0
    out, _ = proc.communicate()
    assert "sluice: stopped" in out
    with pytest.raises(urllib.error.URLError):  # the server stopped with the run
        urllib.request.urlopen(url + "/api/pipeline", timeout=10)


def proc_status(pid, field):
    """A field of /proc/<pid>/status in KiB (VmHWM: peak RSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def raw_request(port, head):
    """A socket that sent `head` (request line and headers)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.sendall(head.encode())
    return s


def read_answer(s):
    """Everything the server sends until it closes the connection."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out.decode(errors="replace")


def test_refused_requests_are_answered_before_any_body_is_read(tmp_path, bootstrap):
    pipe = kafka_pipeline(tmp_path, "bodies", bootstrap)
    (pipe / "p.sql").write_text("CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                "read_kafka(topic => 'never-produced');")
    secret = "t0ken"
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0", env=dict(os.environ, SLUICE_SERVE_TOKEN=secret))
    port = int(url.rsplit(":", 1)[1])
    try:
        before = proc_status(proc.pid, "VmHWM")
        # 1.5 GB declared, no token: 401 at once, the connection closed, the body never read.
        s = raw_request(port, "POST /api/datasets HTTP/1.1\r\nHost: x\r\nContent-Length: 1500000000\r\n\r\n")
        sent = 0
        chunk = b"x" * (1 << 20)
        try:
            while sent < (64 << 20):
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:  # the server closed the connection: what is expected
            pass
        try:
            answer = read_answer(s)
        except OSError:  # reset: the answer may be lost with the unread body
            answer = ""
        s.close()
        assert sent < (64 << 20), "the server kept reading a refused request's body"
        assert answer == "" or answer.startswith("HTTP/1.1 401"), answer[:200]
        # Peak RSS bounded: the refused body was never buffered.
        assert proc_status(proc.pid, "VmHWM") - before < 16 * 1024, (before, proc_status(proc.pid, "VmHWM"))
        # The answer itself, for a request that sent only its headers.
        s = raw_request(port, "POST /api/datasets HTTP/1.1\r\nHost: x\r\nContent-Length: 1500000000\r\n\r\n")
        answer = read_answer(s)
        s.close()
        assert answer.startswith("HTTP/1.1 401") and "Bearer" in answer, answer[:300]
        # With the token: another method is 405 and a GET with a body 413, both unread.
        auth = f"Authorization: Bearer {secret}\r\n"
        s = raw_request(port, f"PUT /api/datasets HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1000000\r\n\r\n")
        answer = read_answer(s)
        s.close()
        assert answer.startswith("HTTP/1.1 405") and "Allow: GET, HEAD" in answer, answer[:300]
        s = raw_request(port, f"GET /metrics HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 1000000\r\n\r\n")
        answer = read_answer(s)
        s.close()
        assert answer.startswith("HTTP/1.1 413"), answer[:300]
        # RFC 7235: the scheme is case-insensitive.
        request = urllib.request.Request(url + "/api/pipeline")
        request.add_header("Authorization", f"bearer {secret}")
        with urllib.request.urlopen(request, timeout=60) as r:
            assert r.status == 200 and json.loads(r.read())["name"] == "bodies"
        assert get(url + "/api/pipeline", token=secret + "x")[0] == 401
    finally:
        assert stop(proc) == 0


def test_idle_connections_neither_block_requests_nor_hold_descriptors(tmp_path, bootstrap):
    pipe = kafka_pipeline(tmp_path, "idle", bootstrap)
    (pipe / "p.sql").write_text("CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                "read_kafka(topic => 'never-produced');")
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    port = int(url.rsplit(":", 1)[1])
    idle = []
    try:
        baseline = open_fds(proc.pid)
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=60))
        # A real request is answered while 300 connections sit idle.
        code, _, body = get(url + "/api/pipeline")
        assert code == 200 and json.loads(body)["name"] == "idle"
        held = open_fds(proc.pid) - baseline
        assert held <= 200, f"the server holds {held} descriptors for 300 idle connections"
        # Every idle connection is closed by the server (EOF or a 503 then EOF): recv returns when
        # it is, so this waits on the server, not on a clock.
        for s in idle:
            answer = read_answer(s)
            assert answer == "" or answer.startswith("HTTP/1.1 503"), answer[:200]
        assert get(url + "/api/pipeline")[0] == 200
        # The server's descriptors for them are gone (it closes its side first; a socket fd
        # is released at once by close, so no wait is needed).
        assert open_fds(proc.pid) <= baseline + 2, (baseline, open_fds(proc.pid))
    finally:
        for s in idle:
            s.close()
        assert stop(proc) == 0


def test_a_bare_serve_takes_no_value(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "flags", bootstrap)
    (pipe / "p.sql").write_text(f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                f"read_kafka(topic => '{topic}');")
    # `--serve` before the folder: the folder is not taken as its address.
    done = run_sluice("run", "--serve=127.0.0.1:0", pipe, "--once")
    assert done.returncode == 0 and "sluice: serving http://127.0.0.1:" in done.stdout, done.stderr
    done = run_sluice("run", "--serve", pipe, "--once")
    assert "pipeline-dir is required" not in done.stderr
    # The default port may be taken on a shared machine; either it served there or it said so.
    assert ("serving http://127.0.0.1:8080/" in done.stdout) or ("127.0.0.1:8080" in done.stderr), done.stderr
    # `--serve ADDR` (a space) is refused, naming the form to write.
    refused = run_sluice("run", pipe, "--serve", "127.0.0.1:0", "--once")
    assert refused.returncode == 1 and "--serve=127.0.0.1:0" in refused.stderr, refused.stderr


def open_stream(url, headers=None, path="/api/stream"):
    """A GET of the live stream: (connection, response) once the headers arrived."""
    import http.client
    host, port = url.split("//")[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request("GET", path, headers=headers or {})
    return conn, conn.getresponse()


def stream_events(response):
    """The events of an SSE response as (id, data as JSON), in order; comments skipped."""
    event_id, data = None, []
    while True:
        line = response.readline()
        assert line, "the stream ended"
        line = line.decode().rstrip("\n")
        if line == "":
            if data:
                yield event_id, json.loads("\n".join(data))
            event_id, data = None, []
        elif line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data.append(line[6:])


def test_stream_sends_appended_events_resumes_after_an_id_and_is_bounded(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "streamed", bootstrap, extra="mode: continuous\ntrigger_interval: 100ms\n")
    (pipe / "p.sql").write_text(f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM "
                                f"read_kafka(topic => '{topic}');")
    proc, url = start("run", pipe, "--serve=127.0.0.1:0")
    streams = []
    try:
        conn, live = open_stream(url, path="/api/stream?dataset=raw&type=flow_progress")
        streams.append(conn)
        assert live.status == 200 and live.headers["Content-Type"].startswith("text/event-stream")
        produce_values(bootstrap, topic, [b"x"] * 20)
        received, written = [], 0
        for event_id, event in stream_events(live):  # ends by pytest-timeout if nothing comes
            assert event["dataset"] == "raw" and event["event_type"] == "flow_progress" and event["stream_id"] == event_id
            received.append(event)
            written += event["details"]["flow_progress"]["metrics"]["num_output_rows"]
            if written == 20:
                break
        assert written == 20  # every row written was announced, none twice

        # The stream said what the event log holds (read with deltalake once the run flushed
        # them): the same progress details, in the log's order.
        def logged():
            return [e["details"]["flow_progress"] for e in event_log(pipe)
                    if e["event_type"] == "flow_progress" and e["origin"]["dataset_name"] == "raw"]
        code, _, body = get(url + "/api/events?dataset=raw&type=flow_progress&limit=1000")
        page = json.loads(body)["events"]
        ids = [e["id"] for e in page]
        assert [e["id"] for e in received] == ids[ids.index(received[0]["id"]):][:len(received)]
        assert [e["details"]["flow_progress"] for e in received] == \
            logged()[ids.index(received[0]["id"]):][:len(received)]

        # Last-Event-ID resumes right after that event, also from before this stream began: the
        # next event committed after it, which the log then holds right after it.
        conn, resumed = open_stream(url, {"Last-Event-ID": received[0]["stream_id"]},
                                    "/api/stream?dataset=raw&type=flow_progress")
        streams.append(conn)
        _, first = next(stream_events(resumed))
        ids = [e["id"] for e in json.loads(get(url + "/api/events?dataset=raw&type=flow_progress&limit=1000")[2])["events"]]
        assert first["id"] == ids[ids.index(received[0]["id"]) + 1]

        # Another writer's event stamped earlier than those streamed already, committed later (a
        # scale-out worker flushing its buffer): the stream follows the log's commits, so it comes
        # (review finding 1: a cursor in time order skipped it for good).
        conn, other = open_stream(url, path="/api/stream?type=other_writer")
        streams.append(conn)
        log_path = str(pipe / "data" / "system" / "event_log")
        schema = pa.schema(DeltaTable(log_path).schema().to_arrow())
        row = {"id": "00000000-0000-0000-0000-000000000001", "sequence": {"update_id": "other", "seq": 0},
               "origin": {"pipeline_name": "streamed", "update_id": "other", "flow_name": None, "dataset_name": None},
               "timestamp": datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc), "level": "INFO",
               "event_type": "other_writer", "message": "stamped long ago", "details": "{}"}
        write_deltalake(log_path, pa.Table.from_pylist([row], schema=schema), mode="append")
        _, late = next(stream_events(other))  # ends by pytest-timeout if it never comes
        assert late["message"] == "stamped long ago" and late["timestamp_ms"] == 946684800000

        # Refusals: an unknown parameter or id (400), more than 8 streams at once (503).
        for path, headers, word in [("/api/stream?flow=raw", {}, "'flow'"),
                                    ("/api/stream", {"Last-Event-ID": "nonsense"}, "nonsense")]:
            conn, r = open_stream(url, headers, path)
            assert r.status == 400 and word in json.loads(r.read())["error"]
            conn.close()
        while len(streams) < 8:
            conn, r = open_stream(url)
            assert r.status == 200
            streams.append(conn)
        conn, r = open_stream(url)
        assert r.status == 503 and "too many live streams" in json.loads(r.read())["error"]
        conn.close()
        # A closed stream frees its place (the server notices the client gone within a poll).
        streams.pop().close()
        deadline = time.monotonic() + 30
        while True:
            conn, r = open_stream(url)
            if r.status == 200:
                streams.append(conn)
                break
            conn.close()
            assert time.monotonic() < deadline, "a closed stream kept its place"
            time.sleep(0.2)  # a poll interval, not a synchronisation
    finally:
        for conn in streams:
            conn.close()
        assert stop(proc) == 0  # live streams end with the server


def test_freshness_targets_name_stored_datasets_in_validate_and_serve(tmp_path, bootstrap):
    """serve.freshness_targets is checked by `sluice validate` too, and a view (not stored, no
    freshness) is refused rather than always shown breached (review finding 5, dbfix)."""
    sql = ("CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM read_kafka(topic => 'never-produced');\n"
           "CREATE VIEW recent AS SELECT value FROM raw;\n")
    cases = [("{nowhere: 1 minute}", "'nowhere', which pipeline"), ("{recent: 1 minute}", "'recent', a view")]
    for i, (targets, words) in enumerate(cases):
        pipe = kafka_pipeline(tmp_path / str(i), "fresh", bootstrap, extra=f"serve:\n  freshness_targets: {targets}\n")
        (pipe / "p.sql").write_text(sql)
        checked = run_sluice("validate", pipe, timeout=60)
        assert checked.returncode == 1 and words in checked.stderr, checked.stderr
        served = run_sluice("serve", pipe, "--listen", "127.0.0.1:0", timeout=60)
        assert served.returncode == 1 and words in served.stderr, served.stderr
    pipe = kafka_pipeline(tmp_path / "ok", "fresh", bootstrap, extra="serve:\n  freshness_targets: {raw: 1 minute}\n")
    (pipe / "p.sql").write_text(sql)
    assert run_sluice("validate", pipe, timeout=60).returncode == 0
