"""`sluice forget`: a Kafka -> bronze (raw value) -> silver (decoded, quarantine, change data feed)
-> STREAM reader (deletion vectors on), change-feed reader, APPLY CHANGES SCD1 target (operator
state, no user column) and per-user view pipeline, with an OPTIMIZE and an UPDATE (whose
commitInfo quotes the value; on the deletion-vector table the old rows stay in their files,
hidden) before the erasure. The first forget is killed between its
erasure commits and its clean-up (fail point); the second finishes it. Then no file under the
storage folder holds the value — raw bytes, and every Parquet file decompressed by pyarrow — while
the same scan finds it before; deltalake, DuckDB and Polars (Spark in the slow test) read every
table equal to a Python model minus the erased rows; the next run appends new events once; the
audit event is in the event log, redacted."""
import fcntl
import json
import os
import pathlib
import subprocess
import time
import uuid

import pyarrow.parquet as pq
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from conftest import SLUICE, run_sluice
from readers import read_deltalake, read_duckdb, read_polars
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

ERASED = "u-42"
USERS = ["u-4", "u-7", "u-13", ERASED]  # none of the others contains the erased id
KINDS = ["view", "click", "buy"]

SQL = """
CREATE OR REFRESH STREAMING TABLE events_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE events_silver (
  CONSTRAINT known_kind EXPECT (kind IN ('view', 'click', 'buy')) ON VIOLATION DROP ROW
) TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true', 'sluice.quarantine' = 'true')
AS SELECT e.user_id, e.kind, e.amount, e.seq
FROM (SELECT from_json(CAST(value AS STRING), 'user_id STRING, kind STRING, amount BIGINT, seq BIGINT') AS e
      FROM STREAM(events_bronze))
WHERE e.user_id IS NOT NULL;

CREATE OR REFRESH STREAMING TABLE big_events
TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true', 'delta.enableDeletionVectors' = 'true')
AS SELECT user_id, amount, seq FROM STREAM(events_silver) WHERE amount >= 50;

CREATE OR REFRESH STREAMING TABLE silver_changes
AS SELECT user_id, seq, _change_type FROM STREAM table_changes('events_silver', 0);

CREATE OR REFRESH STREAMING TABLE latest_per_kind;
APPLY CHANGES INTO latest_per_kind FROM STREAM(events_silver) KEYS (kind)
  SEQUENCE BY seq COLUMNS kind, seq STORED AS SCD TYPE 1;

CREATE OR REFRESH MATERIALIZED VIEW per_user
AS SELECT user_id, count(*) AS n, sum(amount) AS total FROM events_silver GROUP BY user_id;
"""


def events(lo, hi, users=USERS):
    out = []
    for i in range(lo, hi):
        out.append({"user_id": users[i % len(users)], "kind": KINDS[i % 3], "amount": (i * 37) % 100, "seq": i})
    return out


def run_once(pipe):
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    return r


def storage_hits(root, needle=ERASED):
    """Files under `root` holding `needle`: in their raw bytes, or (Parquet) in any value once
    pyarrow has decompressed and decoded them."""
    hits = set()
    raw = needle.encode()
    for path in pathlib.Path(root).rglob("*"):
        if path.is_dir():
            if needle in path.name:
                hits.add(str(path))
            continue
        data = path.read_bytes()
        if raw in data:
            hits.add(str(path))
        elif path.suffix == ".parquet":
            table = pq.read_table(path)
            if needle in repr(table.to_pylist()):
                hits.add(str(path))
    return hits


def rows(table, columns):
    return sorted(tuple(r[c] for c in columns) for r in table.to_pylist())


def silver_model(produced):
    return [e for e in produced if isinstance(e, dict) and e["kind"] in KINDS]


def make_topic(bootstrap):
    """A new one-partition topic, once every partition has a leader in the broker's metadata
    (conftest's new_topic is per test; this module's pipeline is built once)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    name = f"t-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(timeout=30)
    deadline = time.monotonic() + 30
    while True:
        meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
        if meta is not None and meta.error is None and all(p.leader >= 0 for p in meta.partitions.values()) \
                and meta.partitions:
            return name
        assert time.monotonic() < deadline, f"topic {name} not in the broker's metadata after 30 s"
        time.sleep(0.05)  # a poll interval, not a synchronisation


@pytest.fixture(scope="module")
def forgotten(tmp_path_factory, bootstrap):
    """The pipeline before and after forget, with what each step printed."""
    tmp = tmp_path_factory.mktemp("forget")
    topic = make_topic(bootstrap)
    pipe = kafka_pipeline(tmp, "forgetp", bootstrap)
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    data = pipe / "data"
    tables = data / "tables"

    # Two runs; a quarantined and an undecodable record of the erased user too.
    produced = events(0, 24)
    bogus = [{"user_id": ERASED, "kind": "bogus", "amount": 1, "seq": 1000},
             {"user_id": "u-7", "kind": "bogus", "amount": 2, "seq": 1001}]
    malformed = [f'{{"user_id": "{ERASED}", "kind": "view", broken'.encode()]
    produce_values(bootstrap, topic, produced + bogus + malformed)
    run_once(pipe)
    second = events(24, 40)
    produce_values(bootstrap, topic, second)
    run_once(pipe)
    produced = produced + bogus + malformed + second
    # OPTIMIZE leaves the compacted files (holding the value) as tombstones; the UPDATE writes
    # change data and a commitInfo whose predicate quotes the value.
    r = run_sluice("table", "optimize", tables / "events_bronze")
    assert r.returncode == 0, r.stderr
    r = run_sluice("sql", pipe, f"UPDATE big_events SET amount = amount + 1000 WHERE user_id = '{ERASED}'")
    assert r.returncode == 0, r.stderr
    before = storage_hits(data)
    dv_files_before = sorted((tables / "big_events").rglob("deletion_vector_*.bin"))
    versions_before = {t.name: DeltaTable(str(t)).version() for t in tables.iterdir()}

    interrupted = run_sluice("forget", pipe, "--where", f"user_id = '{ERASED}'", "--format", "json",
                             env_extra={"SLUICE_FAILPOINT": "forget_before_clean_up"})
    after_kill = storage_hits(data)
    silver_after_kill = read_deltalake(tables / "events_silver")
    history_after_kill = DeltaTable(str(tables / "events_silver")).history()
    finished = run_sluice("forget", pipe, "--where", f"user_id = '{ERASED}'", "--format", "json")
    assert finished.returncode == 0, finished.stderr
    after = storage_hits(data)
    report = json.loads(finished.stdout)

    third = events(40, 52, users=["u-4", "u-7", "u-13"])
    produce_values(bootstrap, topic, third)
    next_run = run_once(pipe)
    return dict(pipe=pipe, data=data, topic=topic, tables=tables, produced=produced, third=third, before=before,
                versions_before=versions_before, dv_files_before=dv_files_before, interrupted=interrupted, after_kill=after_kill,
                silver_after_kill=silver_after_kill, history_after_kill=history_after_kill, finished=finished, after=after, report=report,
                next_run=next_run)


def test_the_value_is_found_before_and_in_no_file_after(forgotten):
    before = forgotten["before"]
    # The scan finds the value where forget must remove it: data files, the UPDATE's commit,
    # change data, the quarantine table.
    assert any("/events_bronze/" in h and h.endswith(".parquet") for h in before), before
    assert any("/_change_data/" in h for h in before), before
    assert any("/big_events/_delta_log/" in h and h.endswith(".json") for h in before), before
    assert any("/events_silver_quarantine/" in h for h in before), before
    assert any("/per_user/_sluice_state/" in h for h in before), before
    # The UPDATE on the deletion-vector table hid the old rows in files that still hold them.
    assert forgotten["dv_files_before"], "the UPDATE wrote no deletion vector"
    # Killed between its erasure commits and its clean-up: the tables no longer show the rows,
    # but older files still hold them.
    assert forgotten["interrupted"].returncode == 137, forgotten["interrupted"].stderr
    assert ERASED not in repr(forgotten["silver_after_kill"].to_pylist())
    assert forgotten["after_kill"], "the fail point left nothing to clean up"
    # The second run finished it: nothing anywhere under the storage folder.
    assert forgotten["after"] == set()
    assert ERASED not in forgotten["finished"].stdout + forgotten["finished"].stderr


def test_every_reader_sees_the_model_minus_the_erased_rows(forgotten):
    tables = forgotten["tables"]
    produced = forgotten["produced"] + forgotten["third"]
    kept = [e for e in silver_model(produced) if e["user_id"] != ERASED]
    silver = ["user_id", "kind", "amount", "seq"]
    want = sorted(tuple(e[c] for c in silver) for e in kept)
    for read in (read_deltalake, read_duckdb, read_polars):
        assert rows(read(tables / "events_silver"), silver) == want, read.__name__
    big = sorted((e["user_id"], e["amount"], e["seq"]) for e in kept if e["amount"] >= 50)
    # big_events has deletion vectors, which the pinned deltalake (and Polars through it) does not read; DuckDB does.
    assert rows(read_duckdb(tables / "big_events"), ["user_id", "amount", "seq"]) == big
    # The change-feed reader: one insert per surviving silver row, none twice, none erased.
    changes = rows(read_deltalake(tables / "silver_changes"), ["user_id", "seq", "_change_type"])
    assert changes == sorted((e["user_id"], e["seq"], "insert") for e in kept)
    per_user = {}
    for e in kept:
        n, total = per_user.get(e["user_id"], (0, 0))
        per_user[e["user_id"]] = (n + 1, total + e["amount"])
    got = {r["user_id"]: (r["n"], r["total"]) for r in read_deltalake(tables / "per_user").to_pylist()}
    assert got == per_user
    # Bronze: every raw record but the erased user's (decoded, quarantined and undecodable).
    raw = sorted(bytes(r["value"]) for r in read_deltalake(tables / "events_bronze").to_pylist())
    want_raw = sorted(e if isinstance(e, bytes) else json.dumps(e).encode() for e in produced)
    assert raw == [v for v in want_raw if ERASED.encode() not in v]
    quarantined = rows(read_deltalake(tables / "events_silver_quarantine"), ["user_id", "seq"])
    assert quarantined == [("u-7", 1001)]
    # The APPLY CHANGES target (SCD1 state moved past the erasure with its reader): the next
    # run continued from its state; the latest seq per kind, as the model says.
    latest = {}
    for e in silver_model(produced):
        latest[e["kind"]] = max(latest.get(e["kind"], -1), e["seq"])
    assert rows(read_deltalake(tables / "latest_per_kind"), ["kind", "seq"]) == sorted(latest.items())


def test_report_history_and_audit_event_are_redacted(forgotten):
    report, tables = forgotten["report"], forgotten["tables"]
    by_table = {t["table"]: t for t in report["tables"]}
    assert report["predicate"] == "(user_id = '***')" and report["literalsRedacted"] == 1
    assert by_table["events_bronze"]["match"] == "decoded Kafka value"
    for name in ("events_silver", "big_events", "silver_changes", "per_user", "events_silver_quarantine"):
        assert by_table[name]["match"] == "columns", name
    # The erasure commit (seen before the clean-up): a redacted DELETE that readers skip.
    erasure = [h for h in forgotten["history_after_kill"] if h["operation"] == "DELETE"]
    assert len(erasure) == 1
    assert erasure[0]["operationParameters"]["predicate"] == '["(user_id = \'***\')"]'
    assert erasure[0]["operationParameters"]["sluice.forget"] == "true"
    # Time travel to before the erasure is gone with the old log.
    with pytest.raises(Exception):
        DeltaTable(str(tables / "events_silver"), version=forgotten["versions_before"]["events_silver"])
    # The audit events: the erasure (with its counts, recorded before the clean-up that was
    # killed) and the completion.
    log = read_deltalake(forgotten["data"] / "system" / "event_log").to_pylist()
    audits = [json.loads(e["details"])["forget"] for e in log if e["event_type"] == "forget"]
    erased = [a for a in audits if a["status"] == "ERASED" and any(t["rows_erased"] for t in a["tables"])]
    assert len(erased) == 1 and any(a["status"] == "COMPLETED" for a in audits)
    counts = {t["table"]: t["rows_erased"] for t in erased[0]["tables"]}
    produced = forgotten["produced"]
    silver_rows = [e for e in silver_model(produced) if e["user_id"] == ERASED]
    assert counts["events_silver"] == len(silver_rows)
    assert counts["events_bronze"] == sum(1 for e in produced if ERASED.encode() in
                                          (e if isinstance(e, bytes) else json.dumps(e).encode()))
    assert counts["events_silver_quarantine"] == 1
    assert all(a["predicate"] == "(user_id = '***')" and a["requested_by"] for a in audits)


def test_forget_refuses_what_it_cannot_do(forgotten):
    pipe = forgotten["pipe"]
    r = run_sluice("forget", pipe, "--where", "nobody_has_this = 'secret-1'")
    assert r.returncode == 1 and "secret-1" not in r.stderr
    assert "no table has the columns nobody_has_this" in r.stderr
    r = run_sluice("forget", pipe, "--where", "user_id = 'secret-2' AND")
    assert r.returncode == 1 and "secret-2" not in r.stderr and "does not parse" in r.stderr
    r = run_sluice("forget", pipe, "--where", "t.user_id = 'secret-3'")
    assert r.returncode == 1 and "secret-3" not in r.stderr and "without a qualifier" in r.stderr
    # While a run holds the pipeline's lock, forget is refused.
    with open(forgotten["data"] / "system" / "run.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        r = run_sluice("forget", pipe, "--where", "user_id = 'u-4'")
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert r.returncode == 1 and "another sluice run is using storage" in r.stderr, r.stderr


@pytest.mark.slow  # one JVM; the C++ paths are all covered by the tests above
def test_spark_reads_the_tables_after_forget(forgotten):
    from spark_support import read_delta_with_spark
    tables = forgotten["tables"]
    produced = forgotten["produced"] + forgotten["third"]
    kept = [e for e in silver_model(produced) if e["user_id"] != ERASED]
    cols = ["user_id", "kind", "amount", "seq"]
    assert rows(read_delta_with_spark(tables / "events_silver"), cols) == sorted(tuple(e[c] for c in cols) for e in kept)
    bronze = read_delta_with_spark(tables / "events_bronze")
    assert not any(ERASED.encode() in bytes(v) for v in bronze.column("value").to_pylist())


def test_forget_refuses_columns_taken_from_kafka_key_or_renamed(tmp_path, bootstrap, forgotten):
    """Lineage: a column cast from bronze's Kafka key, or a renamed field of its value, holds
    the value where forget does not match it: refused, naming the flow and column."""
    pipe = kafka_pipeline(tmp_path, "forgetkey", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE raw
AS SELECT * FROM STREAM read_kafka(topic => '{forgotten["topic"]}', starting_offsets => 'earliest');
CREATE OR REFRESH STREAMING TABLE keyed AS SELECT CAST(key AS STRING) AS user_id, topic FROM STREAM(raw);
CREATE OR REFRESH STREAMING TABLE renamed
AS SELECT e.user_id AS uid, e.seq
FROM (SELECT from_json(CAST(value AS STRING), 'user_id STRING, seq BIGINT') AS e FROM STREAM(raw));
""")
    run_once(pipe)
    versions = {t.name: DeltaTable(str(t)).version() for t in (pipe / "data" / "tables").iterdir()}
    r = run_sluice("forget", pipe, "--where", "user_id = 'secret-9'")
    assert r.returncode == 1, r.stdout
    assert "secret-9" not in r.stderr
    assert "column uid of flow renamed derives from raw.value" in r.stderr, r.stderr
    assert "raw: its Kafka key holds the value (flow keyed reads it as column user_id)" in r.stderr, r.stderr
    assert {t.name: DeltaTable(str(t)).version() for t in (pipe / "data" / "tables").iterdir()} == versions


def test_forget_erases_a_table_whose_folder_is_a_symlink(tmp_path, bootstrap, forgotten):
    """A table folder under tables/ that is a symlink to the real table: forget finds it (its
    _delta_log/ asked for by path) and erases the value there, not only in the plain table."""
    pipe = kafka_pipeline(tmp_path, "forgetlink", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE plain
AS SELECT * FROM STREAM read_kafka(topic => '{forgotten["topic"]}', starting_offsets => 'earliest');
CREATE OR REFRESH STREAMING TABLE linked
AS SELECT e.user_id, e.seq
FROM (SELECT from_json(CAST(value AS STRING), 'user_id STRING, seq BIGINT') AS e FROM STREAM(plain))
WHERE e.user_id IS NOT NULL;
""")
    run_once(pipe)
    tables = pipe / "data" / "tables"
    real = tmp_path / "elsewhere" / "linked"
    real.parent.mkdir()
    (tables / "linked").rename(real)
    (tables / "linked").symlink_to(real, target_is_directory=True)
    seqs = sorted(r["seq"] for r in read_deltalake(real).to_pylist() if r["user_id"] != ERASED)
    assert storage_hits(real), "the linked table did not hold the value before forget"
    r = run_sluice("forget", pipe, "--where", f"user_id = '{ERASED}'", "--format", "json")
    assert r.returncode == 0, r.stderr
    by_table = {t["table"]: t for t in json.loads(r.stdout)["tables"]}
    assert by_table["linked"]["match"] == "columns" and by_table["linked"]["rowsErased"] > 0, by_table
    assert storage_hits(real) == set()
    assert storage_hits(pipe / "data") == set()
    assert sorted(r["seq"] for r in read_deltalake(tables / "linked").to_pylist()) == seqs


def test_forget_refuses_while_a_reader_lags_its_upstream(forgotten, bootstrap):
    """Last in the module (it adds events): a run killed after bronze's commit and before
    silver's leaves silver behind; forget refuses, naming it, until a run catches up."""
    pipe, tables = forgotten["pipe"], forgotten["tables"]
    produce_values(bootstrap, forgotten["topic"], events(60, 64, users=["u-4", "u-7"]))
    killed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "before_in_process_commit"})
    assert killed.returncode == 137, killed.stderr
    silver_version = DeltaTable(str(tables / "events_silver")).version()
    r = run_sluice("forget", pipe, "--where", "user_id = 'u-7'")
    assert r.returncode == 1, r.stdout
    assert "table events_silver has read events_bronze up to version" in r.stderr, r.stderr
    assert "u-7" not in r.stderr
    assert DeltaTable(str(tables / "events_silver")).version() == silver_version  # nothing changed
    run_once(pipe)
    r = run_sluice("forget", pipe, "--where", "user_id = 'u-7'")
    assert r.returncode == 0, r.stderr
    assert storage_hits(forgotten["data"], "u-7") == set()


def test_event_log_scrub_edits_json_strings_only(forgotten):
    """After the lagging test (it runs nothing): a literal that is also a number in the events'
    JSON details (a count of an earlier forget's audit) is replaced inside string values only:
    every details stays valid JSON and its numbers are unchanged."""
    log_path = forgotten["data"] / "system" / "event_log"

    def erased_counts():
        out = []
        for e in read_deltalake(log_path).to_pylist():
            details = json.loads(e["details"]) if e["details"] else {}  # raises if not JSON
            a = details.get("forget") if e["event_type"] == "forget" else None
            if a and a["status"] == "ERASED" and any(t["rows_erased"] for t in a["tables"]):
                out.append({t["table"]: t["rows_erased"] for t in a["tables"]})
        return sorted(out, key=lambda c: sorted(c.items()))

    before = erased_counts()
    literal = str(max(c["events_silver"] for c in before))
    r = run_sluice("forget", forgotten["pipe"], "--where", f"user_id = '{literal}'", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert erased_counts() == before


def start_paused(point, *args):
    """Starts sluice with SLUICE_FAILPOINT_PAUSE=point and returns once it says it paused there
    (it then waits for a line on stdin): no sleep, no timing."""
    proc = subprocess.Popen([str(SLUICE), *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, SLUICE_FAILPOINT_PAUSE=point))
    seen = []
    while True:
        line = proc.stderr.readline()
        seen.append(line)
        if not line:
            proc.kill()
            pytest.fail(f"sluice {args[0]} ended before its pause at {point}: {''.join(seen)}")
        if f"fail point '{point}' paused" in line:
            return proc, seen


def let_go(paused):
    proc, seen = paused
    out, err = proc.communicate("\n", timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "".join(seen) + err)


def test_forget_and_rewrites_of_a_table_never_run_at_once(tmp_path):
    """The tables' maintenance lock (no Kafka: a table deltalake wrote, 3 files per partition,
    the erased user in partition a only). An OPTIMIZE of partition b whose new files are written
    but not committed makes forget refuse, nothing changed (without the lock, forget's clean-up
    deleted those files and the OPTIMIZE then committed them: a table naming missing files).
    While forget runs (paused before its clean-up), `table optimize`, `table vacuum`, `table append`,
    a `sluice sql` DELETE and a vacuum of the event log are refused, naming it; a folder that is no
    table gets no lock file. After both: deltalake reads the table, every file it
    names exists, no file under the storage holds the value, and every other row is there."""
    from deltalake import write_deltalake
    import pyarrow as pa

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: mtlock\nstorage: ./data\n")
    table = pipe / "data" / "tables" / "people"
    model = []
    for part in range(3):
        batch = [{"user_id": USERS[i % 4], "p": "a" if USERS[i % 4] in (ERASED, "u-7") else "b", "seq": part * 8 + i}
                 for i in range(8)]
        write_deltalake(str(table), pa.Table.from_pylist(batch), partition_by=["p"], mode="append")
        model += batch
    where = f"user_id = '{ERASED}'"

    optimize = start_paused("optimize_before_commit", "table", "optimize", table, "--where", "p = 'b'")
    refused = run_sluice("forget", pipe, "--where", where, "--format", "json")
    assert refused.returncode != 0, refused.stdout
    assert "table optimize" in refused.stderr and "Nothing was changed" in refused.stderr, refused.stderr
    assert ERASED not in refused.stderr
    optimized = let_go(optimize)
    assert optimized.returncode == 0, optimized.stderr
    assert "committed OPTIMIZE" in optimized.stdout, optimized.stdout

    not_a_table = run_sluice("table", "optimize", pipe / "data")
    assert not_a_table.returncode != 0 and "is not a Delta table" in not_a_table.stderr, not_a_table.stderr
    assert not (pipe / "data" / "_sluice_maintenance.lock").exists()  # no lock file left outside a table

    extra = tmp_path / "extra.parquet"
    pq.write_table(pa.Table.from_pylist([{"user_id": "u-4", "p": "b", "seq": 99}]), extra)
    forget = start_paused("forget_before_clean_up", "forget", pipe, "--where", where, "--format", "json")
    during = [run_sluice("table", "optimize", table),
              run_sluice("table", "vacuum", table, "--retain", "0", "--force"),
              run_sluice("sql", pipe, "DELETE FROM people WHERE seq = 1"),
              run_sluice("table", "append", table, extra),
              run_sluice("table", "vacuum", pipe / "data" / "system" / "event_log", "--retain", "0", "--force")]
    finished = let_go(forget)
    for r in during:
        assert r.returncode != 0, r.stdout
        assert "`sluice forget`" in r.stderr and "Nothing was changed" in r.stderr, r.stderr
    assert finished.returncode == 0, finished.stderr
    report = {t["table"]: t for t in json.loads(finished.stdout)["tables"]}
    assert report["people"]["rowsErased"] == sum(1 for e in model if e["user_id"] == ERASED)

    dt = DeltaTable(str(table))
    for uri in dt.file_uris():
        assert pathlib.Path(uri.removeprefix("file://")).is_file(), f"the table names a missing file {uri}"
    assert rows(dt.to_pyarrow_table(), ["user_id", "p", "seq"]) == sorted(
        (e["user_id"], e["p"], e["seq"]) for e in model if e["user_id"] != ERASED)
    assert storage_hits(pipe / "data") == set()


def test_forget_fails_before_its_log_cut_when_an_upstream_was_appended_meanwhile(forgotten):
    """A writer that takes no lock (deltalake) appends a bronze row while forget is paused
    before its clean-up: forget must not move silver's progress past that commit (silver would
    never read it, and the log cut would delete it). It fails, naming the tables, with bronze's
    log uncut; a run reads the row into silver; forget run again finishes."""
    from deltalake import write_deltalake
    import pyarrow as pa

    pipe, tables = forgotten["pipe"], forgotten["tables"]
    bronze, silver = tables / "events_bronze", tables / "events_silver"
    current = DeltaTable(str(bronze)).to_pyarrow_table()
    row = current.slice(0, 1).to_pylist()[0]
    row["value"] = json.dumps({"user_id": "u-4", "kind": "view", "amount": 5, "seq": 9009}).encode()
    appended = pa.Table.from_pylist([row], schema=current.schema)

    forget = start_paused("forget_before_clean_up", "forget", pipe, "--where", "user_id = 'u-13'")
    write_deltalake(str(bronze), appended, mode="append")
    appended_version = DeltaTable(str(bronze)).version()
    failed = let_go(forget)
    assert failed.returncode != 0, failed.stdout
    assert "table events_silver cannot be moved past the erasure of events_bronze" in failed.stderr, failed.stderr
    assert "u-13" not in failed.stderr
    assert (bronze / "_delta_log" / f"{appended_version:020d}.json").is_file()  # not cut

    run_once(pipe)
    assert [r["seq"] for r in read_deltalake(silver).to_pylist()].count(9009) == 1
    finished = run_sluice("forget", pipe, "--where", "user_id = 'u-13'")
    assert finished.returncode == 0, finished.stderr
    assert storage_hits(forgotten["data"], "u-13") == set()
    seqs = [r["seq"] for r in read_deltalake(silver).to_pylist()]
    assert seqs.count(9009) == 1 and not any(r["user_id"] == "u-13" for r in read_deltalake(silver).to_pylist())


def test_forget_stops_before_the_log_cut_on_a_commit_after_its_last_check(tmp_path):
    """No Kafka: a table deltalake wrote. A writer without a lock (deltalake) commits while forget
    is paused right before its log cut, after its clean-up's last read of the log: that commit
    could name a file the clean-up deleted, so forget stops with the log whole (every commit still
    there, the erased rows gone), naming the version and its operation in the error and in a
    FAILED audit event. Run again, forget cuts the log; no file holds the value."""
    from deltalake import write_deltalake
    import pyarrow as pa

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: mccut\nstorage: ./data\n")
    table = pipe / "data" / "tables" / "people"
    batch = [{"user_id": USERS[i % 4], "seq": i} for i in range(8)]
    write_deltalake(str(table), pa.Table.from_pylist(batch), mode="append")
    where = f"user_id = '{ERASED}'"

    forget = start_paused("forget_before_log_cut", "forget", pipe, "--where", where)
    write_deltalake(str(table), pa.Table.from_pylist([{"user_id": "u-4", "seq": 100}]), mode="append")
    foreign = DeltaTable(str(table)).version()
    stopped = let_go(forget)
    assert stopped.returncode != 0, stopped.stdout
    assert f"people was not cut: version {foreign} (operation 'WRITE'" in stopped.stderr, stopped.stderr
    assert ERASED not in stopped.stderr
    log = table / "_delta_log"
    assert all((log / f"{v:020d}.json").is_file() for v in range(foreign + 1))  # nothing cut
    assert ERASED not in {r["user_id"] for r in read_deltalake(table).to_pylist()}
    failed = [r for r in read_deltalake(pipe / "data" / "system" / "event_log").to_pylist()
              if r["event_type"] == "forget" and '"FAILED"' in (r["details"] or "")]
    assert len(failed) == 1 and f"version {foreign}" in failed[0]["details"], failed

    finished = run_sluice("forget", pipe, "--where", where)
    assert finished.returncode == 0, finished.stderr
    assert not (log / f"{0:020d}.json").exists()
    assert storage_hits(pipe / "data") == set()
    assert sorted(r["seq"] for r in read_deltalake(table).to_pylist()) == sorted(
        [e["seq"] for e in batch if e["user_id"] != ERASED] + [100])


def next_pause(paused, point):
    """Lets a paused sluice go on and returns once it pauses at `point` again."""
    proc, seen = paused
    proc.stdin.write("\n")
    proc.stdin.flush()
    while True:
        line = proc.stderr.readline()
        seen.append(line)
        if not line:
            proc.kill()
            pytest.fail(f"sluice ended before its next pause at {point}: {''.join(seen)}")
        if f"fail point '{point}' paused" in line:
            return paused


def foreign_commit(table, actions):
    """Writes the next commit of `table` as a writer without a lock would (Spark's engineInfo)."""
    version = DeltaTable(str(table)).version() + 1
    info = {"commitInfo": {"operation": "WRITE", "engineInfo": "Apache-Spark/3.5.1 Delta-Lake/3.2.0",
                           "timestamp": int(time.time() * 1000)}}
    text = "".join(json.dumps(a) + "\n" for a in [info, *actions])
    (table / "_delta_log" / f"{version:020d}.json").write_text(text)
    return version


def test_forget_on_a_partitioned_table_checks_commits_between_its_two_vacuum_passes(tmp_path):
    """No Kafka. On a partitioned table forget vacuums twice (the second pass deletes the partition
    folders the first emptied). A lockless writer's file, written before forget started, is deleted
    by the first pass; the writer commits it while the second pass runs. The second pass checks
    only its own deletions: the log cut must still stop on that commit (before: the cut deleted
    every earlier commit and deltalake failed on the missing file), leaving the log whole."""
    from deltalake import write_deltalake
    import pyarrow as pa

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: mcparts\nstorage: ./data\n")
    table = pipe / "data" / "tables" / "people"
    batch = [{"user_id": USERS[i % 4], "seq": i, "part": "ab"[i % 2]} for i in range(12)]
    write_deltalake(str(table), pa.Table.from_pylist(batch), mode="append", partition_by=["part"])
    stray = table / "part=a" / "stray-spark.parquet"
    pq.write_table(pa.Table.from_pylist([{"user_id": "u-7", "seq": 99}]), stray)
    an_hour_ago = time.time() - 3600  # written before forget started: the first pass deletes it
    os.utime(stray, (an_hour_ago, an_hour_ago))
    size = stray.stat().st_size
    where = f"user_id = '{ERASED}'"

    forget = start_paused("vacuum_after_choice", "forget", pipe, "--where", where)  # people, first pass
    next_pause(forget, "vacuum_after_choice")  # people, second pass: the stray file is gone
    assert not stray.exists()
    foreign = foreign_commit(table, [{"add": {"path": "part=a/stray-spark.parquet", "partitionValues": {"part": "a"},
                                              "size": size, "modificationTime": int(an_hour_ago * 1000),
                                              "dataChange": True}}])
    stopped = let_go(forget)
    assert stopped.returncode != 0, stopped.stdout
    assert f"people was not cut: version {foreign} (operation 'WRITE' by Apache-Spark" in stopped.stderr, stopped.stderr
    assert ERASED not in stopped.stderr
    log = table / "_delta_log"
    assert all((log / f"{v:020d}.json").is_file() for v in range(foreign + 1))  # nothing cut: RESTORE can undo it


def test_a_stopped_log_cut_still_cuts_the_other_tables_and_the_event_log(tmp_path):
    """No Kafka: two tables deltalake wrote. deltalake appends to the first (alpha) while forget
    is paused before its log cuts: alpha's cut stops with its log whole, but people's log and the
    event log (vacuumed, its log cut) are still cleaned before forget fails naming alpha, with a
    FAILED audit event (before: forget returned at alpha's stop, leaving both whole)."""
    from deltalake import write_deltalake
    import pyarrow as pa

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: mcrest\nstorage: ./data\n")
    tables = pipe / "data" / "tables"
    batch = [{"user_id": USERS[i % 4], "seq": i} for i in range(8)]
    for name in ("alpha", "people"):
        write_deltalake(str(tables / name), pa.Table.from_pylist(batch), mode="append")
    where = f"user_id = '{ERASED}'"

    forget = start_paused("forget_before_log_cut", "forget", pipe, "--where", where)
    write_deltalake(str(tables / "alpha"), pa.Table.from_pylist([{"user_id": "u-4", "seq": 100}]), mode="append")
    foreign = DeltaTable(str(tables / "alpha")).version()
    stopped = let_go(forget)
    assert stopped.returncode != 0, stopped.stdout
    assert f"alpha was not cut: version {foreign} (operation 'WRITE'" in stopped.stderr, stopped.stderr
    assert "people was not cut" not in stopped.stderr
    first = f"{0:020d}.json"
    assert all((tables / "alpha" / "_delta_log" / f"{v:020d}.json").is_file() for v in range(foreign + 1))
    assert not (tables / "people" / "_delta_log" / first).exists()
    event_log = pipe / "data" / "system" / "event_log"
    assert not (event_log / "_delta_log" / first).exists()
    assert storage_hits(tables / "people") == set() and storage_hits(event_log) == set()
    failed = [r for r in read_deltalake(event_log).to_pylist()
              if r["event_type"] == "forget" and '"FAILED"' in (r["details"] or "")]
    assert len(failed) == 1 and f"alpha was not cut: version {foreign}" in failed[0]["details"], failed


def test_a_stopped_log_cut_of_the_event_log_is_audited(tmp_path):
    """No Kafka. A commit lands on the event log while forget is paused right before the event
    log's own log cut (the second `log_cleanup_before_cut`, after people's): that cut stops, and
    forget fails with a FAILED audit event naming it, as a table's stop does (before: none)."""
    from deltalake import write_deltalake
    import pyarrow as pa

    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: mcevlog\nstorage: ./data\n")
    table = pipe / "data" / "tables" / "people"
    write_deltalake(str(table), pa.Table.from_pylist([{"user_id": USERS[i % 4], "seq": i} for i in range(8)]))
    event_log = pipe / "data" / "system" / "event_log"

    forget = start_paused("log_cleanup_before_cut", "forget", pipe, "--where", f"user_id = '{ERASED}'")  # people
    next_pause(forget, "log_cleanup_before_cut")  # the event log
    foreign = foreign_commit(event_log, [])
    stopped = let_go(forget)
    assert stopped.returncode != 0, stopped.stdout
    assert f"event_log was not cut: version {foreign}" in stopped.stderr, stopped.stderr
    assert not (table / "_delta_log" / f"{0:020d}.json").exists()
    failed = [r for r in read_deltalake(event_log).to_pylist()
              if r["event_type"] == "forget" and '"FAILED"' in (r["details"] or "")]
    assert len(failed) == 1 and f"event_log was not cut: version {foreign}" in failed[0]["details"], failed
