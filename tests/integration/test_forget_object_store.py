"""`sluice forget` on object storage: a Kafka -> bronze (raw value) -> silver (decoded) ->
STREAM reader (change data feed, an UPDATE quoting the value) and materialized view pipeline
whose storage is s3:// (moto), az:// (Azurite) or gs:// (the GCS emulator), with an OPTIMIZE of bronze before the erasure (its compacted files become
tombstones that still hold the value). Before forget the value is in objects under the
pipeline's prefix; after it, no object holds it — every object listed by the store's own client
(boto3, a Blob client), its raw bytes read, every Parquet file decoded by pyarrow. deltalake
reads every table equal to a Python model minus the erased rows, the audit events are in the
event log, and the next run appends new events once (the reader was moved past the erasure).
An unreferenced object written after forget started (while it is paused before its clean-up)
is kept: the start time is on the store's clock and not later than the truth; a `sluice table
optimize` tried meanwhile is refused (the table's maintenance lease is forget's)."""
import io
import json
import subprocess
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from object_store_helpers import SLUICE, az, clean_env, events, gcs, run, s3, set_storage, table  # noqa: F401
from test_forget import ERASED, USERS, events as make_events, rows
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

SQL = """
CREATE OR REFRESH STREAMING TABLE ev_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE ev_silver
AS SELECT e.user_id, e.kind, e.amount, e.seq
FROM (SELECT from_json(CAST(value AS STRING), 'user_id STRING, kind STRING, amount BIGINT, seq BIGINT') AS e
      FROM STREAM(ev_bronze))
WHERE e.user_id IS NOT NULL;

CREATE OR REFRESH STREAMING TABLE ev_big
TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true')
AS SELECT user_id, amount, seq FROM STREAM(ev_silver) WHERE amount >= 50;

CREATE OR REFRESH MATERIALIZED VIEW ev_per_user
AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM ev_silver GROUP BY user_id;
"""


@pytest.fixture(scope="module", params=["s3", "az", "gcs"])
def store(request):
    return request.getfixturevalue(request.param)


def object_bytes(store, key):
    if store["scheme"] == "s3":
        return store["client"].get_object(Bucket="lake", Key=key)["Body"].read()
    if store["scheme"] == "gs":
        return store["emulator"].read(key)
    return store["blobs"].get("lake", key)


def put_object(store, key, data):
    if store["scheme"] == "s3":
        store["client"].put_object(Bucket="lake", Key=key, Body=data)
    elif store["scheme"] == "gs":
        assert store["emulator"].upload(key, data) == 200
    else:
        store["blobs"].put("lake", key, data)


def forget_writing_meanwhile(store, pipe, where, key, data, optimize_uri):
    """Runs forget paused before its clean-up (SLUICE_FAILPOINT_PAUSE): writes `key` then, an
    object no commit references, as an uncommitted write of a writer without the maintenance
    lock (Spark) would, tries `sluice table optimize optimize_uri` (refused: forget holds the
    table's maintenance lease), and lets forget go on. Returns (forget, the optimize)."""
    proc = subprocess.Popen([str(SLUICE), "forget", str(pipe), "--where", where, "--format", "json"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env(**store["env"], SLUICE_FAILPOINT_PAUSE="forget_before_clean_up"))
    seen = []
    while True:
        line = proc.stderr.readline()
        seen.append(line)
        assert line, f"forget ended before its pause: {''.join(seen)}"
        if "fail point 'forget_before_clean_up' paused" in line:
            break
    put_object(store, key, data)
    refused = run(store, "table", "optimize", optimize_uri)
    out, err = proc.communicate("\n", timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(seen) + err), refused


def object_hits(store, prefix, needle=ERASED):
    """(objects under the prefix, the ones holding `needle`: in their name, their raw bytes, or
    any value of a Parquet file once pyarrow has decoded it)."""
    keys = store["keys"](prefix + "/")
    hits = set()
    for key in keys:
        data = object_bytes(store, key)
        if needle in key or needle.encode() in data:
            hits.add(key)
        elif key.endswith(".parquet") and needle in repr(pq.read_table(io.BytesIO(data)).to_pylist()):
            hits.add(key)
    return keys, hits


def run_ok(store, *args):
    r = run(store, *args)
    assert r.returncode == 0, r.stderr
    return r


def test_forget_erases_every_object_under_the_prefix(store, tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    prefix = f"forget-{uuid.uuid4().hex[:8]}"
    pipe = kafka_pipeline(tmp_path, "forgetobj", bootstrap)
    set_storage(pipe, store, prefix)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    malformed = [f'{{"user_id": "{ERASED}", "kind": "view", broken'.encode()]
    produced = make_events(0, 16) + malformed
    produce_values(bootstrap, topic, produced)
    run_ok(store, "run", pipe, "--once")
    second = make_events(16, 28)
    produce_values(bootstrap, topic, second)
    run_ok(store, "run", pipe, "--once")
    produced += second
    run_ok(store, "table", "optimize", f"{store['uri'](prefix)}/tables/ev_bronze")
    # Change data, and a commitInfo whose predicate quotes the value.
    run_ok(store, "sql", pipe, f"UPDATE ev_big SET amount = amount + 1000 WHERE user_id = '{ERASED}'")

    _, before = object_hits(store, prefix)
    assert any("/ev_bronze/" in k and k.endswith(".parquet") for k in before), before
    assert any("/ev_big/_change_data/" in k for k in before), before
    assert any("/ev_big/_delta_log/" in k for k in before), before
    assert any("/ev_per_user/_sluice_state/" in k for k in before), before

    late = f"{prefix}/tables/ev_silver/part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    sink = io.BytesIO()
    pq.write_table(pa.table({"user_id": ["u-4"], "seq": [0]}), sink)
    late_bytes = sink.getvalue()
    r, refused = forget_writing_meanwhile(store, pipe, f"user_id = '{ERASED}'", late, late_bytes,
                                          f"{store['uri'](prefix)}/tables/ev_bronze")
    assert r.returncode == 0, r.stderr
    assert refused.returncode != 0 and "`sluice forget`" in refused.stderr, refused.stderr
    assert "Nothing was changed" in refused.stderr, refused.stderr
    assert late in store["keys"](prefix + "/tables/ev_silver/"), "forget deleted an object written after it started"
    assert ERASED not in r.stdout + r.stderr
    report = json.loads(r.stdout)
    by_table = {t["table"]: t for t in report["tables"]}
    assert by_table["ev_bronze"]["match"] == "decoded Kafka value"
    assert all(by_table[n]["match"] == "columns" for n in ("ev_silver", "ev_big", "ev_per_user"))

    keys, after = object_hits(store, prefix)
    assert after == set(), after
    assert any(k.endswith(".parquet") for k in keys)  # the scan looked at the surviving data

    # deltalake reads every table equal to the model minus the erased rows.
    def read(name):
        return table(store, prefix, name).to_pyarrow_table()

    kept = [e for e in produced if isinstance(e, dict) and e["user_id"] != ERASED]
    cols = ["user_id", "kind", "amount", "seq"]
    assert rows(read("ev_silver"), cols) == sorted(tuple(e[c] for c in cols) for e in kept)
    assert rows(read("ev_big"), ["user_id", "amount", "seq"]) == sorted(
        (e["user_id"], e["amount"], e["seq"]) for e in kept if e["amount"] >= 50)
    raw = sorted(bytes(r["value"]) for r in read("ev_bronze").to_pylist())
    assert raw == sorted(json.dumps(e).encode() for e in kept)
    per_user = {}
    for e in kept:
        n, total = per_user.get(e["user_id"], (0, 0))
        per_user[e["user_id"]] = (n + 1, total + e["amount"])
    assert {r["user_id"]: (r["n"], r["total"]) for r in read("ev_per_user").to_pylist()} == per_user

    log = events(store, prefix)
    audits = [json.loads(e["details"])["forget"] for e in log if e["event_type"] == "forget"]
    assert sorted(a["status"] for a in audits) == ["COMPLETED", "ERASED", "STARTED"]
    erased = {t["table"]: t["rows_erased"] for t in next(a for a in audits if a["status"] == "ERASED")["tables"]}
    assert erased["ev_silver"] == sum(1 for e in produced if isinstance(e, dict) and e["user_id"] == ERASED)
    assert erased["ev_bronze"] == sum(1 for e in produced if ERASED.encode() in
                                      (e if isinstance(e, bytes) else json.dumps(e).encode()))
    assert all(a["predicate"] == "(user_id = '***')" for a in audits)

    # The next run reads only what is new: the reader was moved past the erasure, nothing twice.
    third = make_events(28, 34, users=[u for u in USERS if u != ERASED])
    produce_values(bootstrap, topic, third)
    run_ok(store, "run", pipe, "--once")
    kept += third
    assert rows(read("ev_silver"), cols) == sorted(tuple(e[c] for c in cols) for e in kept)
    assert rows(read("ev_big"), ["user_id", "amount", "seq"]) == sorted(
        (e["user_id"], e["amount"], e["seq"]) for e in kept if e["amount"] >= 50)
