"""Scale-out (issue 13): three `sluice run` workers in continuous mode, each on its own copy of
the pipeline folder, all on one storage folder and in one consumer group (read_kafka
group_mode => 'subscribe'), while a producer writes; workers are killed with SIGKILL (the
leader of the downstream datasets among them) and started again. At the end every produced
record is in bronze exactly once, the table read from it holds the same records, and the
materialized view equals a GROUP BY over bronze computed by DuckDB; the view's Delta log shows
that no two of its commits were computed from the same input version."""
import json
import pathlib
import signal
import threading
import uuid

from deltalake import DeltaTable

from conftest import duckdb_connection, write_pipeline
from test_kafka_rebalance import Worker, produce, table_rows, wait_for

PARTITIONS = 6
TOTAL = 60_000


def pipeline_folder(root, name, storage, bootstrap, topic):
    pipe = write_pipeline(root, f"""
name: {name}
storage: {storage}
mode: continuous
trigger_interval: 200ms
kafka:
  default: {{bootstrap.servers: "{bootstrap}", session.timeout.ms: "6000"}}
""")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT partition, offset, CAST(value AS STRING) AS v
FROM STREAM read_kafka(topic => '{topic}', group_mode => 'subscribe');
CREATE STREAMING TABLE copy AS SELECT partition, offset, v FROM STREAM(raw);
CREATE MATERIALIZED VIEW counts AS SELECT partition, count(*) AS n FROM raw GROUP BY partition;
""")
    return pipe


def ran(worker, dataset):
    return any(line.startswith(f"{dataset} (") for line in list(worker.out))


def view_total(table):
    if not (table / "_delta_log").exists():
        return 0
    try:
        return sum(DeltaTable(str(table)).to_pyarrow_table(columns=["n"]).column("n").to_pylist())
    except Exception:  # a log file being written right now
        return 0


def input_versions_of_commits(table: pathlib.Path):
    """Per commit of the view that recorded its input's progress (a `txn` action), the input
    versions it recorded, read from the JSON commit files themselves."""
    out = []
    for f in sorted((table / "_delta_log").glob("*.json")):
        txns = [json.loads(line)["txn"] for line in f.read_text().splitlines()
                if line.strip() and "txn" in json.loads(line)]
        if txns:
            out.append((int(f.stem), {t["appId"]: t["version"] for t in txns}))
    return out


def test_three_workers_with_kills_write_every_record_once(tmp_path, bootstrap, new_topic):
    topic = new_topic(PARTITIONS)
    name = f"scale3-{uuid.uuid4().hex[:8]}"
    storage = tmp_path / "shared"
    pipes = [pipeline_folder(tmp_path / f"worker{i}", name, storage, bootstrap, topic) for i in range(3)]
    tables = storage / "tables"
    workers = [Worker(pipes[0])]
    everyone = list(workers)  # every process started, the killed ones too (their output stays)
    producer = None
    try:
        # The first worker creates the storage, its tables and the event log alone.
        event_log = storage / "system" / "event_log" / "_delta_log"
        assert wait_for(lambda: (tables / "raw" / "_delta_log").exists() and event_log.exists()), "".join(workers[0].err)
        workers += [Worker(pipes[1]), Worker(pipes[2])]
        everyone += workers[1:]
        producer = threading.Thread(target=produce, args=(bootstrap, topic, 0, TOTAL // 2))
        producer.start()

        # Kill the leader (the worker running the downstream datasets) while records arrive.
        assert wait_for(lambda: table_rows(tables / "raw") >= 10_000, 180), [w.err[-5:] for w in workers]
        assert wait_for(lambda: any(ran(w, "copy") for w in workers), 120), [w.err[-5:] for w in workers]
        leader = next(i for i, w in enumerate(workers) if ran(w, "copy"))
        workers[leader].proc.send_signal(signal.SIGKILL)
        workers[leader].proc.wait(30)
        killed_leader = workers[leader]
        workers[leader] = Worker(pipes[leader])
        everyone.append(workers[leader])
        # The second half is written while the restarted worker joins and another one dies.
        producer.join()
        producer = threading.Thread(target=produce, args=(bootstrap, topic, TOTAL // 2, TOTAL))
        producer.start()

        # Kill another worker (a group member holding partitions) and start it again.
        other = (leader + 1) % 3
        assert wait_for(lambda: table_rows(tables / "raw") >= TOTAL // 2 + 5_000, 180), [w.err[-5:] for w in workers]
        workers[other].proc.send_signal(signal.SIGKILL)
        workers[other].proc.wait(30)
        workers[other] = Worker(pipes[other])
        everyone.append(workers[other])

        producer.join()
        producer = None
        done = lambda: (table_rows(tables / "raw") >= TOTAL and table_rows(tables / "copy") >= TOTAL
                        and view_total(tables / "counts") >= TOTAL)
        assert wait_for(done, 300), (table_rows(tables / "raw"), table_rows(tables / "copy"),
                                     view_total(tables / "counts"), [w.err[-5:] for w in workers])
        # The dead leader's role was taken over: another process ran the downstream datasets after
        # it. That process may be the second one killed, and `copy` may have caught up before the
        # third took over (then the third prints no `copy` line), so every process counts,
        # the killed ones too; before the first kill only the killed leader ran `copy`.
        # (Polled: a worker prints an update's lines after its commit, which `done` may see first.)
        successors = [w for w in everyone if w is not killed_leader]
        assert wait_for(lambda: any(ran(w, "copy") and ran(w, "counts") for w in successors), 60), \
            [w.out[-5:] for w in successors]
        assert wait_for(lambda: "now runs the datasets that do not scale out" in "".join(
            line for w in successors for line in list(w.err)), 60), [w.err[-5:] for w in successors]
        for w in workers:
            assert w.stop() == 0, "".join(w.err)
        assert killed_leader.proc.returncode == -signal.SIGKILL
    finally:
        if producer:
            producer.join()
        for w in workers:
            w.kill()

    expected = sorted(range(TOTAL))
    # Bronze: every produced record exactly once (deltalake).
    raw = DeltaTable(str(tables / "raw")).to_pyarrow_table().to_pylist()
    keys = [(r["partition"], r["offset"]) for r in raw]
    assert len(keys) == len(set(keys)) == TOTAL, f"{len(keys)} rows, {len(set(keys))} distinct"
    assert sorted(json.loads(r["v"])["i"] for r in raw) == expected
    # The downstream streaming table and the view, checked with DuckDB against bronze.
    con = duckdb_connection()
    raw_scan, copy_scan, view_scan = (f"delta_scan('{tables / t}')" for t in ("raw", "copy", "counts"))
    assert con.sql(f"SELECT count(*), count(DISTINCT (partition, \"offset\")) FROM {copy_scan}").fetchone() == (TOTAL, TOTAL)
    assert con.sql(f"SELECT count(*) FROM (SELECT partition, \"offset\", v FROM {raw_scan} EXCEPT "
                   f"SELECT partition, \"offset\", v FROM {copy_scan})").fetchone() == (0,)
    assert con.sql(f"SELECT partition, n FROM {view_scan} ORDER BY partition").fetchall() == con.sql(
        f"SELECT partition, count(*) FROM {raw_scan} GROUP BY partition ORDER BY partition").fetchall()
    # No two commits of the view were computed from the same input version: each one that
    # recorded its input recorded a newer one than the commit before it.
    commits = input_versions_of_commits(tables / "counts")
    assert len(commits) >= 2, commits
    for (_, before), (version, after) in zip(commits, commits[1:]):
        for app_id, input_version in after.items():
            if app_id in before:
                assert input_version > before[app_id], (version, app_id, before[app_id], input_version)
