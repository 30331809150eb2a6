"""The Python API (python/sluice, as `import sluice` from the source tree, driving the sluice
under test through SLUICE_BIN) against the real broker: sluice.run(once=True) runs a small
pipeline, sluice.read_table reads its tables as deltalake does (all rows, a column subset and a
filter checked against a Python model, an earlier version), a full refresh through the API
rebuilds a table without duplicating a row, and a run that fails raises SluiceError with the
binary's message and exit code. `pip install .` and the installed package are
python/tests/test_package.py's."""
import importlib
import os
import pathlib
import signal
import subprocess
import sys
import threading

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import ROOT, SLUICE
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

CHECKOUT_PACKAGE = ROOT / "python" / "sluice"


def _import_checkout_sluice():
    """The source tree's package, even where a `pip install`ed sluice was imported first (its
    pytest11 entry point loads it into every pytest of that environment): that one, and its
    submodules, are dropped from sys.modules and python/ goes first on sys.path."""
    loaded = sys.modules.get("sluice")
    if loaded is not None and pathlib.Path(loaded.__file__).resolve().parent != CHECKOUT_PACKAGE:
        for name in [n for n in sys.modules if n == "sluice" or n.startswith("sluice.")]:
            del sys.modules[name]
    sys.path.insert(0, str(ROOT / "python"))
    return importlib.import_module("sluice")


sluice = _import_checkout_sluice()

SQL = """
CREATE OR REFRESH STREAMING TABLE orders_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE orders_silver
AS SELECT o.id, o.amount, o.country
   FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE, country STRING') AS o
         FROM STREAM(orders_bronze));

CREATE OR REFRESH MATERIALIZED VIEW revenue_by_country
AS SELECT country, count(*) AS orders, sum(amount) AS revenue FROM orders_silver GROUP BY country;
"""

ORDERS = [{"id": i, "amount": round(1.25 * i, 2), "country": ["NL", "DE", "FR"][i % 3]} for i in range(40)]


@pytest.fixture(autouse=True)
def binary_under_test(monkeypatch):
    # The source tree has no bundled binary: the API runs the one this suite tests.
    monkeypatch.setenv("SLUICE_BIN", str(SLUICE))
    assert sluice._binary.find() == str(SLUICE)


def _rows(table, key="id"):
    return sorted(table.to_pylist(), key=lambda r: r[key])


def test_run_then_read_table_agrees_with_deltalake(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    produce_values(bootstrap, topic, ORDERS[:25], partitions=2)
    pipe = kafka_pipeline(tmp_path, "pyapi", bootstrap)
    (pipe / "orders.sql").write_text(SQL.format(topic=topic))
    assert "OK" in sluice.validate(pipe)
    graph = sluice.graph(pipe)
    assert {d["name"] for d in graph["datasets"]} == {"orders_bronze", "orders_silver", "revenue_by_country"}

    silver = pipe / "data" / "tables" / "orders_silver"
    sluice.run(pipe, once=True)
    first_version = DeltaTable(str(silver)).version()
    produce_values(bootstrap, topic, ORDERS[25:], partitions=2)
    sluice.run(pipe, once=True)

    got = sluice.read_table(silver)
    assert _rows(got) == _rows(DeltaTable(str(silver)).to_pyarrow_table())
    assert _rows(got) == ORDERS
    # Columns in the order asked, rows where the predicate holds (model: the same test in Python).
    some = sluice.read_table(silver, columns=["amount", "id"], filter="country = 'NL' AND amount >= 10")
    assert some.column_names == ["amount", "id"]
    assert _rows(some) == [{"amount": o["amount"], "id": o["id"]} for o in ORDERS
                           if o["country"] == "NL" and o["amount"] >= 10]
    # The table as the first run left it (time travel), as deltalake reads that version.
    old = sluice.read_table(silver, version=first_version, filter="amount > 5")
    assert _rows(old) == _rows(DeltaTable(str(silver), version=first_version).to_pyarrow_table()
                               .filter(pc.greater(pc.field("amount"), 5)))
    assert _rows(old) == [o for o in ORDERS[:25] if o["amount"] > 5]

    gold = sluice.read_table(pipe / "data" / "tables" / "revenue_by_country")
    model = {}
    for o in ORDERS:
        n, s = model.get(o["country"], (0, 0.0))
        model[o["country"]] = (n + 1, s + o["amount"])
    assert {r["country"]: (r["orders"], pytest.approx(r["revenue"])) for r in gold.to_pylist()} == model

    # A full refresh of silver through the API replays bronze: the same rows, none twice.
    sluice.run(pipe, once=True, full_refresh=["orders_silver"])
    assert _rows(sluice.read_table(silver)) == ORDERS


def test_failed_run_raises_sluice_error(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [{"n": 1}, {"n": -5}])
    pipe = kafka_pipeline(tmp_path, "pyapi_fail", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE checked (
  CONSTRAINT positive EXPECT (n > 0) ON VIOLATION FAIL UPDATE
) AS SELECT value.n FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'n INT');
""")
    with pytest.raises(sluice.SluiceError) as failed:
        sluice.run(pipe, once=True)
    assert failed.value.exit_code == 1
    assert "expectation 'positive' of table 'checked' failed for 1 row(s)" in failed.value.message
    assert failed.value.command[0] == str(SLUICE)
    assert not (pipe / "data" / "tables" / "checked" / "_delta_log").exists()
    # A wrong argument is refused before anything starts, not passed on half-understood.
    with pytest.raises(TypeError, match="full_refresh"):
        sluice.run(pipe, full_refresh="checked")
    assert os.environ["SLUICE_BIN"] == str(SLUICE)


def test_the_api_under_test_is_the_checkouts():
    # Not an installed copy (python/tests/test_package.py runs this test where one is installed).
    assert pathlib.Path(sluice.__file__).resolve().parent == CHECKOUT_PACKAGE
    assert pathlib.Path(sluice._binary.__file__).resolve().parent == CHECKOUT_PACKAGE


@pytest.fixture
def two_tables(tmp_path):
    """`orders` (two versions) and `secret`, written by deltalake; `Amount` has a capital."""
    orders, secret = tmp_path / "orders", tmp_path / "secret"
    write_deltalake(str(orders), pa.table({"id": pa.array([1, 2, 3], pa.int64()), "Amount": [1.0, 5.0, 9.0]}))
    write_deltalake(str(orders), pa.table({"id": pa.array([4], pa.int64()), "Amount": [7.0]}), mode="append")
    write_deltalake(str(secret), pa.table({"id": pa.array([666], pa.int64()), "Amount": [666.0]}))
    return orders, secret


@pytest.mark.parametrize("version", [None, 0])
@pytest.mark.parametrize("filter", [
    "Amount > 2) OR (true",                                    # would bypass the filter
    "false) UNION ALL SELECT * FROM delta.`{secret}` WHERE (true",  # would read another table
    "Amount > 2; SELECT 1",
    "Amount > 2 AND",
])
def test_read_table_filter_must_be_one_expression(two_tables, version, filter):
    orders, secret = two_tables
    with pytest.raises(sluice.SluiceError, match="expected end of expression|expected an expression"):
        sluice.read_table(orders, version=version, filter=filter.format(secret=secret))


@pytest.mark.parametrize("version", [None, 0])
def test_read_table_filter_with_a_trailing_comment_and_columns_of_any_case(two_tables, version):
    orders, _ = two_tables
    got = sluice.read_table(orders, version=version, columns=["AMOUNT", "ID"], filter="amount > 2 -- big ones")
    oracle = DeltaTable(str(orders), version=version) if version is not None else DeltaTable(str(orders))
    rows = oracle.to_pyarrow_table()
    expected = duckdb.sql('SELECT "Amount" AS "AMOUNT", id AS "ID" FROM rows WHERE "Amount" > 2').fetchall()
    assert got.column_names == ["AMOUNT", "ID"]
    assert sorted(tuple(r.values()) for r in got.to_pylist()) == sorted(expected)
    with pytest.raises(sluice.SluiceError, match="has no column.* nope|unknown column 'nope'"):
        sluice.read_table(orders, version=version, columns=["nope"])


@pytest.mark.parametrize("version", [None, 0])
def test_read_table_not_a_predicate_does_not_echo_the_filter(two_tables, version):
    orders, _ = two_tables
    with pytest.raises(sluice.SluiceError) as refused:
        sluice.read_table(orders, version=version, filter="CASE WHEN id = 1 THEN 'hunter2' ELSE 'x' END")
    assert "not a predicate" in refused.value.message
    assert "hunter2" not in str(refused.value)


def test_read_table_writes_its_temporary_file_in_dir_and_maps_it(two_tables, tmp_path):
    orders, _ = two_tables
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    allocated = pa.total_allocated_bytes()
    got = sluice.read_table(orders, dir=scratch)
    assert list(scratch.iterdir()) == []  # removed; the rows stay readable through the mapping
    assert pa.total_allocated_bytes() - allocated < got.nbytes  # not copied onto Arrow's heap
    assert sorted(got.column("id").to_pylist()) == [1, 2, 3, 4]


def test_positional_arguments_named_like_options_stay_arguments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for call in (lambda: sluice.read_table("--help"), lambda: sluice.read_table("--help", version=0),
                 lambda: sluice.validate("--help"), lambda: sluice.graph("--help"),
                 lambda: sluice.run("--help"), lambda: sluice.run("--help", full_refresh=["a", "b"])):
        with pytest.raises(sluice.SluiceError, match="--help is not"):
            call()


def _continuous_pipeline(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, ORDERS[:5])
    pipe = kafka_pipeline(tmp_path, "pyapi_stop", bootstrap, extra="mode: continuous\ntrigger_interval: 1s\n")
    (pipe / "orders.sql").write_text(SQL.format(topic=topic))
    return pipe


def test_continuous_run_stopped_at_its_timeout_returns_a_result(tmp_path, bootstrap, new_topic):
    pipe = _continuous_pipeline(tmp_path, bootstrap, new_topic)
    result = sluice.run(pipe, once=False, timeout=3)
    # Stopped with SIGTERM (its handler: exit 0; or, stopped before it was installed, -SIGTERM),
    # never SIGKILL, and not raised as an error.
    assert result.stopped
    assert result.returncode in (0, -signal.SIGTERM), result.stderr


def test_keyboard_interrupt_stops_the_run_with_sigterm(tmp_path, bootstrap, new_topic):
    pipe = _continuous_pipeline(tmp_path, bootstrap, new_topic)
    log = pipe / "data" / "tables" / "orders_silver" / "_delta_log"
    main = threading.get_ident()
    done = threading.Event()

    def interrupt_after_the_first_commit():
        # The first commit: the run is past start-up (its signal handlers are installed).
        while not done.wait(0.05) and not any(log.glob("*.json")):
            pass
        if not done.is_set():
            signal.pthread_kill(main, signal.SIGINT)

    watcher = threading.Thread(target=interrupt_after_the_first_commit)
    watcher.start()
    # Bounded well above a first commit of five records (seconds) but far below the suite's
    # per-test limit: in one `make test` under load ~20 the run was never interrupted and this
    # test waited out a 600 s timeout with nothing to say why (session 23). If it happens again,
    # the run's own output says what it was doing.
    try:
        result = sluice.run(pipe, once=False, timeout=180)
    except KeyboardInterrupt as e:
        interrupted = e
    else:
        pytest.fail(f"no commit of orders_silver within 180 s, so no interrupt: the run ended with "
                    f"exit status {result.returncode}\nstdout: {result.stdout[-2000:]}\n"
                    f"stderr: {result.stderr[-4000:]}\nfiles: {sorted(str(p.relative_to(pipe)) for p in pipe.rglob('*'))[:60]}")
    finally:
        done.set()
        watcher.join()
    assert "sluice run was stopped with SIGTERM: exit status 0" in getattr(interrupted, "__notes__", [])
    rows = _rows(sluice.read_table(log.parent))  # what the updates committed, each row once
    assert rows and len(rows) == len({r["id"] for r in rows}) and all(r in ORDERS[:5] for r in rows)


def test_console_script_says_why_the_binary_cannot_run(tmp_path):
    # SLUICE_BIN names an executable file that is no program: a one-line error, no traceback.
    fake = tmp_path / "sluice"
    fake.write_text("not a program\n")
    fake.chmod(0o755)
    env = {**os.environ, "SLUICE_BIN": str(fake), "PYTHONPATH": str(ROOT / "python")}
    out = subprocess.run([sys.executable, "-m", "sluice", "--version"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 126, out.stderr
    assert out.stderr.startswith(f"sluice: error: cannot run {fake}: Exec format error"), out.stderr
    assert "Traceback" not in out.stderr
