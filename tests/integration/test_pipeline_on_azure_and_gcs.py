"""A whole pipeline with `storage: az://...` (Azurite, scripts/azurite.sh) and `storage: gs://...`
(fake-gcs-server, scripts/gcs.sh): the quickstart end to end with tables read back by deltalake
and Polars with the same emulator options, a restart that resumes exactly, time travel, a full
refresh, `sluice events` / `validate` / `table`, window state kept on the store across runs,
the run lease that keeps two runs apart, storage_options checked at their line with secrets (a SAS token, an OAuth token) never shown,
and a small SIGKILL chaos run (exactly once) on each. S3: test_pipeline_on_s3.py."""
import json
import signal
import uuid
from collections import Counter

import pytest
from deltalake import DeltaTable

import test_install
from conftest import write_pipeline
from object_store_helpers import (az, clean_env, events, gcs, run, set_storage, sigkill_chaos, start,  # noqa: F401
                                  storage_yaml, table, wait_for)
from test_install import assert_quickstart_tables, produce_quickstart_events, quickstart_copy
from test_pipeline_on_s3 import produce_json, ts, windowed_pipeline


@pytest.fixture(scope="module", params=["az", "gs"])
def store(request):
    """Each test once on Azurite and once on fake-gcs-server (grouped: one server at a time)."""
    return request.getfixturevalue({"az": "az", "gs": "gcs"}[request.param])


def sluice(*args, **kw):
    """sluice with no store setting in the environment: pipeline.yaml's storage_options are all
    it gets."""
    return run(None, *args, **kw)


def test_quickstart_end_to_end_restart_and_time_travel(store, tmp_path, bootstrap, new_topic, monkeypatch):
    topic = new_topic(3)
    prefix = f"qs-{uuid.uuid4().hex[:8]}"
    pipe = quickstart_copy(tmp_path / "pipe", topic)
    set_storage(pipe, store, prefix)
    first = produce_quickstart_events(bootstrap, topic, 1000, seed=5)
    r1 = sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap)
    assert r1.returncode == 0, r1.stderr
    # Nothing of the pipeline's storage is on the local disk: it is all in the bucket.
    assert not (pipe / "data").exists()
    stored = store["keys"](prefix + "/")
    assert f"{prefix}/system/pipeline.json" in stored
    assert any(k.startswith(f"{prefix}/system/event_log/_delta_log/") for k in stored)
    assert any(k.startswith(f"{prefix}/tables/user_events_silver/event_date=") for k in stored)

    class Tables:  # assert_quickstart_tables opens str(tables / name): give it the store's tables
        def __truediv__(self, name):
            return f"{store['uri'](prefix)}/tables/{name}"
    monkeypatch.setattr(test_install, "DeltaTable", lambda uri: DeltaTable(uri, storage_options=store["options"]))
    assert_quickstart_tables(Tables(), first)
    silver_v1 = table(store, prefix, "user_events_silver").version()

    # A restart reads only what is new (progress from the txns on the store): every offset once.
    more = produce_quickstart_events(bootstrap, topic, 300, seed=6)
    r2 = sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap)
    assert r2.returncode == 0, r2.stderr
    assert_quickstart_tables(Tables(), first + more)
    bronze = table(store, prefix, "user_events_bronze").to_pyarrow_table(columns=["partition", "offset"])
    pairs = Counter(zip(bronze["partition"].to_pylist(), bronze["offset"].to_pylist()))
    assert len(pairs) == len(first) + len(more) and max(pairs.values()) == 1
    # Time travel: silver as the first run left it.
    kept_first = [e for e in first if e["user_id"] is not None]
    assert table(store, prefix, "user_events_silver", version=silver_v1).to_pyarrow_table().num_rows == len(kept_first)

    # A full refresh of silver recomputes it from bronze.
    r3 = sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap, "--full-refresh", "user_events_silver")
    assert r3.returncode == 0, r3.stderr
    assert_quickstart_tables(Tables(), first + more)
    assert any(h.get("operation") == "FULL REFRESH" for h in table(store, prefix, "user_events_silver").history())

    # Polars (its own delta-rs) reads the unpartitioned gold table with the same options.
    import polars as pl
    gold = pl.read_delta(f"{store['uri'](prefix)}/tables/revenue_by_type", storage_options=store["options"])
    kept = [e for e in first + more if e["user_id"] is not None]
    assert sorted(zip(gold["event_type"].to_list(), gold["events"].to_list())) == sorted(
        Counter(e["event_type"] for e in kept).items())

    # The CLI commands that read a pipeline's storage.
    ev = sluice("events", pipe, "--format", "json")
    assert ev.returncode == 0, ev.stderr
    kinds = [json.loads(line)["event_type"] for line in ev.stdout.splitlines() if line.strip()]
    assert kinds.count("create_update") == 3 and "flow_progress" in kinds
    v = sluice("validate", pipe)
    assert v.returncode == 0, v.stderr
    assert "revenue_by_type (materialized view) <- user_events_silver" in v.stdout
    d = run(store, "table", "describe", f"{store['uri'](prefix)}/tables/user_events_bronze")
    assert d.returncode == 0, d.stderr
    # The secret is nowhere: not in any output, not in the event log.
    log = events(store, prefix)
    everything = "".join(r.stdout + r.stderr for r in (r1, r2, r3, ev, v, d)) + json.dumps(log, default=str)
    assert store["secret"] not in everything
    # Requests of an update on the store are in its update_progress event.
    done = [json.loads(e["details"])["update_progress"] for e in log
            if e["event_type"] == "update_progress" and "COMPLETED" in e["message"]]
    assert len(done) == 3 and all(d["storage_requests"]["total"] > 0 for d in done)


def test_restart_resumes_from_the_window_state_on_the_store(store, tmp_path, bootstrap, new_topic):
    """Open windows are state, saved on the store with each commit and loaded by the next run: a
    window split across two runs counts its rows once."""
    topic = new_topic(1)
    prefix = f"win-{uuid.uuid4().hex[:8]}"
    pipe = windowed_pipeline(tmp_path, store, prefix, topic, bootstrap)
    produce_json(bootstrap, topic, [{"k": "a", "ts": ts(0, 10), "v": 1}, {"k": "a", "ts": ts(1), "v": 2},
                                    {"k": "a", "ts": ts(6), "v": 4}])
    r = sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    assert [(x["n"], x["s"]) for x in table(store, prefix, "w").to_pyarrow_table().to_pylist()] == [(2, 3)]
    assert [k for k in store["keys"](prefix + "/") if "/_sluice_state/" in k]
    produce_json(bootstrap, topic, [{"k": "a", "ts": ts(7), "v": 8}, {"k": "a", "ts": ts(20), "v": 16}])
    r = sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    rows = sorted((x["n"], x["s"]) for x in table(store, prefix, "w").to_pyarrow_table().to_pylist())
    assert rows == [(2, 3), (2, 12)], rows


def test_two_runs_on_one_storage_never_both_write(store, tmp_path, bootstrap, new_topic):
    """The run lease (system/run_lease/, put-if-absent generations) on the store: a second run is
    refused naming the holder; a clean exit releases it."""
    prefix = f"lease-{uuid.uuid4().hex[:8]}"
    pipe = windowed_pipeline(tmp_path, store, prefix, new_topic(1), bootstrap, mode="continuous")
    first = start(pipe, "first", clean_env(SLUICE_RUN_LEASE_TTL_MS="3000"))
    try:
        wait_for(lambda: [k for k in store["keys"](prefix + "/") if "/system/run_lease/" in k], 60,
                 "the first run's lease", first)
        second = sluice("run", pipe, "--once")
        assert second.returncode != 0
        assert f"another sluice run is using storage '{store['uri'](prefix)}'" in second.stderr, second.stderr
        assert f"pid {first.pid} on host" in second.stderr and store["secret"] not in second.stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0, first.err_path.read_text()[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    again = sluice("run", pipe, "--once", extra={"SLUICE_RUN_LEASE_TTL_MS": "600000"})
    assert again.returncode == 0, again.stderr


OTHER_STORE_KEY = {"az": "aws_region: us-east-1", "gs": "azure_storage_account_name: x"}
UNKNOWN_KEY = {"az": "azure_msi_endpoint: x", "gs": "google_bucket: x"}


def test_storage_options_checked_at_their_line_and_secrets_never_shown(store, tmp_path):
    head = "name: opts\n" + storage_yaml(store, "opts")
    line = head.count("\n") + 1
    for extra, expected in ((OTHER_STORE_KEY[store["scheme"]], "does not apply to"),
                            (UNKNOWN_KEY[store["scheme"]], "is not supported")):
        pipe = write_pipeline(tmp_path / f"p{len(extra)}", head + f"  {extra}\n")
        r = sluice("validate", pipe)
        assert r.returncode != 0
        assert f"pipeline.yaml:{line}:3" in r.stderr and expected in r.stderr, r.stderr
        assert extra.split(":")[0] in r.stderr and store["secret"] not in r.stdout + r.stderr
    if store["scheme"] == "gs":  # a key beside the access token: refused at validate, unechoed
        pipe = write_pipeline(tmp_path / "sa", head + "  google_service_account_key: '{\"private_key\": \"pk-91c4\"}'\n")
        r = sluice("validate", pipe)
        assert r.returncode != 0 and "pipeline.yaml:4:3" in r.stderr, r.stderr  # the options
        assert "both GOOGLE_OAUTH_ACCESS_TOKEN and GOOGLE_SERVICE_ACCOUNT_KEY are set; set one of them" in r.stderr
        assert "pk-91c4" not in r.stdout + r.stderr
    # A bucket / container that does not exist: the run fails naming it, not the secret.
    missing = store["uri"]("x").replace("lake", "no-such-lake")
    pipe = write_pipeline(tmp_path / "missing", "name: missing\n" + storage_yaml(store, "x").replace(
        store["uri"]("x"), missing) + "kafka:\n  default:\n    bootstrap.servers: 127.0.0.1:1\n")
    (pipe / "t.sql").write_text("CREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM read_kafka(topic => 'x');\n")
    r = sluice("run", pipe, "--once", timeout=120)
    assert r.returncode != 0
    assert missing.split("/")[2] in r.stderr and store["secret"] not in r.stdout + r.stderr, r.stderr


def test_azure_short_option_spellings_reach_azurite(az, tmp_path, bootstrap, new_topic):
    """object_store's short keys (account_name, sas_token, use_emulator ...) work as the long ones."""
    topic = new_topic(1)
    prefix = f"short-{uuid.uuid4().hex[:8]}"
    pipe = write_pipeline(tmp_path / "p", f"""name: short
storage: az://lake/{prefix}
storage_options:
  use_emulator: "true"
  account_name: devstoreaccount1
  sas_token: "{az['sas']}"
kafka:
  default:
    bootstrap.servers: "{bootstrap}"
""")
    (pipe / "t.sql").write_text(f"CREATE OR REFRESH STREAMING TABLE t AS SELECT * FROM STREAM "
                                f"read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    produce_json(bootstrap, topic, [{"i": i} for i in range(5)])
    r = run(None, "run", pipe, "--once", extra={"AZURITE_BLOB_STORAGE_URL": az["env"]["AZURITE_BLOB_STORAGE_URL"]})
    assert r.returncode == 0, r.stderr
    assert table(az, prefix, "t").to_pyarrow_table().num_rows == 5
    assert az["secret"] not in r.stdout + r.stderr


@pytest.mark.slow  # random kills, as the S3 chaos test: the long suite's (docs/decisions.md "CI time (3)")
@pytest.mark.timeout(180)
def test_sigkill_chaos_loses_and_doubles_nothing(store, tmp_path, bootstrap):
    sigkill_chaos(store, tmp_path, bootstrap, total=30_000, kills=3, kill_after=(-2, -0.5), progress=2_000,
                  triggers=15)
