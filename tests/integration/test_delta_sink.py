"""Delta sinks (CREATE SINK ... OPTIONS (format => 'delta', path => ...) + CREATE FLOW ... INSERT
INTO sink): the selected rows of a streaming table are appended to a Delta table outside the
pipeline's storage, created with the flow's columns, exactly once across restarts and kills (the
flow's progress is a txn action of that table). Oracle: the silver table as deltalake reads it,
filtered in Python, against the sink table as deltalake and DuckDB read it; a moto S3 sink too."""
import json
import signal
import subprocess
import time

import pyarrow as pa
import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable, write_deltalake

from conftest import SLUICE, duckdb_connection, run_sluice, write_pipeline
from object_store_helpers import clean_env, s3  # noqa: F401  (the moto fixture)

SILVER = """
CREATE OR REFRESH STREAMING TABLE tx_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{source}', starting_offsets => 'earliest'{trigger});

CREATE OR REFRESH STREAMING TABLE tx_silver
AS SELECT e.card_id, e.amount, e.ts, e.n
   FROM (SELECT from_json(CAST(value AS STRING), 'card_id STRING, amount DOUBLE, ts TIMESTAMP, n BIGINT') AS e
         FROM STREAM(tx_bronze));
"""

SINK = """
CREATE SINK big_tx OPTIONS (format => 'delta', path => '{path}'{options});
CREATE FLOW big_tx_out AS INSERT INTO big_tx
SELECT card_id, amount, n, ts FROM STREAM(tx_silver) WHERE amount > 100;
"""


def make_pipeline(folder, bootstrap, source, path, options="", extra="", trigger_rows=None):
    pipe = write_pipeline(folder, f"name: dsinks\nstorage: ./data\n{extra}"
                                  f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    trigger = f", max_offsets_per_trigger => {trigger_rows}" if trigger_rows else ""
    (pipe / "silver.sql").write_text(SILVER.format(source=source, trigger=trigger))
    (pipe / "sink.sql").write_text(SINK.format(path=path, options=options))
    return pipe


def produce(bootstrap, topic, first, count):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for n in range(first, first + count):
        event = {"card_id": None if n % 17 == 0 else f"c{n % 7}", "amount": float((n * 37) % 250),
                 "ts": f"2024-05-01T10:{n % 60:02d}:{n % 59:02d}.{n % 1000:03d}Z", "n": n}
        producer.produce(topic, value=json.dumps(event).encode(), partition=n % 2)
    assert producer.flush(30) == 0


def expected_rows(pipe):
    """The sink's rows from the silver table as deltalake reads it, filtered in Python."""
    rows = DeltaTable(str(pipe / "data" / "tables" / "tx_silver")).to_pyarrow_table().to_pylist()
    return sorted(((r["card_id"], r["amount"], r["n"], r["ts"]) for r in rows
                   if r["amount"] is not None and r["amount"] > 100), key=lambda r: r[2])


def sink_rows(table):
    return sorted(((r["card_id"], r["amount"], r["n"], r["ts"]) for r in table.to_pyarrow_table().to_pylist()),
                  key=lambda r: r[2])


def sink_txns(path):
    """The txn actions of the sink table's log, from the JSON commits (not through sluice)."""
    out = []
    for f in sorted((path / "_delta_log").glob("*.json")):
        for line in f.read_text().splitlines():
            action = json.loads(line)
            if "txn" in action:
                out.append(action["txn"])
    return out


def test_rows_append_once_to_an_external_table_read_by_deltalake_and_duckdb(tmp_path, bootstrap, new_topic):
    source = new_topic(2)
    external = tmp_path / "lake" / "big_tx"  # outside the pipeline's storage (pipe/data)
    pipe = make_pipeline(tmp_path / "pipe", bootstrap, source, external)
    validate = run_sluice("validate", pipe)
    assert validate.returncode == 0, validate.stderr
    assert "big_tx (sink) <- tx_silver (stream)" in validate.stdout

    produce(bootstrap, source, 0, 300)
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    assert "big_tx (sink):" in first.stdout, first.stdout
    table = DeltaTable(str(external))
    # Created with the flow's columns, in the flow's order.
    assert [f.name for f in table.schema().fields] == ["card_id", "amount", "n", "ts"]
    want = expected_rows(pipe)
    assert len(want) > 50 and sink_rows(table) == want
    [txn] = sink_txns(external)
    assert "big_tx_out" in txn["appId"], txn

    # Killed after writing its files, before committing: nothing shows; the restart appends once.
    produce(bootstrap, source, 300, 200)
    crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "sink_before_commit"})
    assert crashed.returncode == 137, (crashed.stdout, crashed.stderr)
    assert sink_rows(DeltaTable(str(external))) == want
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    want = expected_rows(pipe)
    assert sink_rows(DeltaTable(str(external))) == want
    version = DeltaTable(str(external)).version()
    again = run_sluice("run", pipe, "--once")  # nothing new: no commit
    assert again.returncode == 0, again.stderr
    assert DeltaTable(str(external)).version() == version

    con = duckdb_connection()
    count, total, distinct = con.sql(f"SELECT count(*), sum(n), count(DISTINCT n) FROM delta_scan('{external}')").fetchone()
    assert (count, total, distinct) == (len(want), sum(r[2] for r in want), len(want))
    # Spark's streaming-update commit, with the flow's progress in one txn per upstream table.
    ops = [h["operation"] for h in DeltaTable(str(external)).history()]
    assert set(ops) <= {"STREAMING UPDATE", "CREATE TABLE"}, ops
    assert len({t["appId"] for t in sink_txns(external)}) == 1


def test_sigkill_of_a_continuous_run_still_appends_every_row_once(tmp_path, bootstrap, new_topic):
    source = new_topic(2)
    external = tmp_path / "lake" / "big_tx"
    pipe = make_pipeline(tmp_path / "pipe", bootstrap, source, external,
                         extra="mode: continuous\ntrigger_interval: 50ms\n", trigger_rows=40)
    produce(bootstrap, source, 0, 1200)
    log = external / "_delta_log"
    seen = []
    for round_ in range(2):
        # Killed once the sink committed a version more than before this round (polled).
        before = len(list(log.glob("*.json"))) if log.exists() else 0
        with open(tmp_path / f"run{round_}.stderr", "w") as err:
            proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 60
            while not log.exists() or len(list(log.glob("*.json"))) <= before:
                assert proc.poll() is None, (tmp_path / f"run{round_}.stderr").read_text()
                assert time.monotonic() < deadline, f"round {round_}: the sink committed nothing in 60 s"
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        seen.append(len(sink_rows(DeltaTable(str(external)))))
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    rows = sink_rows(DeltaTable(str(external)))
    assert rows == expected_rows(pipe)
    assert len({r[2] for r in rows}) == len(rows)
    # The kills interrupted the sink while it had more to append.
    assert any(0 < n < len(rows) for n in seen), (seen, len(rows))


def test_a_table_of_other_columns_is_refused_by_name(tmp_path, bootstrap, new_topic):
    source = new_topic(1)
    external = tmp_path / "lake" / "other"
    write_deltalake(str(external), pa.table({"card_id": pa.array(["x"]), "amount": pa.array([1], pa.int32()),
                                             "n": pa.array([1], pa.int64()), "note": pa.array(["y"])}))
    pipe = make_pipeline(tmp_path / "pipe", bootstrap, source, external)
    produce(bootstrap, source, 0, 20)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 1, r.stdout
    err = r.stderr
    assert f"sink 'big_tx': the Delta table at '{external}' has columns" in err, err
    assert "column 'amount' is int32 in the table and double in the flow" in err, err
    assert "the table has no column 'ts'" in err and "the flow has no column 'note'" in err, err
    assert "give the sink a new path" in err, err
    assert DeltaTable(str(external)).version() == 0  # untouched


@pytest.mark.parametrize("options,where,message", [
    (", tableName => 'main.x.y'", "sink.sql:2:", "tableName (a table of a catalog) is not supported yet"),
    (", compression => 'zstd'", "sink.sql:2:", "sink 'big_tx' has no option 'compression'"),
    (", aws_region => 'us-east-1'", "sink.sql:2:", "storage option 'aws_region' is for a table on an object store"),
])
def test_sink_options_are_checked_at_their_line(tmp_path, options, where, message):
    pipe = make_pipeline(tmp_path / "pipe", "127.0.0.1:1", "t", tmp_path / "lake" / "x", options=options)
    r = run_sluice("validate", pipe)
    assert r.returncode != 0, r.stdout
    assert where in r.stderr and message in r.stderr, r.stderr


def test_a_path_inside_the_pipelines_storage_is_refused(tmp_path):
    pipe = make_pipeline(tmp_path / "pipe", "127.0.0.1:1", "t", "data/tables/big_tx")
    r = run_sluice("validate", pipe)
    assert r.returncode != 0, r.stdout
    assert "sink.sql:2:" in r.stderr and "is inside the pipeline's storage" in r.stderr, r.stderr


def test_sink_on_s3_with_its_own_storage_options(tmp_path, bootstrap, new_topic, s3):  # noqa: F811
    source = new_topic(2)
    options = "".join(f", {k.lower()} => '{v}'" for k, v in s3["options"].items())
    uri = s3["uri"]("sinks/big_tx")
    pipe = make_pipeline(tmp_path / "pipe", bootstrap, source, uri, options=options)
    produce(bootstrap, source, 0, 200)
    env = clean_env()  # no AWS_* in the environment: the sink's options reach moto
    for _ in range(2):
        r = subprocess.run([str(SLUICE), "run", str(pipe), "--once"], capture_output=True, text=True, env=env,
                           timeout=300)
        assert r.returncode == 0, r.stderr
        assert s3["secret"] not in r.stdout + r.stderr
    table = DeltaTable(uri, storage_options=s3["options"])
    want = expected_rows(pipe)
    assert len(want) > 30 and sink_rows(table) == want
    assert any(k.endswith(".parquet") for k in s3["keys"]("sinks/big_tx/"))
