"""Scale-out on S3 (issue 13): three continuous `sluice run` workers, each on its own copy of the
pipeline folder and each as if on its own machine (SLUICE_HOST_NAME: no same-host pid
shortcut, so a SIGKILLed leader is taken over only after its lease's ttl), share one storage
URI on the moto S3 server and one consumer group (group_mode => 'subscribe'). An exclusive run
is refused while they live. The leader (holder of system/leader_lease) is SIGKILLed and
replaced, then a member, while the tables are behind the topic; at the end bronze holds every produced record
exactly once (deltalake with the same endpoint against the produced set), the downstream table
the same records (DuckDB), the view equals a GROUP BY over bronze, its commits each came from a
newer input version (its JSON log on S3), and only workers that held a leader term ran the
downstream datasets, each term held by one of them."""
import json
import re
import signal
import threading
import time
import uuid

from deltalake import DeltaTable

from conftest import duckdb_connection, write_pipeline
from test_kafka_rebalance import Worker, produce, wait_for
from test_pipeline_on_s3 import clean_env, keys, s3, sluice, storage_yaml  # noqa: F401 (s3: the fixture)

PARTITIONS = 6  # test_kafka_rebalance.produce spreads records over six partitions
TOTAL = 12_000
TTL_MS = 2000


def pipeline_folder(root, name, s3, prefix, bootstrap, topic):
    pipe = write_pipeline(root, f"""
name: {name}
{storage_yaml(s3, prefix)}mode: continuous
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


def worker(pipe, host):
    return Worker(pipe, env=clean_env(SLUICE_RUN_LEASE_TTL_MS=str(TTL_MS), SLUICE_HOST_NAME=host))


def produce_paced(bootstrap, topic, lo, hi, chunk=200):
    """Records in chunks a tenth of a second apart (pacing, not synchronisation), so that a
    worker killed once the first of them is in bronze still had records coming."""
    for start in range(lo, hi, chunk):
        produce(bootstrap, topic, start, min(start + chunk, hi))
        time.sleep(0.1)


def leader_terms(w):
    return [int(m.group(1)) for line in list(w.err)
            if (m := re.search(r"now runs the datasets that do not scale out .*leader lease term (\d+)", line))]


def ran(w, dataset):
    return any(line.startswith(f"{dataset} (") for line in list(w.out))


def test_three_workers_on_s3_with_kills_write_every_record_once(s3, tmp_path, bootstrap, new_topic):
    topic = new_topic(PARTITIONS)
    name = f"s3scale-{uuid.uuid4().hex[:8]}"
    prefix = f"scale-{uuid.uuid4().hex[:8]}"
    pipes = [pipeline_folder(tmp_path / f"worker{i}", name, s3, prefix, bootstrap, topic) for i in range(3)]

    def table(t):
        return DeltaTable(f"s3://lake/{prefix}/tables/{t}", storage_options=s3["options"])

    def rows(t):
        try:
            return table(t).to_pyarrow_table(columns=["offset"]).num_rows
        except Exception:  # not created yet
            return 0

    def view_total():
        try:
            return sum(table("counts").to_pyarrow_table(columns=["n"]).column("n").to_pylist())
        except Exception:
            return 0

    workers = [worker(pipes[0], "host0")]
    producer = None
    try:
        # The first worker creates the storage, its tables and the event log alone.
        assert wait_for(lambda: any(k.endswith("/_delta_log/00000000000000000000.json") and "/tables/raw/" in k
                                    for k in keys(s3, prefix))
                        and any("/system/event_log/_delta_log/" in k for k in keys(s3, prefix)), 60), \
            "".join(workers[0].err)
        workers += [worker(pipes[1], "host1"), worker(pipes[2], "host2")]
        # An exclusive run is refused while the workers live, naming them.
        refused = sluice("run", pipes[0], "--once", env=clean_env(SLUICE_RUN_LEASE_TTL_MS=str(TTL_MS)))
        assert refused.returncode != 0
        assert "another sluice run is using storage 's3://lake/" in refused.stderr, refused.stderr
        # It names a live worker: the first one's, unless (at load, with a 2 s ttl) its heartbeat
        # was late enough to be taken for expired, when the next live one is named.
        assert any(f"pid {w.proc.pid} on host host{i}, " in refused.stderr for i, w in enumerate(workers)), \
            refused.stderr
        assert "scale-out run of pipeline" in refused.stderr and "this run is exclusive" in refused.stderr

        producer = threading.Thread(target=produce, args=(bootstrap, topic, 0, TOTAL // 2))
        producer.start()
        # Kill the leader (the holder of the leader lease) while records arrive.
        assert wait_for(lambda: any(ran(w, "copy") for w in workers), 120), \
            [w.err[-5:] for w in workers]
        leader = next(i for i, w in enumerate(workers) if leader_terms(w))
        first_term = leader_terms(workers[leader])[-1]
        print(f"\nleader killed (term {first_term}) at raw={rows('raw')} copy={rows('copy')} of {TOTAL // 2} "
              "produced so far")
        workers[leader].proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        workers[leader].proc.wait(30)
        # Its replacement comes up on another "machine"; one of the workers takes the lead after the ttl.
        workers[leader] = worker(pipes[leader], f"host{leader}b")
        assert wait_for(lambda: any(t > first_term for w in workers for t in leader_terms(w)), 60), \
            [w.err[-5:] for w in workers]
        took_over = time.monotonic() - killed
        print(f"taken over after {took_over:.1f} s (ttl {TTL_MS} ms)")
        assert took_over >= TTL_MS / 2000  # not before the dead leader's lease expired
        producer.join()
        producer = threading.Thread(target=produce_paced, args=(bootstrap, topic, TOTAL // 2, TOTAL))
        producer.start()

        # Kill a member (one that does not lead) mid-stream and start it again.
        assert wait_for(lambda: rows("raw") > TOTAL // 2, 120), [w.err[-5:] for w in workers]
        member = next(i for i, w in enumerate(workers) if not leader_terms(w))
        print(f"member killed at raw={rows('raw')} of {TOTAL}, producer {'writing' if producer.is_alive() else 'done'}")
        workers[member].proc.send_signal(signal.SIGKILL)
        workers[member].proc.wait(30)
        workers[member] = worker(pipes[member], f"host{member}c")

        producer.join()
        producer = None
        assert wait_for(lambda: rows("raw") >= TOTAL and rows("copy") >= TOTAL and view_total() >= TOTAL, 120), \
            (rows("raw"), rows("copy"), view_total(), [w.err[-5:] for w in workers])
        for w in workers:
            assert w.stop() == 0, "".join(w.err)
    finally:
        if producer:
            producer.join()
        for w in workers:
            w.kill()

    # Only workers that held a leader term ran the downstream datasets; no term twice.
    terms = [t for w in workers for t in leader_terms(w)]
    assert len(terms) == len(set(terms)) and max(terms) > first_term, terms
    for w in workers:
        if ran(w, "copy") or ran(w, "counts"):
            assert leader_terms(w), "".join(w.err)
    # Bronze: every produced record exactly once, read by deltalake from the same endpoint.
    raw = table("raw").to_pyarrow_table().to_pylist()
    pairs = [(r["partition"], r["offset"]) for r in raw]
    assert len(pairs) == len(set(pairs)) == TOTAL, f"{len(pairs)} rows, {len(set(pairs))} distinct"
    assert sorted(json.loads(r["v"])["i"] for r in raw) == list(range(TOTAL))
    # The downstream table and the view against bronze (DuckDB over the same S3 endpoint).
    con = duckdb_connection()
    con.sql("LOAD httpfs")
    host = s3["endpoint"].split("://")[1]
    secret = s3["options"]["AWS_SECRET_ACCESS_KEY"]
    con.sql(f"CREATE SECRET lake (TYPE S3, KEY_ID 'test', SECRET '{secret}', REGION 'us-east-1', "
            f"ENDPOINT '{host}', URL_STYLE 'path', USE_SSL false)")
    raw_scan, copy_scan, view_scan = (f"delta_scan('s3://lake/{prefix}/tables/{t}')" for t in ("raw", "copy", "counts"))
    assert con.sql(f"SELECT count(*), count(DISTINCT (partition, \"offset\")) FROM {copy_scan}").fetchone() == (TOTAL, TOTAL)
    assert con.sql(f"SELECT count(*) FROM (SELECT partition, \"offset\", v FROM {raw_scan} EXCEPT "
                   f"SELECT partition, \"offset\", v FROM {copy_scan})").fetchone() == (0,)
    assert con.sql(f"SELECT partition, n FROM {view_scan} ORDER BY partition").fetchall() == con.sql(
        f"SELECT partition, count(*) FROM {raw_scan} GROUP BY partition ORDER BY partition").fetchall()
    # Each commit of the view that recorded its input recorded a newer input version than the one before.
    log = sorted(k for k in keys(s3, f"{prefix}/tables/counts/_delta_log") if k.endswith(".json"))
    commits = []
    for k in log:
        body = s3["client"].get_object(Bucket="lake", Key=k)["Body"].read().decode()
        txns = [a["txn"] for a in map(json.loads, filter(str.strip, body.splitlines())) if "txn" in a]
        if txns:
            commits.append((k, {t["appId"]: t["version"] for t in txns}))
    assert len(commits) >= 2, commits
    for (_, before), (k, after) in zip(commits, commits[1:]):
        for app_id, version in after.items():
            if app_id in before:
                assert version > before[app_id], (k, app_id, before[app_id], version)
