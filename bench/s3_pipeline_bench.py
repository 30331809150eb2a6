#!/usr/bin/env python3
"""Kafka -> bronze -> silver (bench/kafka_pipeline_bench.py's pipeline) with the pipeline's
storage on a local S3 server (moto, scripts/s3.sh): requests per commit, CPU per event, wall,
peak RSS, and whether list requests grow with table history.

ROUNDS times: produces EVENTS_PER_ROUND ~200-byte JSON events into a 6-partition topic (Kafka's
ProducerPerformance), then runs `sluice run <dir> --once`, which reads them in
COMMITS_PER_ROUND commits per table (commit.max_rows), so the tables' histories grow round by
round (checkpoints every CHECKPOINT_INTERVAL versions). Each run's requests come from its update_progress event (storage_requests:
what the ObjectStore sent, by kind, the event log's own commit excluded); its commits from the
tables' versions before and after. Row counts are checked with deltalake (same endpoint and
options) against the oracle of kafka_pipeline_bench.

Starts its own broker (scripts/kafka.sh, --port) and S3 server (--s3-port) and stops both. Usage:
  bench/s3_pipeline_bench.py [--rounds 6] [--events-per-round 200000] [--commits-per-round 4]
"""
import argparse
import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import kafka_pipeline_bench as kb  # noqa: E402

ROOT = kb.ROOT
SECRET = "bench-secret"


def write_pipeline(folder, bootstrap, topic, endpoint, commit_rows, checkpoint_interval):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(
        "name: s3bench\nstorage: s3://lake/s3bench\nstorage_options:\n"
        f"  aws_endpoint_url: {endpoint}\n  aws_allow_http: \"true\"\n  aws_region: us-east-1\n"
        f"  aws_access_key_id: bench\n  aws_secret_access_key: {SECRET}\n"
        f"mode: triggered\ncommit: {{max_rows: {commit_rows}}}\n"
        f"kafka:\n  default:\n    bootstrap.servers: \"{bootstrap}\"\n"
        "tables:\n"
        f"  events_bronze: {{properties: {{delta.checkpointInterval: \"{checkpoint_interval}\"}}}}\n"
        f"  events_silver: {{properties: {{delta.checkpointInterval: \"{checkpoint_interval}\"}}}}\n")
    (folder / "bronze.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE events_bronze\n"
        f"AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    (folder / "silver.sql").write_text(kb.SILVER_SQL)
    return folder


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--events-per-round", type=int, default=200_000)
    ap.add_argument("--commits-per-round", type=int, default=4)
    ap.add_argument("--checkpoint-interval", type=int, default=10)
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--s3-port", type=int, default=int(os.environ.get("S3_PORT", "49300")))
    args = ap.parse_args()
    from deltalake import DeltaTable
    import boto3

    total = args.rounds * args.events_per_round
    endpoint = f"http://127.0.0.1:{args.s3_port}"
    options = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": SECRET}
    s3_env = dict(os.environ, S3_PORT=str(args.s3_port))
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-s3bench-"))
    payloads = kb.make_payloads()
    payload_file = work / "payloads.jsonl"
    payload_file.write_text("\n".join(payloads))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {kb.SLUICE}")
    subprocess.run([ROOT / "scripts" / "s3.sh", "start"], env=s3_env, check=True)
    ok = True
    try:
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bench", aws_secret_access_key=SECRET,
                     region_name="us-east-1").create_bucket(Bucket="lake")
        with kb.Broker(args.port, None) as broker:
            topic = "bench-s3"
            broker.create_topic(topic)
            pipe = write_pipeline(work / "pipe", broker.bootstrap, topic, endpoint,
                                  args.events_per_round // args.commits_per_round, args.checkpoint_interval)

            def version(name):
                try:
                    return DeltaTable(f"s3://lake/s3bench/tables/{name}", storage_options=options).version()
                except Exception:  # not created yet
                    return -1

            def update_requests():
                log = DeltaTable("s3://lake/s3bench/system/event_log", storage_options=options)
                done = [(r["timestamp"], json.loads(r["details"])["update_progress"])
                        for r in log.to_pyarrow_table().to_pylist()
                        if r["event_type"] == "update_progress" and "COMPLETED" in r["message"]]
                done.sort(key=lambda pair: pair[0])
                return done[-1][1]["storage_requests"]

            env_no_aws = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            os.environ.clear()
            os.environ.update(env_no_aws)
            rows = []
            for i in range(args.rounds):
                broker.producer_perf(topic, payload_file, args.events_per_round, -1)
                before = (version("events_bronze"), version("events_silver"))
                wall, rss, cpu, _ = kb.run_once(pipe)
                after = (version("events_bronze"), version("events_silver"))
                commits = (after[0] - before[0]) + (after[1] - before[1])
                req = update_requests()
                rows.append(dict(round=i + 1, wall=wall, rss=rss, cpu=cpu, commits=commits, versions=after, **req))
                kb.log(f"round {i + 1}: {commits} commits (versions {after}), requests {req}, wall {wall:.2f} s, "
                       f"cpu {cpu:.2f} s, rss {rss:.0f} MiB")
            bronze_table = DeltaTable("s3://lake/s3bench/tables/events_bronze", storage_options=options)
            values = bronze_table.to_pyarrow_table(columns=["value"]).column("value").to_pylist()
            bronze = len(values)
            silver = DeltaTable("s3://lake/s3bench/tables/events_silver",
                                storage_options=options).to_pyarrow_table(columns=["user_id"]).num_rows
            expected = sum(1 for v in values if kb.silver_keeps(v.decode()))
            produced = kb.topic_end_offsets(broker.bootstrap, topic)
            ok = bronze == total == produced and silver == expected
    finally:
        subprocess.run([ROOT / "scripts" / "s3.sh", "stop"], env=s3_env, check=False)
        shutil.rmtree(work, ignore_errors=True)

    n = args.events_per_round
    print(f"kafka->bronze->silver on S3 (moto, {endpoint}) {args.rounds} rounds x {n:,} events, "
          f"{args.commits_per_round} commits/table/round, checkpointInterval {args.checkpoint_interval}, "
          f"cores={os.cpu_count()} load1={os.getloadavg()[0]:.2f}")
    print("  round  versions(b,s)  commits  requests  per commit   list  get  head  put  del   wall s  cpu us/event  RSS MiB")
    for r in rows:
        print(f"  {r['round']:5d}  {str(r['versions']):13s}  {r['commits']:7d}  {r['total']:8d}  "
              f"{r['total'] / max(r['commits'], 1):10.1f}  {r['list']:5d} {r['get']:4d} {r['head']:5d} {r['put']:4d} "
              f"{r['delete']:4d}  {r['wall']:7.2f}  {r['cpu'] / n * 1e6:12.2f}  {r['rss']:7.0f}")
    print(f"  rows: bronze {bronze:,} (produced {total:,}), silver {silver:,} (expected {expected:,}) -> "
          f"{'OK' if ok else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
