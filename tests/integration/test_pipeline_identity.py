"""A pipeline's identity and its storage: progress is keyed by a stable pipeline id kept in
<storage>/system/pipeline.json, so renaming the pipeline (`name:`) continues exactly once in
every table (bronze, its dead letters, silver, its quarantine, a deduplicating table with
state, a materialized view); a second folder on the same storage is refused naming both; a
second run of a pipeline is refused at once naming the run that holds the storage, which a
SIGKILL releases; and the run summary counts what went to the side tables."""
import json
import re
import signal
import subprocess
import time
from collections import Counter

from deltalake import DeltaTable

from conftest import SLUICE, run_sluice, write_pipeline
from test_sql_pipeline_e2e import produce_values, wait_for

SQL = """
CREATE OR REFRESH STREAMING TABLE bronze
AS SELECT value.*, partition, offset FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                                           value_schema => 'id BIGINT, kind STRING, ts TIMESTAMP');

CREATE OR REFRESH STREAMING TABLE silver (
  CONSTRAINT has_id EXPECT (id IS NOT NULL) ON VIOLATION DROP ROW
) TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT id, kind, ts FROM STREAM(bronze);

CREATE OR REFRESH STREAMING TABLE unique_ids
AS SELECT DISTINCT id, ts FROM STREAM(silver) WATERMARK ts DELAY OF INTERVAL 1000 DAYS;

CREATE OR REFRESH MATERIALIZED VIEW by_kind AS SELECT kind, count(*) AS n FROM silver GROUP BY kind;
"""


def records(lo, hi):
    """Valid events, every 7th without id (quarantined), every 11th not JSON (dead letter)."""
    out = []
    for i in range(lo, hi):
        if i % 11 == 0:
            out.append(f'{{"id": {i}, broken'.encode())
        else:
            out.append({"id": None if i % 7 == 0 else i, "kind": "ab"[i % 2], "ts": f"2026-01-01T00:00:{i % 60:02d}Z"})
    return out


def pipeline_yaml(name, bootstrap, storage="./data", mode="triggered"):
    return (f"name: {name}\nstorage: {storage}\nmode: {mode}\ntrigger_interval: 200ms\n"
            f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")


def table(pipe, name):
    return DeltaTable(str(pipe / "data" / "tables" / name)).to_pyarrow_table().to_pylist()


def summary(stdout, dataset):
    """The numbers of a dataset's summary lines, summed: read, written, dropped, quarantined,
    dead-lettered."""
    totals = Counter()
    for line in stdout.splitlines():
        if not line.startswith(f"{dataset} ("):
            continue
        m = re.search(r": (\d+) rows read, (\d+) written, (\d+) dropped", line)
        assert m, line
        totals["read"] += int(m[1])
        totals["written"] += int(m[2])
        totals["dropped"] += int(m[3])
        if q := re.search(r", (\d+) quarantined into (\w+)", line):
            assert q[2] == f"{dataset}_quarantine", line
            totals["quarantined"] += int(q[1])
        if d := re.search(r", (\d+) dead-lettered into (\w+)", line):
            assert d[2] == f"{dataset}_dead_letter", line
            totals["dead_lettered"] += int(d[1])
    return totals


def check_exactly_once(pipe, produced):
    valid = [r for r in produced if isinstance(r, dict)]
    broken = [r for r in produced if isinstance(r, bytes)]
    with_id = sorted(r["id"] for r in valid if r["id"] is not None)

    bronze = table(pipe, "bronze")
    positions = [(r["partition"], r["offset"]) for r in bronze]
    assert len(positions) == len(set(positions)), "bronze: a Kafka record was written twice"
    assert len(bronze) == len(valid)
    dead = table(pipe, "bronze_dead_letter")
    assert sorted(r["value"] for r in dead) == sorted(broken), "bronze_dead_letter: not each broken record once"

    assert sorted(r["id"] for r in table(pipe, "silver")) == with_id, "silver: not each valid id once"
    quarantined = table(pipe, "silver_quarantine")
    assert len(quarantined) == sum(1 for r in valid if r["id"] is None), "silver_quarantine: not each row once"
    assert sorted(r["id"] for r in table(pipe, "unique_ids")) == with_id, "unique_ids: not each id once"
    want_kinds = Counter(r["kind"] for r in valid if r["id"] is not None)
    assert {r["kind"]: r["n"] for r in table(pipe, "by_kind")} == dict(want_kinds)


def test_rename_continues_every_table_exactly_once(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("shop", bootstrap))
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    first = records(0, 60)
    produce_values(bootstrap, topic, first, partitions=2)
    run1 = run_sluice("run", pipe, "--once")
    assert run1.returncode == 0, run1.stderr
    check_exactly_once(pipe, first)

    (pipe / "pipeline.yaml").write_text(pipeline_yaml("shop_v2", bootstrap))
    second = records(60, 130)
    produce_values(bootstrap, topic, second, partitions=2)
    run2 = run_sluice("run", pipe, "--once")
    assert run2.returncode == 0, run2.stderr
    check_exactly_once(pipe, first + second)
    assert "Pipeline 'shop' was renamed to 'shop_v2'; its progress continues (pipeline id 'shop')" in run2.stderr

    # The rename is in the event log, and recorded: the next run is no rename.
    events = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    renamed = [e for e in events if e["event_type"] == "pipeline_renamed"]
    assert len(renamed) == 1
    assert json.loads(renamed[0]["details"])["pipeline_renamed"] == {"from": "shop", "to": "shop_v2",
                                                                     "pipeline_id": "shop"}
    record = json.loads((pipe / "data" / "system" / "pipeline.json").read_text())
    assert (record["pipeline_id"], record["name"]) == ("shop", "shop_v2")
    run3 = run_sluice("run", pipe, "--once")
    assert run3.returncode == 0 and "renamed" not in run3.stderr, run3.stderr
    check_exactly_once(pipe, first + second)


def test_storage_without_identity_record_adopts_the_id_its_progress_was_recorded_under(tmp_path, bootstrap, new_topic):
    """Storage written before pipeline.json existed (or whose record was deleted), renamed in
    the same step: the id comes from the tables' progress, nothing is read twice."""
    topic = new_topic(2)
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("legacy", bootstrap))
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    first = records(0, 50)
    produce_values(bootstrap, topic, first, partitions=2)
    assert run_sluice("run", pipe, "--once").returncode == 0
    (pipe / "data" / "system" / "pipeline.json").unlink()
    (pipe / "pipeline.yaml").write_text(pipeline_yaml("modern", bootstrap))
    second = records(50, 90)
    produce_values(bootstrap, topic, second, partitions=2)
    run = run_sluice("run", pipe, "--once")
    assert run.returncode == 0, run.stderr
    assert "Pipeline 'legacy' was renamed to 'modern'" in run.stderr, run.stderr
    check_exactly_once(pipe, first + second)
    record = json.loads((pipe / "data" / "system" / "pipeline.json").read_text())
    assert (record["pipeline_id"], record["name"]) == ("legacy", "modern")


def test_run_summary_counts_dead_letters_and_quarantine_as_the_tables_hold_them(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("counts", bootstrap))
    (pipe / "p.sql").write_text(SQL.format(topic=topic))
    outputs = []
    for lo, hi in ((0, 40), (40, 100)):
        produce_values(bootstrap, topic, records(lo, hi))
        run = run_sluice("run", pipe, "--once")
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    stdout = "".join(outputs)
    bronze, silver = summary(stdout, "bronze"), summary(stdout, "silver")
    broken = sum(isinstance(r, bytes) for r in records(0, 100))
    assert bronze["dead_lettered"] == len(table(pipe, "bronze_dead_letter")) == broken, stdout
    assert bronze["written"] == len(table(pipe, "bronze")), stdout
    assert silver["quarantined"] == len(table(pipe, "silver_quarantine")) > 0, stdout
    assert silver["written"] == len(table(pipe, "silver")), stdout
    assert silver["dropped"] == silver["quarantined"], stdout


def test_second_folder_on_the_same_storage_is_refused_naming_both(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    storage = tmp_path / "shared"
    a = write_pipeline(tmp_path / "a", pipeline_yaml("a", bootstrap, storage=storage))
    b = write_pipeline(tmp_path / "b", pipeline_yaml("b", bootstrap, storage=storage))
    (a / "p.sql").write_text(f"CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');")
    (b / "p.sql").write_text(f"CREATE STREAMING TABLE other AS SELECT * FROM STREAM read_kafka(topic => '{topic}');")
    produce_values(bootstrap, topic, [{"i": i} for i in range(5)])
    assert run_sluice("run", a, "--once").returncode == 0
    refused = run_sluice("run", b, "--once")
    assert refused.returncode == 1
    assert f"folder {b}" in refused.stderr and f"folder {a}" in refused.stderr, refused.stderr
    assert "must not share one storage" in refused.stderr
    assert not (storage / "tables" / "other").exists()
    # A release directory of a (same name, another table added; a's folder kept): one pipeline.
    release = write_pipeline(tmp_path / "releases" / "v2", pipeline_yaml("a", bootstrap, storage=storage))
    (release / "p.sql").write_text((a / "p.sql").read_text() + "\n" + (b / "p.sql").read_text())
    (tmp_path / "current").symlink_to(release)
    deployed = run_sluice("run", tmp_path / "current", "--once")
    assert deployed.returncode == 0, deployed.stderr
    assert len(DeltaTable(str(storage / "tables" / "raw")).to_pyarrow_table()) == 5  # continued, not re-read
    # Moving a's folder is no second pipeline: b (the moved a) continues a's progress.
    (a / "pipeline.yaml").unlink()
    (release / "pipeline.yaml").unlink()
    (b / "p.sql").write_text((a / "p.sql").read_text())
    moved = run_sluice("run", b, "--once")
    assert moved.returncode == 0, moved.stderr
    assert "renamed to 'b'" in moved.stderr and "now runs from folder" in moved.stderr
    assert len(DeltaTable(str(storage / "tables" / "raw")).to_pyarrow_table()) == 5


def test_second_run_is_refused_at_once_naming_the_holder_until_it_is_killed(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("locked", bootstrap, mode="continuous"))
    (pipe / "p.sql").write_text(f"CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');")
    produce_values(bootstrap, topic, [{"i": i} for i in range(10)])
    runs = pipe / "data" / "system" / "runs"
    # A flag value stands for a secret here: the holder record and the refusal name only the flag.
    holder = subprocess.Popen([str(SLUICE), "run", str(pipe), "--bootstrap-servers", bootstrap],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: runs.exists() and any(p.suffix == ".json" and not p.name.startswith(".")
                                                      for p in runs.iterdir())), "the first run never took the lock"
        started = time.monotonic()
        refused = run_sluice("run", pipe, "--once")
        assert time.monotonic() - started < 10, "the second run waited instead of being refused"
        assert refused.returncode == 1
        err = refused.stderr
        assert "another sluice run is using storage" in err, err
        assert f"pid {holder.pid} on host " in err, err
        assert f"exclusive run of pipeline 'locked': {SLUICE} run {pipe} --bootstrap-servers" in err, err
        assert bootstrap not in err, err
        records = [p for p in runs.iterdir() if p.suffix == ".json"]
        assert records and all(bootstrap not in p.read_text() for p in records)
        assert "started 20" in err, err  # its start time
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # The kernel released the dead run's lock: the next run proceeds and continues its progress.
    produce_values(bootstrap, topic, [{"i": i} for i in range(10, 15)])
    after = run_sluice("run", pipe, "--once")
    assert after.returncode == 0, after.stderr
    offsets = [r["offset"] for r in table(pipe, "raw")]
    assert sorted(offsets) == list(range(15))


def test_scale_out_runs_share_the_storage_and_one_of_them_runs_downstream_tables(tmp_path, bootstrap, new_topic):
    from test_kafka_rebalance import PARTITIONS, Worker, produce, table_rows

    topic = new_topic(PARTITIONS)  # produce() spreads records over that many
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("scale", bootstrap, mode="continuous").replace(
        '"}\n', '", session.timeout.ms: "6000"}\n'))
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT partition, offset, CAST(value AS STRING) AS v
FROM STREAM read_kafka(topic => '{topic}', group_mode => 'subscribe');
CREATE STREAMING TABLE copy AS SELECT partition, offset, v FROM STREAM(raw);
""")
    tables = pipe / "data" / "tables"
    produce(bootstrap, topic, 0, 1000)
    a = Worker(pipe)
    b = c = None
    try:
        assert wait_for(lambda: table_rows(tables / "copy") >= 1000, 60), "".join(a.err)
        b = Worker(pipe)  # shares the lock: not refused
        produce(bootstrap, topic, 1000, 2000)
        assert wait_for(lambda: table_rows(tables / "copy") >= 2000, 60), "".join(a.err + b.err)
        assert b.proc.poll() is None, "".join(b.err)
        # --full-refresh would reset tables the running processes write: it needs the storage alone.
        refresh = run_sluice("run", pipe, "--full-refresh", timeout=60)
        assert refresh.returncode == 1 and "another sluice run is using storage" in refresh.stderr, refresh.stderr
        assert "this run is exclusive" in refresh.stderr, refresh.stderr
        # B's whole output (it ended, its readers are done): it never ran the downstream table.
        assert b.stop() == 0, "".join(b.err)
        assert not any(line.startswith("copy (") for line in b.out), "both processes ran the downstream table"
        c = Worker(pipe)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(30)
        # The leader died: C takes the downstream table over (and, after the session timeout,
        # A's partitions).
        produce(bootstrap, topic, 2000, 3000)
        assert wait_for(lambda: table_rows(tables / "copy") >= 3000, 90), "".join(c.err)
        assert c.stop() == 0, "".join(c.err)
        assert any(line.startswith("copy (") for line in c.out)
        assert "now runs the datasets that do not scale out" in "".join(c.err)
    finally:
        for w in (a, b, c):
            if w:
                w.kill()
    for name in ("raw", "copy"):
        rows = DeltaTable(str(tables / name)).to_pyarrow_table().to_pylist()
        keys = [(r["partition"], r["offset"]) for r in rows]
        assert len(keys) == len(set(keys)) == 3000, f"{name}: {len(keys)} rows, {len(set(keys))} distinct"
        assert sorted(json.loads(r["v"])["i"] for r in rows) == list(range(3000))


def test_bronze_list_with_subscribing_sql_runs_alone(tmp_path, bootstrap, new_topic):
    """A `bronze:` list reads every partition in every process: such a pipeline never scales out,
    even when its SQL reads subscribe."""
    topic, bronze_topic = new_topic(1), new_topic(1)
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("mixed", bootstrap, mode="continuous")
                          + f"bronze:\n  - topic: {bronze_topic}\n")
    (pipe / "p.sql").write_text(
        f"CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}', group_mode => 'subscribe');")
    runs = pipe / "data" / "system" / "runs"
    holder = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: holder.poll() is not None or (runs.exists() and any(
            p.suffix == ".json" and not p.name.startswith(".") for p in runs.iterdir()))), "no lock taken"
        assert holder.poll() is None, holder.communicate()
        refused = run_sluice("run", pipe, timeout=60)
        assert refused.returncode == 1, refused.stderr
        assert f"pid {holder.pid} on host " in refused.stderr and "exclusive run of pipeline 'mixed'" in refused.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)


def test_camel_case_group_mode_scales_out(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    pipe = write_pipeline(tmp_path / "pipe", pipeline_yaml("camel", bootstrap, mode="continuous"))
    (pipe / "p.sql").write_text(
        f"CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(subscribe => '{topic}', groupMode => 'subscribe');")
    runs = pipe / "data" / "system" / "runs"
    holder = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: runs.exists() and any(p.suffix == ".json" and not p.name.startswith(".")
                                                      for p in runs.iterdir())), "the first run never took the lock"
        records = [json.loads(p.read_text()) for p in runs.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
        assert [r["mode"] for r in records] == ["scale-out"], records
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=30)
