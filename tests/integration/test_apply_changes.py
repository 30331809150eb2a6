"""APPLY CHANGES / AUTO CDC into SCD type 1 and 2 targets, run end to end: a Kafka topic of change
records -> a streaming table -> APPLY CHANGES, checked after every run against a Python model
of DLT's semantics (SCD1: the latest SEQUENCE BY value per key wins, deletes keep tombstones;
SCD2: each key's history replayed in sequence order, with __START_AT / __END_AT) with
deltalake and DuckDB as readers; crashes between the state save and the MERGE commit keep
every change exactly once."""
import random
import signal
import subprocess

from deltalake import DeltaTable

from conftest import SLUICE, duckdb_connection, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

KEYS = 15


def change_stream(rng, first_seq, n):
    """n changes with sequence numbers first_seq.., deletes then re-inserts of the same keys,
    duplicates, and a bounded shuffle (each change moves up to 6 places)."""
    out = []
    for seq in range(10 * first_seq, 10 * (first_seq + n), 10):  # gaps: room for late changes
        key = rng.randrange(KEYS)
        if rng.random() < 0.2:
            out.append({"id": key, "name": None, "city": None, "op": "d", "seq": seq})
        else:
            out.append({"id": key, "name": f"n{seq}", "city": rng.choice(["a", "b", None]), "op": "u", "seq": seq})
        if rng.random() < 0.15:
            out.append(dict(rng.choice(out)))  # a duplicate of an earlier change
    for i in range(len(out) - 1):
        j = min(len(out) - 1, i + rng.randrange(6))
        out[i], out[j] = out[j], out[i]
    return out


def scd1_model(changes, ignore_null_updates=False):
    """DLT's SCD type 1 over all changes so far: per key the change with the highest sequence
    (a tie is a duplicate), deletes remove the row; IGNORE NULL UPDATES keeps a column's value
    when an update has it null."""
    latest = {}
    for c in sorted(changes, key=lambda c: c["seq"]):
        prev = latest.get(c["id"])
        if prev and prev["seq"] >= c["seq"]:
            continue
        row = dict(c)
        if ignore_null_updates and prev and prev["op"] == "u" and c["op"] == "u":
            for col in ("name", "city"):
                if row[col] is None:
                    row[col] = prev[col]
        latest[c["id"]] = row
    return sorted((r["id"], r["name"], r["city"], r["seq"]) for r in latest.values() if r["op"] == "u")


def target_rows(pipe, table="customers", seq="seq"):
    """(id, name, city, <seq>) of an SCD1 target, read by deltalake and DuckDB (they agree)."""
    path = pipe / "data" / "tables" / table
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    by_deltalake = sorted((r["id"], r["name"], r["city"], r[seq]) for r in rows)
    con = duckdb_connection()
    by_duckdb = sorted(con.sql(f"SELECT id, name, city, {seq} FROM delta_scan('{path}')").fetchall())
    assert by_deltalake == by_duckdb
    return by_deltalake


def cdc_pipeline(tmp_path, name, bootstrap, topic, apply, target_properties=""):
    pipe = kafka_pipeline(tmp_path / name, name, bootstrap, extra="commit: {max_rows: 40}\n")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE cdc_raw AS SELECT c.* FROM (SELECT from_json(CAST(value AS STRING),
  'id BIGINT, name STRING, city STRING, op STRING, seq BIGINT') AS c FROM STREAM read_kafka(topic => '{topic}'));
CREATE STREAMING TABLE customers {target_properties};
{apply};
""")
    return pipe


APPLY = ("APPLY CHANGES INTO customers FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd' "
         "SEQUENCE BY seq COLUMNS * EXCEPT (op) STORED AS SCD TYPE 1")


def test_scd1_equals_the_model_after_every_run_and_crash(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "scd1", bootstrap, topic, APPLY)
    rng = random.Random(11)
    produced = []
    for run in range(3):
        chunk = change_stream(rng, 1 + 100 * run, 100)
        # Late changes from earlier runs too: older sequence values that must lose.
        chunk += [dict(c, name="stale") for c in rng.sample(produced, min(5, len(produced)))]
        produce_values(bootstrap, topic, chunk)
        if run == 1:
            # Killed after the MERGE's files and the state are written, before its commit.
            before = target_rows(pipe)
            crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "before_apply_changes_commit"})
            assert crashed.returncode == 137, crashed.stderr
            assert target_rows(pipe) == before
        produced += chunk
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        assert target_rows(pipe) == scd1_model(produced), f"run {run}"
    history = DeltaTable(str(pipe / "data" / "tables" / "customers")).history(1)[0]
    assert history["operation"] == "MERGE"
    assert "numTargetRowsInserted" in history["operationMetrics"]
    version = DeltaTable(str(pipe / "data" / "tables" / "customers")).version()
    assert run_sluice("run", pipe, "--once").returncode == 0
    assert DeltaTable(str(pipe / "data" / "tables" / "customers")).version() == version  # nothing new: no commit


def test_first_run_falls_back_to_the_snapshot_only_when_the_history_is_gone(tmp_path, bootstrap, new_topic):
    """The first run (here after a full refresh of the target) replays the upstream commit by
    commit; only a history that is not there (commits cleaned up after a checkpoint) falls back
    to the upstream's snapshot. An unreadable commit is an error, not a silent fallback."""
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "history", bootstrap, topic, APPLY)
    changes = change_stream(random.Random(23), 1, 40)
    produce_values(bootstrap, topic, changes)
    assert run_sluice("run", pipe, "--once").returncode == 0
    raw = pipe / "data" / "tables" / "cdc_raw"
    DeltaTable(str(raw)).create_checkpoint()  # the snapshot no longer needs the commits before it
    first = raw / "_delta_log" / "00000000000000000000.json"
    first.write_text("not a commit\n")
    broken = run_sluice("run", pipe, "--once", "--full-refresh", "customers")
    assert broken.returncode != 0
    assert "00000000000000000000.json" in broken.stderr, broken.stderr
    first.unlink()  # as log retention removes it
    result = run_sluice("run", pipe, "--once", "--full-refresh", "customers")
    assert result.returncode == 0, result.stderr
    assert target_rows(pipe) == scd1_model(changes)


def test_sigkill_at_random_moments_keeps_every_change_once(tmp_path, bootstrap, new_topic):
    """Runs SIGKILLed at seeded random moments (before, during or after the MERGE), then a
    run to the end: the target equals the model, as if nothing had been killed."""
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "sigkill", bootstrap, topic, APPLY)
    rng = random.Random(17)
    produced = []
    for round_ in range(3):
        chunk = change_stream(rng, 1 + 50 * round_, 50)
        produce_values(bootstrap, topic, chunk)
        produced += chunk
        proc = subprocess.Popen([str(SLUICE), "run", str(pipe), "--once"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(0.3, 2.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        assert target_rows(pipe) == scd1_model(produced), f"round {round_}"


def test_auto_cdc_with_ignore_null_updates_and_truncate(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    apply = ("CREATE FLOW customers_cdc AS AUTO CDC INTO customers FROM STREAM(cdc_raw) KEYS (id) "
             "IGNORE NULL UPDATES APPLY AS DELETE WHEN op = 'd' APPLY AS TRUNCATE WHEN op = 't' "
             "SEQUENCE BY seq COLUMNS * EXCEPT (op) STORED AS SCD TYPE 1")
    pipe = cdc_pipeline(tmp_path, "auto", bootstrap, topic, apply)
    first = [{"id": 1, "name": "ann", "city": "a", "op": "u", "seq": 1},
             {"id": 2, "name": "bob", "city": "b", "op": "u", "seq": 2},
             {"id": 1, "name": None, "city": "c", "op": "u", "seq": 3}]
    produce_values(bootstrap, topic, first)
    assert run_sluice("run", pipe, "--once").returncode == 0
    assert target_rows(pipe) == scd1_model(first, ignore_null_updates=True) == [(1, "ann", "c", 3), (2, "bob", "b", 2)]
    second = [{"id": 2, "name": None, "city": None, "op": "u", "seq": 4},
              {"id": 0, "name": None, "city": None, "op": "t", "seq": 5},
              {"id": 3, "name": "cy", "city": None, "op": "u", "seq": 6},
              {"id": 1, "name": "late", "city": "z", "op": "u", "seq": 2}]
    produce_values(bootstrap, topic, second)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    assert target_rows(pipe) == [(3, "cy", None, 6)]


def test_tombstones_are_collected_after_the_threshold(tmp_path, bootstrap, new_topic):
    """A delete's tombstone rejects older upserts of the key until it is older than
    pipelines.cdc.tombstoneGCThresholdInSeconds (0 here: collected at the next micro-batch);
    then, as in DLT, an older upsert is applied again."""
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "gc", bootstrap, topic, APPLY,
                        "TBLPROPERTIES ('pipelines.cdc.tombstoneGCThresholdInSeconds' = '0')")
    runs = [[{"id": 1, "name": "a", "city": None, "op": "u", "seq": 10},
             {"id": 1, "name": None, "city": None, "op": "d", "seq": 20}],
            [{"id": 1, "name": "late", "city": None, "op": "u", "seq": 15}],   # rejected, then collected
            [{"id": 1, "name": "later", "city": None, "op": "u", "seq": 16}]]  # no tombstone left
    want = [[], [], [(1, "later", None, 16)]]
    for changes, rows in zip(runs, want):
        produce_values(bootstrap, topic, changes)
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        assert target_rows(pipe) == rows


def scd2_model(changes, tracked=("id", "name", "city", "seq")):
    """DLT's SCD type 2 over all changes so far: each key's changes in sequence order (a repeated
    sequence value is a duplicate); an upsert whose tracked columns differ from the open version
    closes it at its sequence value and opens a new one, else updates it in place; a delete
    closes it."""
    by_key = {}
    for c in sorted(changes, key=lambda c: c["seq"]):
        by_key.setdefault(c["id"], []).append(c)
    rows = []
    for events in by_key.values():
        versions, is_open, last = [], False, None
        for c in events:
            if c["seq"] == last:
                continue
            last = c["seq"]
            if c["op"] == "d":
                if is_open:
                    versions[-1]["end"] = c["seq"]
                is_open = False
                continue
            if is_open and all(versions[-1][t] == c[t] for t in tracked):
                versions[-1].update(name=c["name"], city=c["city"], seq=c["seq"])
                continue
            if is_open:
                versions[-1]["end"] = c["seq"]
            versions.append({"id": c["id"], "name": c["name"], "city": c["city"], "seq": c["seq"],
                             "start": c["seq"], "end": None})
            is_open = True
        rows += [(v["id"], v["name"], v["city"], v["seq"], v["start"], v["end"]) for v in versions]
    return sorted(rows, key=repr)


def history_rows(pipe, table="customers", seq="seq"):
    """(id, name, city, <seq>, __START_AT, __END_AT) of an SCD2 target, by deltalake and DuckDB."""
    path = pipe / "data" / "tables" / table
    rows = DeltaTable(str(path)).to_pyarrow_table().to_pylist()
    by_deltalake = sorted(((r["id"], r["name"], r["city"], r[seq], r["__START_AT"], r["__END_AT"]) for r in rows),
                          key=repr)
    con = duckdb_connection()
    by_duckdb = sorted(con.sql(f"SELECT id, name, city, {seq}, __START_AT, __END_AT FROM delta_scan('{path}')")
                       .fetchall(), key=repr)
    assert by_deltalake == by_duckdb
    return by_deltalake


SCD2 = APPLY.replace("TYPE 1", "TYPE 2")


def test_scd2_history_equals_the_model_after_every_run(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "scd2", bootstrap, topic, SCD2)
    rng = random.Random(23)
    produced = []
    for run in range(3):
        chunk = change_stream(rng, 1 + 80 * run, 80)
        if produced:  # late changes: sequence values between versions already written
            chunk += [dict(c, seq=c["seq"] + 5, name=f"late{c['seq']}") for c in rng.sample(produced, 4)]
        produce_values(bootstrap, topic, chunk)
        produced += chunk
        if run == 1:
            crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "before_apply_changes_commit"})
            assert crashed.returncode == 137, crashed.stderr
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        assert history_rows(pipe) == scd2_model(produced), f"run {run}"
    assert DeltaTable(str(pipe / "data" / "tables" / "customers")).history(1)[0]["operation"] == "MERGE"


def test_scd2_tracks_history_on_the_columns_named(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "track", bootstrap, topic,
                        "APPLY CHANGES INTO customers FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd' "
                        "SEQUENCE BY seq COLUMNS * EXCEPT (op) STORED AS SCD TYPE 2 TRACK HISTORY ON * EXCEPT (city, seq)")
    changes = [{"id": 1, "name": "ann", "city": "a", "op": "u", "seq": 1},
               {"id": 1, "name": "ann", "city": "b", "op": "u", "seq": 2},  # untracked: in place
               {"id": 1, "name": "amy", "city": "b", "op": "u", "seq": 3},  # tracked: a new version
               {"id": 2, "name": "bob", "city": None, "op": "u", "seq": 4},
               {"id": 2, "name": None, "city": None, "op": "d", "seq": 5}]
    produce_values(bootstrap, topic, changes)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    assert history_rows(pipe) == scd2_model(changes, tracked=("id", "name")) == sorted([
        (1, "ann", "b", 2, 1, 3), (1, "amy", "b", 3, 3, None), (2, "bob", None, 4, 4, 5)], key=repr)


def test_scd2_and_track_history_on_scd1_are_refused_while_validating(tmp_path):
    pipe = cdc_pipeline(tmp_path, "refused", "127.0.0.1:1", "t", APPLY.replace("TYPE 1", "TYPE 1 TRACK HISTORY ON * EXCEPT (city)"))
    result = run_sluice("validate", pipe)
    assert result.returncode == 1
    assert "TRACK HISTORY ON applies to STORED AS SCD TYPE 2 only" in result.stderr, result.stderr


def test_scd2_delete_that_closed_nothing_closes_an_older_upsert_arriving_in_a_later_run(tmp_path, bootstrap, new_topic):
    """A delete that finds no open version leaves no row in the history; its tombstone (the
    flow's state, kept across runs) closes the version an older upsert opens later, as the
    model's replay in sequence order does (found by the chaos test: changes of one key in two
    partitions, read in different micro-batches)."""
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "scd2late", bootstrap, topic, SCD2)
    runs = [[{"id": 1, "name": "a", "city": None, "op": "u", "seq": 10},
             {"id": 1, "name": None, "city": None, "op": "d", "seq": 20},
             {"id": 1, "name": None, "city": None, "op": "d", "seq": 40}],  # closes nothing
            [{"id": 1, "name": "late", "city": None, "op": "u", "seq": 30}]]
    produced = []
    for changes in runs:
        produce_values(bootstrap, topic, changes)
        produced += changes
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        assert history_rows(pipe) == scd2_model(produced)
    assert history_rows(pipe) == [(1, "a", None, 10, 10, 20), (1, "late", None, 30, 30, 40)]


def test_scd2_target_from_before_tombstones_survives_a_crash_after_its_first_state_save(tmp_path, bootstrap, new_topic):
    """An SCD2 target written before its tombstones were kept has progress and no state. A run
    killed between its first state save and the MERGE commit leaves a snapshot for progress that
    never landed; the next run must take that as no state (the target holds no marker that its
    state is committed), not stop for good asking for a full refresh."""
    import json
    import shutil
    topic = new_topic(1)
    pipe = cdc_pipeline(tmp_path, "scd2legacy", bootstrap, topic, SCD2)
    target = pipe / "data" / "tables" / "customers"
    produced = [{"id": 1, "name": "a", "city": None, "op": "u", "seq": 10},
                {"id": 2, "name": "b", "city": None, "op": "u", "seq": 10}]
    produce_values(bootstrap, topic, produced)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    # As a target from before tombstone state: no state folder, no state marker in its log.
    shutil.rmtree(target / "_sluice_state")
    for commit in sorted((target / "_delta_log").glob("*.json")):
        lines = commit.read_text().splitlines()
        kept = [l for l in lines if "sluice:state_kept:" not in json.dumps(json.loads(l).get("txn", {}))]
        commit.write_text("".join(l + "\n" for l in kept))
    assert not list((target / "_delta_log").glob("*.checkpoint*.parquet"))
    more = [{"id": 1, "name": "a2", "city": None, "op": "u", "seq": 20},
            {"id": 3, "name": None, "city": None, "op": "d", "seq": 30}]  # closes nothing: a tombstone
    produce_values(bootstrap, topic, more)
    produced += more
    crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "before_apply_changes_commit"})
    assert crashed.returncode == 137, crashed.stderr
    assert list((target / "_sluice_state").rglob("*.arrow"))  # the orphan of the commit that never landed
    for _ in range(2):  # the second run: the state (and its marker) committed by the first
        result = run_sluice("run", pipe, "--once")
        assert result.returncode == 0, result.stderr
        assert history_rows(pipe) == scd2_model(produced)
    log = "".join(c.read_text() for c in sorted((target / "_delta_log").glob("*.json")))
    assert "sluice:state_kept:" in log
