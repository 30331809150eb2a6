"""Stream-stream join throughput (issue 6, "Speed"): impressions joined with clicks that follow
them within 10 minutes, both ~200-byte JSON events from Kafka, each side a streaming table:

  SELECT i.id, i.ts AS shown_at, c.ts AS clicked_at
  FROM STREAM(impressions) WATERMARK ts DELAY OF INTERVAL 1 MINUTE i
  JOIN STREAM(clicks) WATERMARK ts DELAY OF INTERVAL 1 MINUTE c
    ON i.id = c.id AND c.ts BETWEEN i.ts AND i.ts + INTERVAL 10 MINUTES

N impressions spread over an hour of event time, in time order (jitter under the watermark
delay within each partition, so no row is late; 6 partitions per topic by default); half of them get a click 0-15 minutes later, so about two
thirds of the clicks match. The topics are pre-loaded, then one `sluice run --once` is timed:
the two ingest flows (Kafka -> JSON -> streaming table) and the join flow. Reported: the join
flow's own events/s (both sides' rows over its duration in the event log), end-to-end events/s
(wall time of the process), peak RSS (wait4); the join's row count is checked against an oracle
computed from what was produced.

  bench/stream_join_bench.py [--events N] [--repeat R] [--port P | --bootstrap host:port]
"""
import argparse
import datetime
import os
import pathlib
import random
import shutil
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from kafka_pipeline_bench import SLUICE, Broker, flow_durations, log, run_once  # noqa: E402

BOUND_S, SPAN_S = 600, 3600

SQL = """
CREATE OR REFRESH STREAMING TABLE impressions AS SELECT value.* FROM STREAM read_kafka(
  topic => '{impressions}', value_format => 'json', value_schema => 'id BIGINT, ts TIMESTAMP, pad STRING');
CREATE OR REFRESH STREAMING TABLE clicks AS SELECT value.* FROM STREAM read_kafka(
  topic => '{clicks}', value_format => 'json', value_schema => 'id BIGINT, ts TIMESTAMP, pad STRING');
CREATE OR REFRESH STREAMING TABLE clicked_impressions AS
SELECT i.id, i.ts AS shown_at, c.ts AS clicked_at
FROM STREAM(impressions) WATERMARK ts DELAY OF INTERVAL 1 MINUTE i
JOIN STREAM(clicks) WATERMARK ts DELAY OF INTERVAL 1 MINUTE c
  ON i.id = c.id AND c.ts BETWEEN i.ts AND i.ts + INTERVAL 10 MINUTES;
"""


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_events(n, partitions, seed=7):
    """(impressions, clicks, matches): per partition lists of JSON payloads in time order."""
    rng = random.Random(seed)
    base = 1_700_000_000
    pad = "x" * 140
    impressions, clicks = [[] for _ in range(partitions)], [[] for _ in range(partitions)]
    matches = 0
    for i in range(n):
        t = base + SPAN_S * i / n + rng.uniform(0, 20)  # jitter well under the 1-minute delay
        impressions[i % partitions].append((t, f'{{"id":{i},"ts":"{iso(t)}","pad":"{pad}"}}'.encode()))
        if rng.random() < 0.5:
            delay = rng.uniform(0, BOUND_S * 1.5)
            matches += delay <= BOUND_S
            ct = t + delay
            clicks[i % partitions].append((ct, f'{{"id":{i},"ts":"{iso(ct)}","pad":"{pad}"}}'.encode()))
    for side in (impressions, clicks):
        for part in side:
            part.sort(key=lambda e: e[0])
    return impressions, clicks, matches


def produce(bootstrap, topic, per_partition):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 2_000_000})
    for part, events in enumerate(per_partition):
        for _, payload in events:
            while True:
                try:
                    p.produce(topic, value=payload, partition=part)
                    break
                except BufferError:
                    p.poll(0.05)
    assert p.flush(120) == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000, help="impressions (clicks: about half as many)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=6,
                    help="per topic (the upstream tables then interleave the partitions' rows)")
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--bootstrap", help="use this running broker instead of starting one")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not SLUICE.exists():
        sys.exit("build sluice first (make build)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-jbench-"))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {SLUICE}")
    ok = True
    try:
        with Broker(args.port, args.bootstrap) as broker:
            impressions, clicks, matches = make_events(args.events, args.partitions)
            n_clicks = sum(len(p) for p in clicks)
            stamp = int(time.time())
            topics = {"impressions": f"bench-imp-{stamp}", "clicks": f"bench-clk-{stamp}"}
            t = time.perf_counter()
            for name, side in (("impressions", impressions), ("clicks", clicks)):
                broker.create_topic(topics[name], partitions=args.partitions)
                produce(broker.bootstrap, topics[name], side)
            log(f"pre-loaded {args.events:,} impressions and {n_clicks:,} clicks in {time.perf_counter() - t:.1f} s")
            runs = []
            for i in range(args.repeat):
                pipe = work / f"run{i}"
                pipe.mkdir()
                (pipe / "pipeline.yaml").write_text(
                    f"name: joinbench\nstorage: ./data\nkafka:\n  default: {{bootstrap.servers: \"{broker.bootstrap}\"}}\n")
                (pipe / "join.sql").write_text(SQL.format(**topics))
                wall, rss, cpu, _ = run_once(pipe)
                flows = flow_durations(pipe / "data")
                join_in, join_out, join_ms = flows["clicked_impressions"]
                rows_ok = join_out == matches and join_in == args.events + n_clicks
                ok &= rows_ok
                runs.append((wall, rss, cpu, join_in, join_out, join_ms, rows_ok))
                log(f"run {i}: wall {wall:.2f}s cpu {cpu:.1f}s rss {rss:.0f}MiB join in {join_in:,} out {join_out:,} "
                    f"in {join_ms} ms; {'OK' if rows_ok else 'WRONG'} (oracle {matches:,})")
                if not args.keep:
                    shutil.rmtree(pipe, ignore_errors=True)
            best = min(runs, key=lambda r: r[5])
            total = args.events + n_clicks
            print(f"stream-stream join 10 minutes: impressions={args.events:,} clicks={n_clicks:,} "
                  f"partitions={args.partitions} event_bytes~200 cores={os.cpu_count()} "
                  f"load1={os.getloadavg()[0]:.2f} best of {args.repeat}")
            print(f"  join flow alone    {best[5] / 1000:7.2f} s  {total / (best[5] / 1000) / 1e6:.3f} M events/s")
            print(f"  end to end (wall)  {best[0]:7.2f} s  {total / best[0] / 1e6:.3f} M events/s  "
                  f"(ingest of both topics, JSON decoding, join; cpu {best[2]:.1f} s)")
            print(f"  peak RSS           {best[1]:.0f} MiB")
            print(f"  output: {best[4]:,} joined rows vs oracle {matches:,}: {'OK' if best[6] else 'WRONG'}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
