"""The business-KPI panel's configuration and API (pipeline.yaml `serve: {kpis: [...]}`):
`sluice validate` and `sluice serve` refuse a KPI that cannot be charted, naming its
pipeline.yaml line, and /api/kpis/<name> answers a materialized view's columns as deltalake
reads the table (x ascending, the greatest `limit` x; rows without an x skipped). The dashboard's
panel is checked in a browser by test_dashboard.py."""
import datetime
import json

import pyarrow.parquet as pq
from deltalake import DeltaTable

from conftest import run_sluice
from test_serve import get, start, stop
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE orders AS SELECT e.id, e.region, e.amount, e.ts, e.ok FROM (
  SELECT from_json(CAST(value AS STRING), 'id BIGINT, region STRING, amount DOUBLE, ts TIMESTAMP, ok BOOLEAN') AS e
  FROM STREAM read_kafka(topic => '{topic}'));
CREATE MATERIALIZED VIEW daily AS
  SELECT CAST(ts AS DATE) AS day, sum(amount) AS revenue, count(*) AS n FROM orders GROUP BY 1;
CREATE MATERIALIZED VIEW by_region AS SELECT region, sum(amount) AS revenue FROM orders GROUP BY region;
CREATE MATERIALIZED VIEW by_ok AS SELECT ok, count(*) AS n FROM orders GROUP BY ok;
CREATE VIEW recent AS SELECT id, amount FROM orders;
"""


def kpi_pipeline(path, bootstrap, kpis, topic="never-produced"):
    """A pipeline whose serve.kpis is `kpis` (one YAML line per entry); returns (folder, the
    pipeline.yaml line of each entry)."""
    pipe = kafka_pipeline(path, "kp", bootstrap, extra="serve:\n  kpis:\n" + "".join(f"    - {k}\n" for k in kpis))
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    lines = (pipe / "pipeline.yaml").read_text().splitlines()
    return pipe, [i + 1 for i, line in enumerate(lines) if line.startswith("    - ")]


def test_validate_and_serve_refuse_a_kpi_that_cannot_be_charted_naming_its_line(tmp_path, bootstrap):
    ok = "{name: revenue, dataset: daily, x: day, y: [revenue, n]}"
    cases = [
        ("{name: a, dataset: nowhere, x: day, y: n}", "KPI 'a' charts dataset 'nowhere', which pipeline 'kp' does not define"),
        ("{name: a, dataset: orders, x: ts, y: amount}", "KPI 'a' charts 'orders', a streaming table"),
        ("{name: a, dataset: recent, x: id, y: amount}", "KPI 'a' charts 'recent', a view"),
        ("{name: a, dataset: daily, x: nope, y: n}", "x column 'nope' is not a column of materialized view 'daily'"),
        ("{name: a, dataset: daily, x: day, y: [n, gone]}", "y column 'gone' is not a column"),
        ("{name: a, dataset: by_region, x: revenue, y: region}", "y column 'region' is STRING; y must be numeric"),
        ("{name: a, dataset: by_ok, x: ok, y: n}", "x column 'ok' is BOOLEAN; x must be a date, timestamp, number or string"),
        ("{name: a, dataset: daily, x: day, y: n, colour: red}", "unknown key 'serve.kpis[].colour'"),
        ("{name: a, dataset: daily, x: day, y: n, kind: pie}", "kind must be line or bar, not 'pie'"),
        ("{name: a, dataset: daily, x: day, y: n, limit: 0}", "limit must be a whole number from 1 to 10000"),
        ("{name: 'a/b', dataset: daily, x: day, y: n}", "KPI name 'a/b' may only use"),
        ("{name: '.', dataset: daily, x: day, y: n}", "KPI name '.' may only use"),
        ("{name: '..', dataset: daily, x: day, y: n}", "must start with a letter, digit or '_'"),
        ("{name: a, dataset: daily, x: day, y: [n, day]}", "column 'day' is named twice among x and y"),
        ("{name: a, dataset: daily, y: n}", "serve.kpis entry needs 'x'"),
    ]
    for i, (entry, words) in enumerate(cases):
        pipe, lines = kpi_pipeline(tmp_path / str(i), bootstrap, [ok, entry])
        checked = run_sluice("validate", pipe, timeout=60)
        assert checked.returncode == 1, (entry, checked.stdout)
        assert words in checked.stderr and f"pipeline.yaml:{lines[1]}:" in checked.stderr, (entry, checked.stderr)
    # A second KPI of the same name points at the first.
    pipe, lines = kpi_pipeline(tmp_path / "twice", bootstrap, [ok, ok])
    checked = run_sluice("validate", pipe, timeout=60)
    assert checked.returncode == 1 and f"KPI 'revenue' is defined twice (first at " in checked.stderr, checked.stderr
    # The server refuses what validate refuses, before it listens.
    pipe, _ = kpi_pipeline(tmp_path / "serve", bootstrap, ["{name: a, dataset: orders, x: ts, y: amount}"])
    served = run_sluice("serve", pipe, "--listen", "127.0.0.1:0", timeout=60)
    assert served.returncode == 1 and "a streaming table" in served.stderr, served.stderr
    pipe, _ = kpi_pipeline(tmp_path / "ok", bootstrap, [ok, "{name: regions, dataset: by_region, x: region, y: revenue}"])
    assert run_sluice("validate", pipe, timeout=60).returncode == 0


def orders():
    """46 orders over 16 days in 3 regions; two without a time (their day is null)."""
    base = datetime.datetime(2026, 11, 1, 9, tzinfo=datetime.timezone.utc)
    out = []
    for i in range(46):
        ts = None if i in (5, 17) else (base + datetime.timedelta(hours=8 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.append({"id": i, "region": ["north", "south", "west"][i % 3], "amount": round(10 + i * 3.25, 2),
                    "ts": ts, "ok": i % 2 == 0})
    return out


def test_kpi_api_answers_the_views_columns_as_deltalake_reads_them(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe, _ = kpi_pipeline(tmp_path, bootstrap, [
        "{name: revenue, title: Daily revenue, dataset: daily, x: day, y: [revenue, n], limit: 5}",
        "{name: regions, dataset: by_region, x: region, y: revenue, kind: bar}",
        "{name: orders, dataset: daily, x: day, y: n}",
    ], topic=topic)
    # Before any run: the KPI is listed, its table not written yet.
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, body = get(url + "/api/kpis/revenue")
        assert code == 200, body
        empty = json.loads(body)
        assert empty["version"] is None and empty["rows"] == 0 and empty["data"] == [[], [], []]
    finally:
        assert stop(proc) == 0
    produce_values(bootstrap, topic, orders())
    ran = run_sluice("run", pipe, timeout=180)
    assert ran.returncode == 0, ran.stderr

    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0")
    try:
        code, _, body = get(url + "/api/kpis")
        assert code == 200
        assert json.loads(body)["kpis"] == [
            {"name": "revenue", "title": "Daily revenue", "dataset": "daily", "x": "day", "y": ["revenue", "n"],
             "kind": "line", "limit": 5},
            {"name": "regions", "title": "regions", "dataset": "by_region", "x": "region", "y": ["revenue"],
             "kind": "bar", "limit": 500},
            {"name": "orders", "title": "orders", "dataset": "daily", "x": "day", "y": ["n"], "kind": "line",
             "limit": 500}]

        # The oracle: deltalake's read of the view, rows with a day, sorted by it, the last 5.
        table = DeltaTable(str(pipe / "data" / "tables" / "daily"))
        rows = sorted((r for r in table.to_pyarrow_table().to_pylist() if r["day"] is not None), key=lambda r: r["day"])
        assert len(rows) == 16
        code, _, body = get(url + "/api/kpis/revenue")
        assert code == 200, body
        kpi = json.loads(body)
        assert kpi["version"] == table.version() and kpi["axis"] == "time" and kpi["columns"] == ["day", "revenue", "n"]
        epoch = datetime.date(1970, 1, 1)
        assert kpi["data"][0] == [(r["day"] - epoch).days * 86400 for r in rows[-5:]]
        assert kpi["data"][1] == [r["revenue"] for r in rows[-5:]]
        assert kpi["data"][2] == [r["n"] for r in rows[-5:]]
        assert (kpi["rows"], kpi["rows_read"], kpi["null_x_rows"], kpi["truncated"]) == (5, 17, 1, True)

        regions = {r["region"]: r["revenue"] for r in
                   DeltaTable(str(pipe / "data" / "tables" / "by_region")).to_pyarrow_table().to_pylist()}
        code, _, body = get(url + "/api/kpis/regions")
        kpi = json.loads(body)
        assert kpi["axis"] == "category" and kpi["truncated"] is False
        assert kpi["data"] == [sorted(regions), [regions[r] for r in sorted(regions)]]

        # Only x's and y's column chunks are decoded (not revenue's): their compressed bytes as
        # pyarrow reads them from the files' footers.
        code, _, body = get(url + "/api/kpis/orders")
        kpi = json.loads(body)
        assert kpi["x_utc"] is True and kpi["data"][1] == [r["n"] for r in rows]
        read = total = 0
        for f in table.file_uris():
            meta = pq.ParquetFile(f.removeprefix("file://")).metadata
            for g in range(meta.num_row_groups):
                for c in range(meta.num_columns):
                    chunk = meta.row_group(g).column(c)
                    total += chunk.total_compressed_size
                    read += chunk.total_compressed_size if chunk.path_in_schema in ("day", "n") else 0
        assert (kpi["column_bytes_read"], kpi["column_bytes_total"]) == (read, total) and 0 < read < total

        code, _, body = get(url + "/api/kpis/nope")
        assert code == 404 and "configured: revenue, regions, orders" in json.loads(body)["error"]
        code, _, body = get(url + "/api/kpis?limit=3")
        assert code == 400 and "unknown parameter 'limit'" in json.loads(body)["error"]
    finally:
        assert stop(proc) == 0
    # With a token, the KPI endpoints need it as the rest of the API does.
    proc, url = start("serve", pipe, "--listen", "127.0.0.1:0", "--serve-token", "kp-secret")
    try:
        assert get(url + "/api/kpis/revenue")[0] == 401
        assert get(url + "/api/kpis/revenue", token="kp-secret")[0] == 200
    finally:
        assert stop(proc) == 0
