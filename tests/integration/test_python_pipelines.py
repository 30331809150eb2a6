"""Python pipelines (DLT's `dlt` API, `pyspark.pipelines`) run by sluice: the .py files go
through the definer (python3 -m sluice._define) and become SQL for the same planner as .sql
files. Oracles: deltalake's change feed, DuckDB, Python models of the snippets' queries.

The seed snippets (python_snippets/) are saved as a user would paste them; the tests fill in
only the connection options (bootstrap servers and topic). multi_hop and fraud_window use the
DataFrame layer (sluice/_define/dataframe.py, functions.py): until it is in the tree they are
skipped; the change-feed snippet and the rest need only `_from_relation` / `_to_sql`, for which a
stand-in is used while the layer is missing."""
import collections
import json
import pathlib
import shutil

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest import ROOT, duckdb_connection, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SNIPPETS = pathlib.Path(__file__).parent / "python_snippets"
HAVE_DATAFRAME = (ROOT / "python" / "sluice" / "_define" / "dataframe.py").exists() and \
    (ROOT / "python" / "sluice" / "_define" / "functions.py").exists()
needs_dataframe = pytest.mark.skipif(not HAVE_DATAFRAME, reason="needs the DataFrame layer "
                                     "(python/sluice/_define/dataframe.py, functions.py: the df branch)")

STAND_IN = '''
class DataFrame:
    def __init__(self, relation, streaming):
        self._relation, self._streaming = relation, streaming
    @classmethod
    def _from_relation(cls, relation, *, streaming, columns=None):
        return cls(relation, streaming)
    def _to_sql(self):
        return "SELECT * FROM " + self._relation
    @property
    def isStreaming(self):
        return self._streaming
'''


@pytest.fixture(scope="module")
def python_env(tmp_path_factory):
    """SLUICE_PYTHONPATH for sluice: the repository's python/, or a copy of it with a stand-in
    of the DataFrame contract while the DataFrame layer is missing."""
    if (ROOT / "python" / "sluice" / "_define" / "dataframe.py").exists():
        return {"SLUICE_PYTHONPATH": str(ROOT / "python")}
    root = tmp_path_factory.mktemp("python")
    shutil.copytree(ROOT / "python" / "sluice", root / "sluice", ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (root / "sluice" / "_define" / "dataframe.py").write_text(STAND_IN)
    return {"SLUICE_PYTHONPATH": str(root)}


def paste(pipe, snippet, bootstrap, topic, topic_in_snippet):
    """The snippet as pipe/<snippet>, with the connection options filled in."""
    text = (SNIPPETS / snippet).read_text()
    servers, subscribe = '"localhost:9092"', f'.option("subscribe", "{topic_in_snippet}")'
    assert text.count(servers) == 1 and text.count(subscribe) == 1
    text = text.replace(servers, json.dumps(bootstrap)).replace(subscribe, f'.option("subscribe", {json.dumps(topic)})')
    (pipe / snippet).write_text(text)


def table(pipe, name):
    return DeltaTable(str(pipe / "data" / "tables" / name)).to_pyarrow_table()


def test_change_feed_snippet_reads_every_insert_of_its_upstream(tmp_path, bootstrap, new_topic, python_env):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "py_cdf", bootstrap)
    paste(pipe, "change_feed.py", bootstrap, topic, "orders")
    produce_values(bootstrap, topic, [{"order": i} for i in range(6)])
    r = run_sluice("run", pipe, "--once", env_extra=python_env)
    assert r.returncode == 0, r.stderr
    produce_values(bootstrap, topic, [{"order": i} for i in range(6, 9)])
    r = run_sluice("run", pipe, "--once", env_extra=python_env)
    assert r.returncode == 0, r.stderr
    # Oracle: deltalake's change feed of the upstream.
    feed = pa.table(DeltaTable(str(pipe / "data" / "tables" / "orders_bronze")).load_cdf(starting_version=0).read_all())
    columns = ["value", "offset", "_change_type", "_commit_version"]
    changes = table(pipe, "orders_changes")

    def rows(t):
        return collections.Counter(zip(*(t.column(c).to_pylist() for c in columns)))
    assert rows(changes) == rows(feed)
    assert sorted(json.loads(v)["order"] for v in changes.column("value").to_pylist()) == list(range(9))


@needs_dataframe
def test_multi_hop_snippet_matches_a_model(tmp_path, bootstrap, new_topic, python_env):
    topic = new_topic(2)
    pipe = kafka_pipeline(tmp_path, "py_medallion", bootstrap)
    paste(pipe, "multi_hop.py", bootstrap, topic, "events")
    events = [{"user_id": None if i % 7 == 0 else f"u{i % 5}", "event_type": ["view", "click", "buy"][i % 3],
               "amount": float(i % 11) - 1.0, "event_time": f"2024-05-01T10:{i % 60:02d}:00Z"} for i in range(60)]
    produce_values(bootstrap, topic, events, partitions=2)
    r = run_sluice("run", pipe, "--once", env_extra=python_env)
    assert r.returncode == 0, r.stderr
    kept = [e for e in events if e["user_id"] is not None]
    silver = table(pipe, "events_silver")
    assert sorted(zip(silver.column("user_id").to_pylist(), silver.column("amount").to_pylist())) == \
        sorted((e["user_id"], e["amount"]) for e in kept)
    model = collections.defaultdict(lambda: [0, 0.0])
    for e in kept:
        model[e["event_type"]][0] += 1
        model[e["event_type"]][1] += e["amount"]
    con = duckdb_connection()
    gold = con.sql(
        f"SELECT event_type, events, revenue FROM delta_scan('{pipe / 'data' / 'tables' / 'revenue_by_type_gold'}')"
    ).fetchall()
    assert {t: (n, pytest.approx(s)) for t, n, s in gold} == {t: (n, s) for t, (n, s) in model.items()}


@needs_dataframe
def test_fraud_window_snippet_matches_a_model(tmp_path, bootstrap, new_topic, python_env):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "py_fraud", bootstrap)
    paste(pipe, "fraud_window.py", bootstrap, topic, "transactions")
    tx = []
    for card, n in (("c1", 5), ("c2", 3), ("c3", 4)):
        tx += [{"card_id": card, "amount": 10.0 + i, "ts": f"2024-05-01T10:0{i % 4}:00Z"} for i in range(n)]
    tx.append({"card_id": "c3", "amount": -1.0, "ts": "2024-05-01T10:01:00Z"})  # dropped by the expectation
    tx.append({"card_id": "c4", "amount": 1.0, "ts": "2024-05-01T10:40:00Z"})   # moves the watermark past 10:05
    produce_values(bootstrap, topic, tx)
    r = run_sluice("run", pipe, "--once", env_extra=python_env)
    assert r.returncode == 0, r.stderr
    counts = collections.Counter(t["card_id"] for t in tx if t["amount"] > 0 and t["ts"] < "2024-05-01T10:05")
    expected = sorted((c, n) for c, n in counts.items() if n > 3)
    alerts = table(pipe, "fraud_alerts")
    assert sorted(zip(alerts.column("card_id").to_pylist(), alerts.column("n").to_pylist())) == expected


def mixed_pipeline(tmp_path, bootstrap, topic, python_source, extra=""):
    pipe = kafka_pipeline(tmp_path, "py_mixed", bootstrap, extra)
    (pipe / "base.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE base AS SELECT e.id, e.name FROM (SELECT from_json(CAST(value AS STRING), "
        f"'id BIGINT, name STRING') AS e FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));\n"
        "CREATE OR REFRESH MATERIALIZED VIEW from_py AS SELECT id, name FROM py_copy WHERE id > 1;\n")
    (pipe / "tables.py").write_text(python_source)
    # A helper script beside the pipeline: never run unless `libraries` names it.
    (pipe / "generate.py").write_text("import pathlib\npathlib.Path(__file__).with_name('ran').write_text('x')\n")
    return pipe


def test_python_and_sql_datasets_read_each_other(tmp_path, bootstrap, new_topic, python_env):
    topic = new_topic(1)
    pipe = mixed_pipeline(tmp_path, bootstrap, topic, "import dlt\n\n\n@dlt.table(comment='copy')\ndef py_copy():\n"
                                                     "    return dlt.read('base')\n")
    r = run_sluice("validate", pipe, env_extra=python_env)
    assert r.returncode == 0, r.stderr
    assert "py_copy (materialized view) <- base" in r.stdout and "from_py (materialized view) <- py_copy" in r.stdout
    g = run_sluice("graph", pipe, env_extra=python_env)
    assert g.returncode == 0 and '"base" -> "py_copy"' in g.stdout, g.stderr
    produce_values(bootstrap, topic, [{"id": 1, "name": "one"}, {"id": 2, "name": "two"}, {"id": 3, "name": "three"}])
    r = run_sluice("run", pipe, "--once", env_extra=python_env)
    assert r.returncode == 0, r.stderr
    con = duckdb_connection()
    rows = con.sql(f"SELECT id, name FROM delta_scan('{pipe / 'data' / 'tables' / 'from_py'}') ORDER BY id").fetchall()
    assert rows == [(2, "two"), (3, "three")]
    assert DeltaTable(str(pipe / "data" / "tables" / "py_copy")).metadata().description == "copy"
    assert not (pipe / "ran").exists()


@pytest.mark.parametrize("source, says", [
    # An error of the generated SQL (a dataset nobody defines) at the decorator's line.
    ("import dlt\n\n\n@dlt.table\ndef py_copy():\n    return dlt.read('nowhere')\n",
     "tables.py:4: error: unknown table 'nowhere'\n  in the SQL generated for @dlt.table py_copy (its line 1, column "),
    # A Python exception at its line, a configuration value in its message redacted.
    ("import dlt\n\nx = spark.conf.get('password')\nraise RuntimeError('cannot use ' + x)\n",
     "tables.py:4: error: RuntimeError: cannot use <redacted>"),
    # A setting sluice cannot honour, refused at the decorator.
    ("import dlt\n\n@dlt.table(spark_conf={'spark.sql.shuffle.partitions': '1'})\ndef py_copy():\n"
     "    return dlt.read('base')\n", "tables.py:3: error: @dlt.table py_copy: spark_conf={...}: Spark settings"),
])
def test_errors_name_the_python_file_and_line(tmp_path, bootstrap, python_env, source, says):
    pipe = mixed_pipeline(tmp_path, bootstrap, "unused", source, "configuration:\n  password: hunter2-secret\n")
    for command in (["validate", pipe], ["run", pipe, "--once"]):
        r = run_sluice(*command, env_extra=python_env)
        assert r.returncode != 0
        assert says in r.stderr, r.stderr
        assert "hunter2" not in r.stderr + r.stdout
    assert not (pipe / "ran").exists()


def test_a_definer_that_does_not_finish_is_stopped_with_what_it_started(tmp_path, bootstrap, python_env):
    pipe = mixed_pipeline(tmp_path, bootstrap, "unused",
                          "import dlt, pathlib, subprocess\n"
                          "child = subprocess.Popen(['sleep', '600'])\n"
                          "pathlib.Path(__file__).with_name('child.pid').write_text(str(child.pid))\n"
                          "while True:\n    pass\n")
    r = run_sluice("validate", pipe, env_extra=dict(python_env, SLUICE_PYTHON_TIMEOUT_MS="1500"))
    assert r.returncode != 0
    assert "did not finish defining the pipeline within 1500 ms and were stopped" in r.stderr, r.stderr
    pid = int((pipe / "child.pid").read_text())
    stat = pathlib.Path(f"/proc/{pid}/stat")
    # Killed with the definer's process group: gone, or a zombie waiting for init to reap it.
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_timeout_that_is_not_a_number_is_refused_not_replaced(tmp_path, bootstrap, python_env):
    pipe = mixed_pipeline(tmp_path, bootstrap, "unused", "import dlt\n")
    for bad in ("12abc", "0", "-5", "99999999999999999999"):
        r = run_sluice("validate", pipe, env_extra=dict(python_env, SLUICE_PYTHON_TIMEOUT_MS=bad))
        assert r.returncode != 0, (bad, r.stdout)
        assert "SLUICE_PYTHON_TIMEOUT_MS=" in r.stderr and "is not a whole number of milliseconds above 0" in r.stderr, r.stderr


def test_libraries_globs_run_the_python_files_they_name(tmp_path, bootstrap, python_env):
    pipe = mixed_pipeline(tmp_path, bootstrap, "unused",
                          "import dlt\n\n\n@dlt.table\ndef py_copy():\n    return dlt.read('base')\n",
                          'libraries:\n  - glob: {include: "*.sql"}\n  - glob: {include: "*.py"}\n')
    r = run_sluice("validate", pipe, env_extra=python_env)
    assert r.returncode == 0, r.stderr
    assert (pipe / "ran").exists()  # generate.py is named by the glob, so it ran
