"""examples/medallion_python (DLT's Python API) against its SQL twin examples/medallion: both
read the same topics (tools/demo_events.py: malformed JSON, rows failing expectations,
duplicates, late readings), each on its own storage, one triggered update per wave; then every
table and side table of one equals the other's as DuckDB's delta_scan reads them (columns,
types, order, rows) and as deltalake reads their metadata (schema with nullability, partition
columns, comment, properties), and `sluice graph` gives both the same graph."""
import json
import re
import shutil
import sys
import time

from deltalake import DeltaTable

from conftest import ROOT, duckdb_connection, run_sluice
from test_medallion_example import create_topics
from test_sql_pipeline_e2e import produce_values

sys.path.insert(0, str(ROOT / "tools"))
import demo_events  # noqa: E402

COUNT = 300           # records per topic and wave: each fault occurs a few times (asserted below)
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
# Columns stamped with the wall-clock time a row was set aside: equal in schema, not in value.
STAMPED = {"_dead_lettered_at", "_quarantined_at"}


def copy_pipeline(example, folder, bootstrap, prefix):
    shutil.copytree(ROOT / "examples" / example, folder, ignore=shutil.ignore_patterns("data"))
    yaml = (folder / "pipeline.yaml").read_text()
    yaml = yaml.replace("bootstrap.servers: 127.0.0.1:9092", f'bootstrap.servers: "{bootstrap}"')
    yaml = yaml.replace('topic_prefix: ""', f'topic_prefix: "{prefix}"')
    (folder / "pipeline.yaml").write_text(yaml)
    return folder


def graph_without_places(pipe):
    """`sluice graph --format json` without where each dataset is defined (file and line)."""
    got = run_sluice("graph", "--format", "json", pipe)
    assert got.returncode == 0, got.stderr
    graph = json.loads(got.stdout)
    for d in graph["datasets"] + graph.get("sinks", []):
        assert d.pop("file").endswith(".py" if pipe.name == "python" else ".sql"), d
        d.pop("line")
    return graph


def table_dirs(pipe):
    return sorted(p.name for p in (pipe / "data" / "tables").iterdir())


def described(con, path):
    return con.sql(f"DESCRIBE SELECT * FROM delta_scan('{path}')").fetchall()


def rows(con, path, columns):
    kept = ", ".join(f'"{c}"' for c in columns if c not in STAMPED)
    return con.sql(f"SELECT {kept} FROM delta_scan('{path}') ORDER BY ALL").fetch_arrow_table()


def test_python_twin_gives_the_sql_pipelines_tables(tmp_path, bootstrap):
    prefix = f"tw{time.time_ns() % 10**9}-"
    create_topics(bootstrap, prefix)
    sql = copy_pipeline("medallion", tmp_path / "sql", bootstrap, prefix)
    py = copy_pipeline("medallion_python", tmp_path / "python", bootstrap, prefix)

    assert graph_without_places(py) == graph_without_places(sql)

    waves = [demo_events.wave(7, i, COUNT, START_MS + i * COUNT * demo_events.STEP_MS) for i in range(2)]
    for kind in ("malformed", "duplicate", "late", "out_of_range", "no_user", "unknown_type"):
        assert any(fate == kind for w in waves for t in demo_events.TOPICS for _, fate, *_ in w[t]), kind
    summaries = {sql: [], py: []}
    for w in waves:
        for topic in demo_events.TOPICS:
            produce_values(bootstrap, prefix + topic, [payload for payload, *_ in w[topic]])
        for pipe in (sql, py):
            run = run_sluice("run", pipe, "--once")
            assert run.returncode == 0, run.stderr
            assert run.stderr == ""
            # Each dataset's counts (read, written, dropped, quarantined, late, duplicate, failures
            # per expectation), its table version aside.
            summaries[pipe].append(sorted(re.sub(r", table version \d+", "", line) for line in run.stdout.splitlines()
                                          if "(streaming table)" in line or "(materialized view)" in line))
            assert len(summaries[pipe][-1]) == 9, run.stdout
    assert summaries[py] == summaries[sql]

    tables = table_dirs(sql)
    assert table_dirs(py) == tables
    want = demo_events.model(waves)["rows"]  # the generator's own count: no table is empty by accident
    side = [t for t in tables if t.endswith(("_dead_letter", "_quarantine", "_late"))]
    assert sorted(side) == sorted(t for t in want if t.endswith(("_dead_letter", "_quarantine", "_late")))
    con = duckdb_connection()
    for table in tables:
        a, b = sql / "data" / "tables" / table, py / "data" / "tables" / table
        columns = described(con, a)
        assert described(con, b) == columns, table
        names = [c[0] for c in columns]
        got, expected = rows(con, b, names), rows(con, a, names)
        assert expected.num_rows == want.get(table, 0), table
        assert got.equals(expected), (table, got.slice(0, 3).to_pylist(), expected.slice(0, 3).to_pylist())
        for stamp in STAMPED & set(names):
            assert con.sql(f"SELECT count(*) FROM delta_scan('{b}') WHERE {stamp} IS NULL").fetchone()[0] == 0
        ta, tb = DeltaTable(str(a)), DeltaTable(str(b))
        assert tb.schema().to_json() == ta.schema().to_json(), table
        ma, mb = ta.metadata(), tb.metadata()
        assert (mb.partition_columns, mb.description, mb.configuration) == \
            (ma.partition_columns, ma.description, ma.configuration), table
