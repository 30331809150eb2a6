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

  bench/stream_join_bench.py [--events N] [--repeat R] [--sluice BIN ...] [--port P | --bootstrap host:port]

(--sluice, repeatable: each repeat runs every binary on the same topics, one after the other;
figures per binary.)

--static: the stream-static join instead (issue 12): N orders (~200-byte JSON, read_kafka in the
join flow itself) LEFT JOIN a streaming table of --dim customers read statically; customer ids
are uniform over 1.5 x dim, so two thirds match. Reported per binary (--sluice, repeatable; the
runs alternate between binaries so they share the machine's load): CPU-seconds per order event
of the whole process, the join flow's time, peak RSS; rows and matches checked against the oracle.

  bench/stream_join_bench.py --static [--events N] [--dim D] [--sluice BIN ...] [--repeat R]
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
import kafka_pipeline_bench  # noqa: E402
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


STATIC_SQL = """
CREATE OR REFRESH STREAMING TABLE customers AS SELECT value.* FROM STREAM read_kafka(
  topic => '{customers}', value_format => 'json', value_schema => 'id BIGINT, name STRING, tier STRING');
CREATE OR REFRESH STREAMING TABLE orders_enriched AS
SELECT o.order_id, o.customer_id, o.amount, c.name, c.tier
FROM (SELECT value.* FROM STREAM read_kafka(topic => '{orders}', value_format => 'json',
        value_schema => 'order_id BIGINT, customer_id BIGINT, amount DOUBLE, pad STRING')) o
LEFT JOIN customers c ON o.customer_id = c.id;
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


def static_join(args, broker, work):
    """The stream-static join, run by each binary in turn; True when every run matched the oracle."""
    import kafka_pipeline_bench
    from deltalake import DeltaTable
    import pyarrow.compute as pc
    rng = random.Random(11)
    pad = "x" * 140
    customers = [[f'{{"id":{i},"name":"customer-{i}","tier":"{("gold", "silver", "basic")[i % 3]}"}}'.encode()
                  for i in range(p, args.dim, args.partitions)] for p in range(args.partitions)]
    ids = [rng.randrange(args.dim * 3 // 2) for _ in range(args.events)]
    matches = sum(i < args.dim for i in ids)
    orders = [[(0, f'{{"order_id":{n},"customer_id":{ids[n]},"amount":{n % 1000 / 10},"pad":"{pad}"}}'.encode())
               for n in range(p, args.events, args.partitions)] for p in range(args.partitions)]
    stamp = int(time.time())
    topics = {"customers": f"bench-cust-{stamp}", "orders": f"bench-ord-{stamp}"}
    t = time.perf_counter()
    broker.create_topic(topics["customers"], partitions=args.partitions)
    produce(broker.bootstrap, topics["customers"], [[(0, c) for c in part] for part in customers])
    broker.create_topic(topics["orders"], partitions=args.partitions)
    produce(broker.bootstrap, topics["orders"], orders)
    log(f"pre-loaded {args.dim:,} customers and {args.events:,} orders in {time.perf_counter() - t:.1f} s")
    bins = [pathlib.Path(b).resolve() for b in (args.sluice or [str(SLUICE)])]
    runs = {b: [] for b in bins}
    ok = True
    for i in range(args.repeat):
        for b in bins:
            pipe = work / f"run{i}-{len(runs[b])}-{bins.index(b)}"
            pipe.mkdir()
            (pipe / "pipeline.yaml").write_text(
                f"name: sjbench\nstorage: ./data\nkafka:\n  default: {{bootstrap.servers: \"{broker.bootstrap}\"}}\n")
            (pipe / "join.sql").write_text(STATIC_SQL.format(**topics))
            kafka_pipeline_bench.SLUICE = b
            wall, rss, cpu, _ = run_once(pipe)
            join_in, join_out, join_ms = flow_durations(pipe / "data")["orders_enriched"]
            table = DeltaTable(str(pipe / "data" / "tables" / "orders_enriched")).to_pyarrow_table(columns=["name"])
            matched = table.num_rows - table.column("name").null_count
            rows_ok = join_in == args.events and table.num_rows == args.events and matched == matches
            ok &= rows_ok
            runs[b].append((wall, rss, cpu, join_ms))
            log(f"{b}: wall {wall:.2f}s cpu {cpu:.1f}s ({cpu / args.events * 1e6:.2f} us/event) rss {rss:.0f}MiB "
                f"join flow {join_ms} ms; rows {table.num_rows:,} matched {matched:,}: {'OK' if rows_ok else 'WRONG'}")
            if not args.keep:
                shutil.rmtree(pipe, ignore_errors=True)
    print(f"stream-static LEFT JOIN: orders={args.events:,} customers={args.dim:,} partitions={args.partitions} "
          f"cores={os.cpu_count()} load1={os.getloadavg()[0]:.2f} median of {args.repeat}, runs alternating")
    for b, r in runs.items():
        med = lambda k: sorted(x[k] for x in r)[len(r) // 2]  # noqa: E731
        print(f"  {b}")
        print(f"    cpu {med(2):6.1f} s = {med(2) / args.events * 1e6:.2f} us/event   join flow {med(3) / 1000:6.2f} s   "
              f"wall {med(0):6.2f} s   peak RSS {med(1):.0f} MiB   (runs: cpu " +
              ", ".join(f"{x[2]:.1f}" for x in r) + ")")
    print(f"  output: {args.events:,} rows, {matches:,} matched (oracle): {'OK' if ok else 'WRONG'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--static", action="store_true", help="the stream-static join benchmark (see above)")
    ap.add_argument("--dim", type=int, default=500_000, help="--static: customers in the static table")
    ap.add_argument("--sluice", action="append", help="a sluice binary to run (repeatable; runs alternate)")
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
            if args.static:
                sys.exit(0 if static_join(args, broker, work) else 1)
            impressions, clicks, matches = make_events(args.events, args.partitions)
            n_clicks = sum(len(p) for p in clicks)
            stamp = int(time.time())
            topics = {"impressions": f"bench-imp-{stamp}", "clicks": f"bench-clk-{stamp}"}
            t = time.perf_counter()
            for name, side in (("impressions", impressions), ("clicks", clicks)):
                broker.create_topic(topics[name], partitions=args.partitions)
                produce(broker.bootstrap, topics[name], side)
            log(f"pre-loaded {args.events:,} impressions and {n_clicks:,} clicks in {time.perf_counter() - t:.1f} s")
            bins = [pathlib.Path(b).resolve() for b in (args.sluice or [str(SLUICE)])]
            runs = []
            for i in range(args.repeat):
                for bi, b in enumerate(bins):
                    kafka_pipeline_bench.SLUICE = b
                    pipe = work / f"run{i}-{bi}"
                    pipe.mkdir()
                    (pipe / "pipeline.yaml").write_text(
                        f"name: joinbench\nstorage: ./data\nkafka:\n  default: {{bootstrap.servers: \"{broker.bootstrap}\"}}\n")
                    (pipe / "join.sql").write_text(SQL.format(**topics))
                    wall, rss, cpu, _ = run_once(pipe)
                    flows = flow_durations(pipe / "data")
                    join_in, join_out, join_ms = flows["clicked_impressions"]
                    rows_ok = join_out == matches and join_in == args.events + n_clicks
                    ok &= rows_ok
                    runs.append((wall, rss, cpu, join_in, join_out, join_ms, rows_ok, bi))
                    log(f"run {i} {b}: wall {wall:.2f}s cpu {cpu:.1f}s rss {rss:.0f}MiB join in {join_in:,} out {join_out:,} "
                        f"in {join_ms} ms; {'OK' if rows_ok else 'WRONG'} (oracle {matches:,})")
                    if not args.keep:
                        shutil.rmtree(pipe, ignore_errors=True)
            total = args.events + n_clicks
            for bi, b in enumerate(bins):
                mine = [r for r in runs if r[7] == bi]
                best = min(mine, key=lambda r: r[5])
                print(f"stream-stream join 10 minutes: impressions={args.events:,} clicks={n_clicks:,} "
                      f"partitions={args.partitions} event_bytes~200 cores={os.cpu_count()} "
                      f"load1={os.getloadavg()[0]:.2f} best of {args.repeat}, {b}")
                print(f"  join flow alone    {best[5] / 1000:7.2f} s  {total / (best[5] / 1000) / 1e6:.3f} M events/s")
                print(f"  end to end (wall)  {best[0]:7.2f} s  {total / best[0] / 1e6:.3f} M events/s  "
                      f"(ingest of both topics, JSON decoding, join; cpu {best[2]:.1f} s)")
                print(f"  peak RSS           {best[1]:.0f} MiB")
                print(f"  output: {best[4]:,} joined rows vs oracle {matches:,}: {'OK' if best[6] else 'WRONG'}")
                print("  raw: " + "; ".join(f"join {r[5]} ms wall {r[0]:.2f}s cpu {r[2]:.1f}s rss {r[1]:.0f}MiB" for r in mine))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
