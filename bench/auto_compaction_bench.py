#!/usr/bin/env python3
"""Auto compaction in a running pipeline (issue 15): two continuous pipelines side by side, one
with auto compaction on (the default) and one with `pipelines.autoOptimize.managed = false`,
each fed its own topic at the same fixed rate by Kafka's ProducerPerformance for --minutes
(default 10). Both run at the same time, so they share the machine's load alike. Each is one
streaming table from Kafka (value_format json, ~200-byte events, trigger_interval 1s: about one
small file a second).

Every minute: the table's live file count (deltalake), rows committed, the process's CPU
seconds. At the end: ingest throughput (rows committed / seconds), the lag left (produced minus
committed), CPU-seconds per event and peak RSS (VmHWM) of each sluice process, the compactions
(OPTIMIZE commits) made; the row counts are checked against what was produced (exactly once).

  bench/auto_compaction_bench.py [--minutes M] [--rate EVENTS_PER_S] [--port P | --bootstrap host:port]
"""
import argparse
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from kafka_pipeline_bench import SLUICE, Broker, log, table_rows  # noqa: E402

PARTITIONS = 2
CLK_TCK = os.sysconf("SC_CLK_TCK")

SQL = """
CREATE OR REFRESH STREAMING TABLE events
TBLPROPERTIES ({props})
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest',
  value_format => 'json', value_schema => 'id BIGINT, user_id STRING, amount DOUBLE, pad STRING');
"""


def payload_file(path, n=20_000, seed=5):
    rng = random.Random(seed)
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": i, "user_id": f"u{rng.randrange(10_000)}",
                                "amount": round(rng.random() * 100, 2), "pad": "x" * 130}) + "\n")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def live_files(table):
    from deltalake import DeltaTable
    if not (table / "_delta_log").exists():
        return 0
    return len(DeltaTable(str(table)).file_uris())


def optimize_commits(table):
    n = 0
    for f in (table / "_delta_log").glob("*.json"):
        for line in f.read_text().splitlines():
            a = json.loads(line)
            if "commitInfo" in a and a["commitInfo"].get("operation") == "OPTIMIZE":
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=int, default=2000, help="events/s per pipeline")
    ap.add_argument("--port", type=int, default=49092)
    ap.add_argument("--bootstrap")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    seconds = int(args.minutes * 60)
    events = args.rate * seconds
    work = pathlib.Path(tempfile.mkdtemp(prefix="autocompact-bench-"))
    payloads = work / "payloads.jsonl"
    payload_file(payloads)
    variants = {"on": "'pipelines.autoOptimize.managed' = 'true'", "off": "'pipelines.autoOptimize.managed' = 'false'"}
    with Broker(args.port, args.bootstrap) as broker:
        procs, producers, tables = {}, {}, {}
        stamp = int(time.time())
        for name, props in variants.items():
            topic = f"autocompact-{name}-{stamp}"
            broker.create_topic(topic, PARTITIONS)
            pipe = work / name
            pipe.mkdir()
            (pipe / "pipeline.yaml").write_text(
                f"name: ac_{name}\nstorage: ./data\nmode: continuous\ntrigger_interval: 1s\n"
                f"kafka:\n  default:\n    bootstrap.servers: \"{broker.bootstrap}\"\n")
            (pipe / "events.sql").write_text(SQL.format(props=props, topic=topic))
            tables[name] = pipe / "data" / "tables" / "events"
            procs[name] = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL,
                                           stderr=open(pipe / "sluice.err", "w"))
            producers[name] = (topic, broker.producer_perf(topic, payloads, events, args.rate, wait=False))
        log(f"feeding {args.rate} events/s into each of {list(variants)} for {seconds}s ({events:,} events each)")
        start = time.monotonic()
        samples = {name: [] for name in variants}
        next_sample = start + 60
        while any(p.poll() is None for _, p in producers.values()):
            time.sleep(1)  # a sampling interval, not a synchronisation
            for name, proc in procs.items():
                if proc.poll() is not None:
                    sys.exit(f"sluice ({name}) exited early: {(work / name / 'sluice.err').read_text()}")
            if time.monotonic() >= next_sample:
                minute = round((time.monotonic() - start) / 60)
                for name in variants:
                    rows = table_rows(tables[name]) if (tables[name] / "_delta_log").exists() else 0
                    samples[name].append({"minute": minute, "files": live_files(tables[name]), "rows": rows,
                                          "cpu_s": round(cpu_seconds(procs[name].pid), 1)})
                log("  ".join(f"{n}: min {s[-1]['minute']} files {s[-1]['files']} rows {s[-1]['rows']:,}"
                              for n, s in samples.items()))
                next_sample += 60
        fed = time.monotonic() - start
        # Let both take what was produced (bounded), then stop them.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(table_rows(tables[n]) < events for n in variants):
            time.sleep(0.5)  # a poll interval
        results = {}
        for name, proc in procs.items():
            rows = table_rows(tables[name])
            results[name] = {"rows": rows, "lag_at_end": events - rows, "cpu_s": cpu_seconds(proc.pid),
                             "peak_rss_mib": peak_rss_mib(proc.pid)}
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            if proc.wait(timeout=300) != 0:
                sys.exit(f"sluice ({name}) failed: {(work / name / 'sluice.err').read_text()}")
        for name in variants:
            r = results[name]
            r["files_at_end"] = live_files(tables[name])
            r["max_files"] = max([s["files"] for s in samples[name]] + [r["files_at_end"]])
            r["compactions"] = optimize_commits(tables[name])
            r["rows_per_s"] = r["rows"] / fed
            r["cpu_s_per_million_events"] = r["cpu_s"] / max(r["rows"], 1) * 1e6
            r["exactly_once"] = table_rows(tables[name]) == events
            r["files_per_minute"] = [s["files"] for s in samples[name]]
        print(json.dumps({"minutes": args.minutes, "rate": args.rate, "events_each": events,
                          "fed_seconds": round(fed, 1), "results": results}, indent=1))
        on, off = results["on"], results["off"]
        print(f"\nfiles per minute  on: {on['files_per_minute']}  (max {on['max_files']}, "
              f"{on['compactions']} compactions)\n                 off: {off['files_per_minute']}")
        print(f"rows/s on {on['rows_per_s']:.0f} vs off {off['rows_per_s']:.0f} "
              f"({(on['rows_per_s'] / off['rows_per_s'] - 1) * 100:+.1f} %); "
              f"CPU-s per million events on {on['cpu_s_per_million_events']:.1f} vs off "
              f"{off['cpu_s_per_million_events']:.1f}; peak RSS on {on['peak_rss_mib']:.0f} MiB vs off "
              f"{off['peak_rss_mib']:.0f} MiB; exactly once: {on['exactly_once'] and off['exactly_once']}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
