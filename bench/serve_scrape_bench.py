"""What the server costs: a continuous pipeline (read_kafka -> one streaming table and a
materialized view, trigger 50 ms) runs for --seconds under `sluice run --serve`, which leaves an
event log of a few thousand events; then `sluice serve` answers --scrapes requests of /metrics
and of /api/datasets against it. Prints, per endpoint, the server's CPU seconds and wall time
per request (from /proc/<pid>/stat) and its peak RSS (VmHWM), with the event log's size.

  .venv/bin/python bench/serve_scrape_bench.py [--port 51092] [--seconds 40] [--scrapes 30]
"""
import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import common  # noqa: E402
import kafka_pipeline_bench as kb  # noqa: E402  (Broker)

log = common.logger("serve-bench")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def peak_rss_mib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def serving(args):
    proc = subprocess.Popen([str(kb.SLUICE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("sluice: serving "):
            return proc, line.split()[-1].rstrip("/")
    sys.exit(f"sluice did not serve: {proc.stderr.read()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "51092")))
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--scrapes", type=int, default=30)
    args = ap.parse_args()
    from confluent_kafka import Producer
    from deltalake import DeltaTable
    with kb.Broker(args.port, None) as broker, tempfile.TemporaryDirectory() as work:
        topic = "serve-bench"
        broker.create_topic(topic, partitions=1)
        pipe = pathlib.Path(work) / "pipe"
        pipe.mkdir()
        (pipe / "pipeline.yaml").write_text(
            f"name: servebench\nstorage: ./data\nmode: continuous\ntrigger_interval: 50ms\n"
            f"kafka:\n  default: {{bootstrap.servers: \"{broker.bootstrap}\"}}\n")
        (pipe / "p.sql").write_text(
            f"CREATE OR REFRESH STREAMING TABLE raw AS SELECT value FROM STREAM read_kafka(topic => '{topic}');\n"
            "CREATE MATERIALIZED VIEW n AS SELECT count(*) AS n FROM raw;\n")
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        run, url = serving(["run", str(pipe), "--serve=127.0.0.1:0"])
        log(f"continuous run for {args.seconds} s, 100 records a second")
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            for _ in range(10):
                producer.produce(topic, value=b"x" * 100)
            producer.flush(10)
            time.sleep(0.1)  # the producer's pace
        run.send_signal(signal.SIGTERM)
        if run.wait(timeout=120) != 0:
            sys.exit(f"run failed: {run.stderr.read()}")
        log_table = DeltaTable(str(pipe / "data" / "system" / "event_log"))
        events = log_table.to_pyarrow_table().num_rows
        server, url = serving(["serve", str(pipe), "--listen", "127.0.0.1:0"])
        results = {"events": events, "event_log_version": log_table.version(),
                   "event_log_files": len(log_table.file_uris()), "endpoints": {}}
        try:
            for endpoint in ("/metrics", "/api/datasets", "/api/events?limit=100"):
                cpu0, wall0 = cpu_seconds(server.pid), time.perf_counter()
                for _ in range(args.scrapes):
                    with urllib.request.urlopen(url + endpoint, timeout=60) as r:
                        r.read()
                cpu, wall = cpu_seconds(server.pid) - cpu0, time.perf_counter() - wall0
                results["endpoints"][endpoint] = {"requests": args.scrapes,
                                                  "cpu_ms_per_request": round(1000 * cpu / args.scrapes, 1),
                                                  "wall_ms_per_request": round(1000 * wall / args.scrapes, 1)}
            results["server_peak_rss_mib"] = round(peak_rss_mib(server.pid), 1)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
