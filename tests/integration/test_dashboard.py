"""The dashboard at `/` in a real headless Chromium (Debian's `chromium`), driven through the
DevTools protocol over --remote-debugging-pipe (JSON messages on fds 3/4: no WebSocket client,
no extra Python package): the page loads with no console error or uncaught exception, the graph
shows every dataset `/api/datasets` lists, its edge rates and a dataset page's charts follow the
events a continuous `sluice run --serve` appends while more Kafka records arrive, node colours
are the flows' latest status, the alerts panel and the datasets table show the alert events and
the rules firing as the API has them (an alert that fires while the page is open among them),
a dataset page lists its failed update's error with its context stack and its schema history
the columns an update added,
the SLA view compares pipeline.yaml's freshness targets with the status, the KPI panel draws a
materialized view's columns (serve.kpis) as deltalake reads them and redraws when it commits,
and the test takes screenshots (in its tmp dir; SLUICE_DASHBOARD_SCREENSHOT=<path> also writes the graph's there, as for
docs/dashboard.png)."""
import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time

import pytest
from deltalake import DeltaTable

from conftest import run_sluice
from test_serve import get, start, stop
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it)")

SQL = """
CREATE OR REFRESH STREAMING TABLE orders_bronze AS SELECT value.*, _rescued_data
FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'id BIGINT, amount DOUBLE');

CREATE OR REFRESH STREAMING TABLE orders (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT small EXPECT (amount < 1000),
  CONSTRAINT early EXPECT (id IS NULL OR id < 30)
) AS SELECT id, amount FROM STREAM(orders_bronze);

CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(amount) AS amount FROM orders;

CREATE MATERIALIZED VIEW by_bucket AS SELECT id % 5 AS bucket, count(*) AS n, sum(amount) AS amount FROM orders GROUP BY 1;
"""

STRICT = """
CREATE OR REFRESH STREAMING TABLE strict (
  CONSTRAINT tiny EXPECT (amount < {limit}) ON VIOLATION FAIL UPDATE
) AS SELECT id, amount FROM STREAM(orders_bronze);
"""


def records(start, n):
    # Every fifth carries a key the schema does not have: it lands in orders_bronze's _rescued_data.
    return [{"id": None if i % 7 == 0 else i, "amount": float(i * 37 % 1500), **({"note": "x"} if i % 5 == 0 else {})}
            for i in range(start, start + n)]


class Browser:
    """Headless Chromium with one page, spoken to through the DevTools protocol on a pipe."""

    def __init__(self, profile):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def fds():  # the child's fd 3 reads commands, fd 4 writes answers and events
            hi_r, hi_w = os.dup(to_chrome_r) + 100, os.dup(from_chrome_w) + 100
            os.dup2(to_chrome_r, hi_r)
            os.dup2(from_chrome_w, hi_w)
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        # --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=fds, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next = 0
        self._answers = {}
        self._answered = threading.Condition()
        self.events = queue.Queue()
        self.console_errors = []
        self.console = []  # every console message, for the failure messages
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for method in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(method, session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=1280, height=860,
                  deviceScaleFactor=1, mobile=False)

    def _read(self):
        buffer = b""
        while True:
            chunk = os.read(self._from_chrome, 65536)
            if not chunk:
                with self._answered:
                    self._answers[None] = "closed"
                    self._answered.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                raw, buffer = buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "id" in message:
                    with self._answered:
                        self._answers[message["id"]] = message
                        self._answered.notify_all()
                    continue
                method, params = message.get("method"), message.get("params", {})
                if method == "Runtime.exceptionThrown":
                    self.console_errors.append(params["exceptionDetails"].get("exception", {}).get(
                        "description", params["exceptionDetails"].get("text")))
                elif method == "Runtime.consoleAPICalled":
                    text = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                    self.console.append(f"{params.get('type')}: {text}")
                    if params.get("type") in ("error", "assert"):
                        self.console_errors.append(text)
                elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                    self.console_errors.append(f"{params['entry']['text']} ({params['entry'].get('url')})")
                self.events.put(message)

    def call(self, method, session=False, **params):
        self._next += 1
        message = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        with self._answered:
            assert self._answered.wait_for(lambda: self._next in self._answers or None in self._answers, timeout=60), method
            answer = self._answers.pop(self._next, None)
        assert answer is not None, f"chromium closed the pipe during {method}: {self.proc.stderr.read()!r}"
        assert "error" not in answer, (method, answer["error"])
        return answer["result"]

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, (expression, result["exceptionDetails"])
        return result["result"].get("value")

    def wait_for(self, expression, what, timeout=60):
        """Polls the page until `expression` is truthy (the page's own state, not a delay)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() >= deadline:
                page = self.evaluate("JSON.stringify({live: document.getElementById('live').textContent, "
                                     "errors: window.sluice && window.sluice.errors, "
                                     "requests: performance.getEntriesByType('resource').map(e => e.name)})")
                raise AssertionError(f"the page never got to: {what} ({expression}); console: {self.console[-10:]}; "
                                     f"page: {page}")
            time.sleep(0.1)  # a poll interval, not a synchronisation

    def navigate(self, url):
        self.call("Page.navigate", session=True, url=url)

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            os.close(self._to_chrome)


def test_dashboard_shows_the_graph_charts_and_sla_and_follows_new_events(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "shop", bootstrap,
                          extra="mode: continuous\ntrigger_interval: 100ms\n"
                                "serve:\n  freshness_targets: {orders: 10 minutes, totals: 1 ms}\n"
                                "  kpis:\n    - {name: buckets, title: Orders by bucket, dataset: by_bucket, x: bucket, "
                                "y: [n, amount], kind: bar}\n"
                                # `quality` fires on the first records (some amounts reach 1000);
                                # `late_ids` only once ids from 30 on arrive, while the page is open.
                                "alerts:\n  rules:\n"
                                "    - {name: quality, expectation_pass_rate_below: 0.99, expectation: small, "
                                "datasets: [orders]}\n"
                                "    - {name: late_ids, expectation_pass_rate_below: 1, expectation: early, "
                                "datasets: [orders]}\n")
    produce_values(bootstrap, topic, records(0, 30))
    # A triggered run first, in which strict's FAIL UPDATE expectation fails (amounts reach 1,000):
    # its error is what strict's page shows under "Recent errors"; the continuous run (a looser
    # limit) then completes strict.
    # totals has one column less there: the continuous run's first update of it adds `amount`
    # (a schema change its page's schema history shows).
    narrow = SQL.format(topic=topic).replace("count(*) AS n, sum(amount) AS amount FROM orders;", "count(*) AS n FROM orders;")
    assert narrow != SQL.format(topic=topic)
    (pipe / "p.sql").write_text(narrow + STRICT.format(limit=1000))
    failed = run_sluice("run", pipe, "--once")
    assert failed.returncode != 0 and "tiny" in failed.stderr, failed.stderr
    (pipe / "p.sql").write_text(SQL.format(topic=topic) + STRICT.format(limit=2000))
    proc, url = start("run", pipe, "--serve=127.0.0.1:0")
    # A continuous run prints a line per update: read them, or the pipe fills and the run blocks.
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    browser = None
    try:
        # The continuous run's own first records: strict's rows that the triggered run failed to
        # write, in flow_progress events of the continuous run's update (its id from /api/pipeline
        # once that says RUNNING; the triggered run's update ended FAILED).
        def continuous_update():
            pipeline = json.loads(get(url + "/api/pipeline")[2])
            return pipeline["update_id"] if pipeline["state"] == "RUNNING" else None

        def written(dataset, update_id):
            code, _, body = get(url + f"/api/events?dataset={dataset}&type=flow_progress&limit=1000")
            assert code == 200
            return sum(e["details"]["flow_progress"]["metrics"]["num_output_rows"] for e in json.loads(body)["events"]
                       if e["update_id"] == update_id and "metrics" in e["details"]["flow_progress"])

        deadline = time.monotonic() + 60
        update = None
        while update is None or written("strict", update) < len(records(0, 30)):
            assert time.monotonic() < deadline, "the continuous run did not write strict's first records"
            time.sleep(0.2)  # a poll interval, not a synchronisation
            update = update or continuous_update()
        assert written("strict", update) == len(records(0, 30))

        browser = Browser(tmp_path / "chromium-profile")
        browser.navigate(url + "/")
        status = json.loads(get(url + "/api/datasets")[2])
        datasets = sorted(d["name"] for d in status["datasets"])
        assert datasets == ["by_bucket", "orders", "orders_bronze", "strict", "totals"]
        shown = browser.wait_for("document.querySelector('#graph svg')?.dataset.datasets", "the graph drawn")
        assert sorted(shown.split(",")) == datasets
        # Every dataset is a node, with the Kafka topic it reads; an edge per input.
        nodes = browser.evaluate("[...document.querySelectorAll('#graph .node')].map(n => n.dataset.name)")
        assert sorted(nodes) == sorted(datasets + [f"kafka:{topic}"])
        edges = browser.evaluate("[...document.querySelectorAll('#graph .edge')].map(e => e.dataset.from + '>' + e.dataset.to)")
        assert sorted(edges) == sorted([f"kafka:{topic}>orders_bronze", "orders_bronze>orders", "orders>totals",
                                        "orders>by_bucket", "orders_bronze>strict"])
        browser.wait_for("!!document.querySelector('#live.on')", "the live stream open")
        graph_png = browser.screenshot(tmp_path / "graph.png")

        # More records while the page is open: the live stream brings their progress events, and the
        # edge into orders_bronze shows the rows read.
        before = browser.evaluate("window.sluice.eventsReceived")
        renders = browser.evaluate("window.sluice.renders")
        produce_values(bootstrap, topic, records(30, 40))
        browser.wait_for(f"window.sluice.eventsReceived > {before} && window.sluice.renders > {renders} && "
                         "Number(document.querySelector('#graph .edge[data-to=orders_bronze]').dataset.rate) > 0",
                         "new events received and the edge rate shown")
        if os.environ.get("SLUICE_DASHBOARD_SCREENSHOT"):
            # Tall enough for the KPI panel under the graph and its table (docs/dashboard.png).
            browser.call("Emulation.setDeviceMetricsOverride", session=True, width=1280, height=800,
                         deviceScaleFactor=1, mobile=False)
            browser.wait_for("document.querySelector('#graph-kpis .kpi[data-kpi=buckets]')?.dataset.version",
                             "the KPI panel under the graph")
            browser.screenshot(tmp_path / "graph-live.png")
            shutil.copy(tmp_path / "graph-live.png", os.environ["SLUICE_DASHBOARD_SCREENSHOT"])

        # Node colours: each dataset's node has the status of its flow's latest update (/api/flows).
        flows = {f["dataset"]: f["status"] for f in json.loads(get(url + "/api/flows")[2])["flows"]}
        nodes = browser.evaluate("Object.fromEntries([...document.querySelectorAll('#graph .node')].map(n => "
                                 "[n.dataset.name, [n.dataset.state, n.querySelector('rect').getAttribute('fill')]]))")
        assert {name: nodes[name][0] for name in datasets} == {name: flows[name] for name in datasets} and \
            set(flows.values()) == {"COMPLETED"}
        assert {nodes[name][1] for name in datasets} == {"#2e9d57"}  # the COMPLETED green

        # Alerts on the graph page: the panel lists the alert events /api/events has (FIRING and
        # RESOLVED, `late_ids` among them, which came on the live stream after the page loaded),
        # and the datasets table the rules firing now as /api/datasets' active_alerts says. The two
        # fetches and the page's own reads are not one moment (the run goes on; the page reads
        # /api/datasets once per batch of live events), so wait_for retries until they agree.
        browser.wait_for("""(async () => {
            const page = await (await fetch('/api/events?type=alert&limit=20')).json();
            const api = page.events.map(e => [e.id, e.details.alert.state, e.details.alert.rule, e.dataset].join('|')).sort();
            const shown = [...document.querySelectorAll('#alert-events tr[data-id]')]
              .map(r => [r.dataset.id, r.dataset.state, r.dataset.rule, r.dataset.dataset].join('|')).sort();
            const status = await (await fetch('/api/datasets')).json();
            const firing = status.datasets.map(d => d.name + ':' + (d.active_alerts || []).map(a => a.rule).join(',')).sort();
            const cells = [...document.querySelectorAll('#datasets tr[data-dataset]')]
              .map(r => r.dataset.dataset + ':' + r.querySelector('td.alerts').dataset.alerts).sort();
            return api.some(a => a.includes('|FIRING|late_ids|orders')) && JSON.stringify(api) == JSON.stringify(shown)
              && JSON.stringify(firing) == JSON.stringify(cells);
        })()""", "the alert events and the firing rules shown as the API has them")
        alerts = json.loads(get(url + "/api/events?type=alert&limit=20")[2])["events"]
        assert {(a["details"]["alert"]["rule"], a["details"]["alert"]["state"]) for a in alerts} >= \
            {("quality", "FIRING"), ("late_ids", "FIRING")}
        assert browser.evaluate("window.sluice.alertsReceived") > 0  # late_ids came live
        browser.screenshot(tmp_path / "alerts.png")

        # The dataset page: its charts hold one point per progress event, and grow with new ones.
        def progress_events():
            code, _, body = get(url + "/api/events?dataset=orders&type=flow_progress&limit=1000")
            assert code == 200
            return len([e for e in json.loads(body)["events"] if e["details"]["flow_progress"].get("status")])

        known_before = progress_events()
        browser.navigate(url + "/#/dataset/orders")
        browser.wait_for("document.querySelectorAll('.chart').length >= 5", "the dataset page's charts")
        titles = browser.evaluate("[...document.querySelectorAll('.chart')].map(c => c.dataset.title)")
        assert titles == ["Throughput", "Update latency", "Freshness", "Kafka backlog", "Expectation pass rate",
                          "Rescued-data rate"]
        columns = browser.evaluate("[...document.querySelectorAll('#schema tr td:first-child')].map(c => c.textContent)")
        assert columns == ["id", "amount"]
        shown_points = int(browser.evaluate("document.querySelector('.chart[data-title=Throughput]').dataset.points"))
        assert known_before <= shown_points <= progress_events()
        updates = browser.evaluate("window.sluice.chartUpdates")
        produce_values(bootstrap, topic, records(70, 20))
        browser.wait_for(f"window.sluice.chartUpdates > {updates} && "
                         f"Number(document.querySelector('.chart[data-title=Throughput]').dataset.points) > {shown_points}",
                         "the charts updated by live events")
        # The newest progress event the API has reaches the chart, and the x values stay sorted
        # (live events are handled one after another, each at its place by time; uPlot cuts off
        # points after an x that goes back).
        code, _, body = get(url + "/api/events?dataset=orders&type=flow_progress&limit=1000")
        newest_ms = max(e["timestamp_ms"] for e in json.loads(body)["events"] if e["details"]["flow_progress"].get("status"))
        browser.wait_for(f"(document.querySelector('.chart[data-title=Throughput]').xs || []).includes({newest_ms} / 1000)",
                         "the newest event in the chart")
        assert browser.evaluate("document.querySelector('.chart[data-title=Throughput]').xs"
                                ".every((x, i, xs) => i == 0 || xs[i - 1] <= x)") is True
        browser.screenshot(tmp_path / "dataset.png")
        # The latency chart's points are the events' durations, the pass-rate chart's each
        # expectation's passed / checked records of the event at that time (the API's events).
        drawn = browser.evaluate("(() => { const c = t => document.querySelector(`.chart[data-title=\"${t}\"]`); "
                                 "return {lx: c('Update latency').xs, ly: c('Update latency').ys[0], "
                                 "qx: c('Expectation pass rate').xs, qy: c('Expectation pass rate').ys}; })()")
        code, _, body = get(url + "/api/events?dataset=orders&type=flow_progress&limit=1000")
        updates = [e for e in json.loads(body)["events"] if e["details"]["flow_progress"].get("status")]
        durations = {e["timestamp_ms"] / 1000: e["details"]["flow_progress"]["duration_ms"] for e in updates}
        assert drawn["lx"] and all(y == durations[x] for x, y in zip(drawn["lx"], drawn["ly"]))
        rates = {}
        for e in updates:
            if e["timestamp_ms"] / 1000 not in drawn["qx"]:
                continue  # arrived after the chart was read
            for x in e["details"]["flow_progress"]["data_quality"]["expectations"]:
                total = x["passed_records"] + x["failed_records"]
                if total:
                    rates.setdefault(x["name"], {})[e["timestamp_ms"] / 1000] = x["passed_records"] / total * 100
        shown_rates = [{x: y for x, y in zip(drawn["qx"], ys) if y is not None} for ys in drawn["qy"]]
        assert sorted(map(sorted, map(dict.items, shown_rates))) == sorted(map(sorted, map(dict.items, rates.values())))
        assert len(rates) == 3  # has_id, small, early

        # The KPI panel: the points drawn are by_bucket's rows as deltalake reads the version the
        # panel shows; a new commit of by_bucket redraws it with the new version's rows.
        def bucket_rows(version):
            rows = DeltaTable(str(pipe / "data" / "tables" / "by_bucket"), version=version).to_pyarrow_table().to_pylist()
            rows = sorted((r for r in rows if r["bucket"] is not None), key=lambda r: r["bucket"])  # no x: not charted
            return [[r["bucket"] for r in rows], [r["n"] for r in rows], [r["amount"] for r in rows]]

        def panel():
            return browser.evaluate("(() => { const p = document.querySelector('.kpi[data-kpi=buckets]'); return p && "
                                    "{version: p.dataset.version, points: Number(p.dataset.points), xs: p.xs, ys: p.ys,"
                                    " canvas: !!p.querySelector('canvas')}; })()")

        browser.navigate(url + "/#/kpis")
        browser.wait_for("document.querySelector('.kpi[data-kpi=buckets]')?.dataset.version", "the KPI panel drawn")
        first = panel()
        assert first["canvas"] and first["points"] == len(first["xs"]) >= 1
        assert [first["xs"], *first["ys"]] == bucket_rows(int(first["version"]))
        kpi_updates = browser.evaluate("window.sluice.kpiUpdates")
        produce_values(bootstrap, topic, records(90, 15))
        browser.wait_for(f"window.sluice.kpiUpdates > {kpi_updates} && "
                         f"Number(document.querySelector('.kpi[data-kpi=buckets]').dataset.version) > {first['version']}",
                         "the KPI panel redrawn after by_bucket committed")
        later = panel()
        assert [later["xs"], *later["ys"]] == bucket_rows(int(later["version"]))
        assert sum(later["ys"][0]) > sum(first["ys"][0])
        browser.screenshot(tmp_path / "kpis.png")

        # The schema history of orders_bronze (it has _rescued_data): the rate per update drawn is the
        # API's, and its rescued rows add up to the records produced with an unknown key.
        produced = records(0, 105)
        rescued_total = sum("note" in r for r in produced)

        def rescue_history():
            code, _, body = get(url + "/api/schema_history?dataset=orders_bronze")
            assert code == 200, body
            return json.loads(body)["schema_history"]

        deadline = time.monotonic() + 60
        while sum(h["rescued_rows"] for h in rescue_history()) < rescued_total:
            assert time.monotonic() < deadline, rescue_history()
            time.sleep(0.2)  # a poll interval, not a synchronisation
        history = rescue_history()
        assert sum(h["rescued_rows"] for h in history) == rescued_total
        assert sum(h["rescue_rows_written"] for h in history) == len(produced)
        browser.navigate(url + "/#/dataset/orders_bronze")
        rate_chart = "document.querySelector('.chart[data-title=\"Rescued-data rate\"]')"
        browser.wait_for(f"Number({rate_chart}?.dataset.points) == {len(history)}", "the rescued-data rate drawn")
        drawn = browser.evaluate(f"{rate_chart}.ys[0]")
        assert drawn == pytest.approx([h["rescued_rate"] * 100 for h in history])
        assert any(v > 0 for v in drawn)
        browser.screenshot(tmp_path / "schema-history.png")

        # Recent errors: strict's page lists the triggered run's FAILED update, newest first, with
        # its message and its error's context (the stack of pipeline, dataset, flow) as
        # /api/events has them.
        code, _, body = get(url + "/api/events?dataset=strict&level=ERROR&limit=20")
        errors = json.loads(body)["events"]
        assert code == 200 and errors and "tiny" in errors[-1]["message"]
        browser.navigate(url + "/#/dataset/strict")
        browser.wait_for(f"document.querySelectorAll('#errors .error-entry').length == {len(errors)}",
                         "strict's recent errors")
        entry = browser.evaluate("(() => { const e = document.querySelector('#errors .error-entry'); return "
                                 "{text: e.firstChild.textContent, context: JSON.parse(e.querySelector('pre').textContent)}; })()")
        assert entry["text"] == f"{errors[-1]['timestamp']} {errors[-1]['message']}"
        assert entry["context"] == errors[-1]["details"]["flow_progress"]["error"]
        assert any("dataset 'strict'" in line for line in entry["context"]["exceptions"][0]["stack"])
        browser.screenshot(tmp_path / "errors.png")

        # Schema drift: totals' page lists the update that added `amount` as /api/schema_history has it.
        code, _, body = get(url + "/api/schema_history?dataset=totals")
        changed = [h for h in json.loads(body)["schema_history"]
                   if h["columns_added"] or h["columns_removed"] or h["types_changed"]]
        assert code == 200 and [h["columns_added"] for h in changed] == [["amount double"]]
        browser.navigate(url + "/#/dataset/totals")
        browser.wait_for("document.querySelectorAll('#schema-changes tr[data-version]').length == 1", "totals' schema change")
        cells = browser.evaluate("[...document.querySelectorAll('#schema-changes tr[data-version] td')].map(c => c.textContent)")
        assert cells[0] == str(changed[0]["table_version"]) and cells[2:5] == ["amount double", "-", "-"]

        # SLA: orders' 10-minute target is met; totals' 1 ms target cannot be.
        browser.navigate(url + "/#/sla")
        browser.wait_for("document.querySelectorAll('#sla tr[data-dataset]').length == 2", "the SLA table")
        breach = browser.evaluate("Object.fromEntries([...document.querySelectorAll('#sla tr[data-dataset]')]"
                                  ".map(r => [r.dataset.dataset, r.dataset.breach]))")
        assert breach == {"orders": "false", "totals": "true"}
        browser.screenshot(tmp_path / "sla.png")

        assert browser.console_errors == []
        assert graph_png.stat().st_size > 10_000  # a drawn page, not a blank one
    finally:
        if browser:
            browser.close()
        assert stop(proc) == 0
