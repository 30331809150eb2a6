"""A whole pipeline with `storage: s3://...` against a real S3-compatible server (moto, started
and stopped by scripts/s3.sh): the quickstart end to end (tables read back by deltalake,
Polars and DuckDB with the same endpoint and options), `sluice events`, `validate`, `table`, a full refresh,
a restart that resumes from the window state kept on S3, the run lease that keeps two runs
apart, storage_options checked at their line and secrets never shown, and a smaller SIGKILL
chaos run (exactly once with every table, state and the event log on S3)."""
import json
import os
import signal
import time
import uuid
from collections import Counter

import pytest
from deltalake import DeltaTable

from conftest import duckdb_connection, write_pipeline
from object_store_helpers import S3_SECRET as SECRET
from object_store_helpers import (clean_env, events, free_port, run, s3, set_storage, sigkill_chaos,  # noqa: F401
                                  start, storage_yaml, table, wait_for)
from test_install import assert_quickstart_tables, produce_quickstart_events, quickstart_copy


def sluice(*args, env=None, timeout=300):
    """sluice without AWS_* in the environment: the pipeline's storage_options are all it gets."""
    return run(None, *args, env=env, timeout=timeout)


def keys(s3, prefix):
    return s3["keys"](prefix + "/")


def test_quickstart_on_s3_end_to_end(s3, tmp_path, bootstrap, new_topic):
    topic = new_topic(3)
    prefix = f"qs-{uuid.uuid4().hex[:8]}"
    pipe = quickstart_copy(tmp_path / "pipe", topic)
    set_storage(pipe, s3, prefix)
    first = produce_quickstart_events(bootstrap, topic, 2000, seed=5)
    r = sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap)
    assert r.returncode == 0, r.stderr
    # Nothing of the pipeline's storage is on the local disk: it is all in the bucket.
    assert not (pipe / "data").exists()
    stored = keys(s3, prefix)
    assert f"{prefix}/system/pipeline.json" in stored
    assert any(k.startswith(f"{prefix}/system/event_log/_delta_log/") for k in stored)
    assert any(k.startswith(f"{prefix}/tables/user_events_silver/event_date=") for k in stored)

    class Tables:  # assert_quickstart_tables opens str(tables / name): give it S3 tables
        def __truediv__(self, name):
            return f"s3://lake/{prefix}/tables/{name}"
    import test_install
    original = test_install.DeltaTable
    test_install.DeltaTable = lambda uri: DeltaTable(uri, storage_options=s3["options"])
    try:
        assert_quickstart_tables(Tables(), first)
        # A restart reads only what is new (progress from the txns on S3).
        more = produce_quickstart_events(bootstrap, topic, 500, seed=6)
        r = sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap)
        assert r.returncode == 0, r.stderr
        assert_quickstart_tables(Tables(), first + more)
        # A full refresh of silver (on S3) recomputes it from bronze.
        r = sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap, "--full-refresh", "user_events_silver")
        assert r.returncode == 0, r.stderr
        assert_quickstart_tables(Tables(), first + more)
    finally:
        test_install.DeltaTable = original
    history = table(s3, prefix, "user_events_silver").history()
    assert any(h.get("operation") == "FULL REFRESH" for h in history)

    import polars as pl
    silver = pl.read_delta(f"s3://lake/{prefix}/tables/user_events_silver", storage_options=s3["options"])
    assert silver.height == sum(1 for e in first + more if e["user_id"] is not None)

    # DuckDB (delta + httpfs extensions) reads them from the same endpoint.
    con = duckdb_connection()
    con.sql("LOAD httpfs")
    host = s3["endpoint"].split("://")[1]
    con.sql(f"CREATE SECRET lake (TYPE S3, KEY_ID 'test', SECRET '{SECRET}', REGION 'us-east-1', "
            f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)")
    gold = con.sql(f"SELECT event_type, events FROM delta_scan('s3://lake/{prefix}/tables/revenue_by_type') "
                   "ORDER BY event_type").fetchall()
    kept = [e for e in first + more if e["user_id"] is not None]
    assert gold == sorted(Counter(e["event_type"] for e in kept).items())
    assert con.sql(f"SELECT count(*) FROM delta_scan('s3://lake/{prefix}/tables/user_events_silver')"
                   ).fetchone()[0] == len(kept)

    # The CLI commands that read a pipeline's storage.
    ev = sluice("events", pipe, "--format", "json")
    assert ev.returncode == 0, ev.stderr
    kinds = [json.loads(line)["event_type"] for line in ev.stdout.splitlines() if line.strip()]
    assert kinds.count("create_update") == 3 and "flow_progress" in kinds
    v = sluice("validate", pipe)
    assert v.returncode == 0, v.stderr
    assert "revenue_by_type (materialized view) <- user_events_silver" in v.stdout
    g = sluice("graph", pipe, "--format", "json")
    assert g.returncode == 0 and "no column lineage" not in g.stderr, g.stderr
    d = sluice("table", "describe", f"s3://lake/{prefix}/tables/user_events_bronze",
               env=clean_env(**s3["options"]))
    assert d.returncode == 0, d.stderr
    # The secret is nowhere: not in any output, not in the event log.
    everything = r.stdout + r.stderr + ev.stdout + ev.stderr + v.stdout + v.stderr + g.stdout + json.dumps(events(s3, prefix), default=str)
    assert SECRET not in everything
    # Requests of an update on the object store are in its update_progress event.
    done = [json.loads(e["details"])["update_progress"] for e in events(s3, prefix)
            if e["event_type"] == "update_progress" and "COMPLETED" in e["message"]]
    assert done and all(d["storage_requests"]["total"] > 0 for d in done)


def test_storage_options_checked_at_their_line_and_secrets_never_shown(s3, tmp_path):
    pipe = write_pipeline(tmp_path / "p", "name: opts\n" + storage_yaml(s3, "opts") + "  aws_bogus_key: x\n")
    r = sluice("validate", pipe)
    assert r.returncode != 0
    assert "pipeline.yaml:9:3" in r.stderr and "aws_bogus_key" in r.stderr, r.stderr
    assert SECRET not in r.stdout + r.stderr
    # Options with a local storage would be ignored: refused.
    local = write_pipeline(tmp_path / "l", "name: l\nstorage: ./data\nstorage_options:\n  aws_region: x\n")
    r = sluice("validate", local)
    assert r.returncode != 0 and "pipeline.yaml:4:3" in r.stderr and "local path" in r.stderr, r.stderr
    # An endpoint nobody listens on: the error names it, not the secret.
    dead = storage_yaml(s3, "dead").replace(s3["endpoint"], f"http://127.0.0.1:{free_port()}")
    pipe = write_pipeline(tmp_path / "d", "name: dead\n" + dead + "kafka:\n  default:\n    bootstrap.servers: 127.0.0.1:1\n")
    (pipe / "t.sql").write_text("CREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(topic => 'x');\n")
    r = sluice("run", pipe, "--once", timeout=120)
    assert r.returncode != 0
    assert "127.0.0.1" in r.stderr and SECRET not in r.stdout + r.stderr, r.stderr


def windowed_pipeline(tmp_path, s3, prefix, topic, bootstrap, mode="triggered"):
    pipe = write_pipeline(tmp_path / "w", f"""name: win
{storage_yaml(s3, prefix)}mode: {mode}
trigger_interval: 100ms
kafka:
  default:
    bootstrap.servers: "{bootstrap}"
""")
    (pipe / "w.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE w
AS SELECT k, window.start AS ws, count(*) AS n, sum(v) AS s
FROM (SELECT value.k AS k, value.ts AS ts, value.v AS v
      FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest',
                             value_format => 'json', value_schema => 'k STRING, ts TIMESTAMP, v BIGINT'))
WATERMARK ts DELAY OF INTERVAL 1 MINUTE
GROUP BY k, window(ts, '5 minutes');
""")
    return pipe


def produce_json(bootstrap, topic, records):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    for r in records:
        p.produce(topic, value=json.dumps(r).encode(), partition=0)
    assert p.flush(30) == 0


def ts(minute, second=0):
    return f"2026-03-01T10:{minute:02d}:{second:02d}Z"


def test_restart_resumes_from_the_window_state_on_s3(s3, tmp_path, bootstrap, new_topic):
    """Open windows are state: saved on S3 with each commit, loaded by the next run, so a window
    split across two runs counts its rows once."""
    topic = new_topic(1)
    prefix = f"win-{uuid.uuid4().hex[:8]}"
    pipe = windowed_pipeline(tmp_path, s3, prefix, topic, bootstrap)
    # Run 1: windows 10:00 and 10:05 open (watermark 10:06 - 1 min = 10:05 closes 10:00 only).
    produce_json(bootstrap, topic, [{"k": "a", "ts": ts(0, 10), "v": 1}, {"k": "a", "ts": ts(1), "v": 2},
                                    {"k": "a", "ts": ts(6), "v": 4}])
    r = sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    assert [(x["n"], x["s"]) for x in table(s3, prefix, "w").to_pyarrow_table().to_pylist()] == [(2, 3)]
    state = [k for k in keys(s3, prefix) if "/_sluice_state/" in k]
    assert state and all(k.endswith(".arrow") for k in state), state
    # Run 2 adds to the open 10:05 window and closes it: its count includes run 1's row.
    produce_json(bootstrap, topic, [{"k": "a", "ts": ts(7), "v": 8}, {"k": "a", "ts": ts(20), "v": 16}])
    r = sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    rows = sorted((x["n"], x["s"]) for x in table(s3, prefix, "w").to_pyarrow_table().to_pylist())
    assert rows == [(2, 3), (2, 12)], rows
    # Old snapshots are deleted: the newest and the one before it (kept until the commit after
    # the newest lands) are all that is left.
    assert len([k for k in keys(s3, prefix) if "/_sluice_state/" in k]) == 2


def lease_objects(s3, prefix):
    return [k for k in keys(s3, prefix) if "/system/run_lease/" in k]


def test_two_runs_on_one_s3_storage_never_both_write(s3, tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    prefix = f"lease-{uuid.uuid4().hex[:8]}"
    pipe = windowed_pipeline(tmp_path, s3, prefix, topic, bootstrap, mode="continuous")
    env = clean_env(SLUICE_RUN_LEASE_TTL_MS="3000")
    procs = []
    first = start(pipe, "first", env)
    procs.append(first)
    try:
        wait_for(lambda: lease_objects(s3, prefix), 60, "the first run's lease", first)
        second = sluice("run", pipe, "--once", env=env)
        assert second.returncode != 0
        assert "another sluice run is using storage 's3://lake/" in second.stderr, second.stderr
        assert f"pid {first.pid} on host" in second.stderr, second.stderr
        # Killed on this host: the next run does not wait out the ttl.
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        took = time.monotonic()
        again = sluice("run", pipe, "--once", env=clean_env(SLUICE_RUN_LEASE_TTL_MS="600000"))
        assert again.returncode == 0, again.stderr
        assert time.monotonic() - took < 60
        # A run stopped (SIGSTOP) past its ttl loses the lease to the next run; when it wakes it
        # finds the lease taken and ends before writing anything more.
        stalled = start(pipe, "stalled", env)
        procs.append(stalled)
        wait_for(lambda: stalled_holds(s3, prefix, stalled.pid), 60, "the lease of the stalled run", stalled)
        stalled.send_signal(signal.SIGSTOP)
        wait_for(lambda: lease_expired(s3, prefix), 30, "the stalled run's lease to expire")
        taker = start(pipe, "taker", env)
        procs.append(taker)
        wait_for(lambda: stalled_holds(s3, prefix, taker.pid), 60, "the lease taken over", taker)
        stalled.send_signal(signal.SIGCONT)
        assert stalled.wait(30) == 75
        assert "another sluice run took over the run lease" in stalled.err_path.read_text()
        assert taker.poll() is None
        taker.send_signal(signal.SIGTERM)
        assert taker.wait(60) == 0, taker.err_path.read_text()[-3000:]
        # Released on a clean exit: the newest generation says so, and a run starts at once.
        newest = sorted(lease_objects(s3, prefix))[-1]
        body = json.loads(s3["client"].get_object(Bucket="lake", Key=newest)["Body"].read())
        assert body["released"] is True
        assert sluice("run", pipe, "--once", env=env).returncode == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait(10)


def newest_lease(s3, prefix):
    leases = sorted(lease_objects(s3, prefix))
    if not leases:
        return None
    try:
        return json.loads(s3["client"].get_object(Bucket="lake", Key=leases[-1])["Body"].read())
    except s3["client"].exceptions.NoSuchKey:
        return None


def stalled_holds(s3, prefix, pid):
    lease = newest_lease(s3, prefix)
    return lease is not None and lease["pid"] == pid and not lease["released"]


def lease_expired(s3, prefix):
    lease = newest_lease(s3, prefix)
    return lease is not None and time.time() * 1000 > lease["renewed_ms"] + lease["ttl_ms"] + 200


# --- exactly once under SIGKILL, everything on S3 ---------------------------------------------

@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_chaos_on_s3_loses_and_doubles_nothing(s3, tmp_path, bootstrap):
    """The chaos test's pipeline (bronze -> silver with a DROP ROW expectation, checkpoints every
    5 commits) with its storage on S3: 150k records, 5 SIGKILLs at random (seeded) moments,
    a final run; bronze holds every offset once, silver exactly the expected ids once."""
    sigkill_chaos(s3, tmp_path, bootstrap, int(os.environ.get("SLUICE_S3_CHAOS_RECORDS", 150_000)), kills=5)

