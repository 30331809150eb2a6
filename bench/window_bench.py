"""Windowed aggregation throughput (issue 6, "Speed"): a tumbling 1-minute window
count/sum/avg over K distinct keys (default 1,000,000) at ~200-byte JSON events, read straight
from Kafka by one streaming table:

  SELECT key, window.start AS window_start, count(*) AS n, sum(amount) AS total, avg(amount) AS mean
  FROM (SELECT value.key, value.amount, timestamp AS ts FROM STREAM read_kafka(..., value_format => 'json'))
  WATERMARK ts DELAY OF INTERVAL 10 SECONDS GROUP BY key, window(ts, '1 minute')

Event time is the record's Kafka timestamp (CreateTime stamped by the producer). The topic is
pre-loaded with Kafka's ProducerPerformance (random lines of a payload file with one line per
key), then one record per partition stamped 10 minutes later closes every window, so one
`sluice run --once` emits every window. That run is timed (wall, CPU and peak RSS of the child
via wait4); correctness: the table's total count equals the events produced minus late rows
(event log), and a sample of keys is checked against an oracle that consumes the topic itself.

  bench/window_bench.py [--events N] [--keys K] [--repeat R] [--sluice BIN ...] [--port P | --bootstrap host:port]

--sluice (repeatable): the binaries to compare; each repeat runs every one of them on the same
topic, one after the other (interleaved, so they share the machine's load); figures per binary.
"""
import argparse
import datetime
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import kafka_pipeline_bench  # noqa: E402
from kafka_pipeline_bench import JARS, PARTITIONS, SLUICE, Broker, log, run_once, topic_end_offsets  # noqa: E402

WINDOW_US = 60_000_000


def make_payloads(keys, size=200):
    """One JSON line per key, padded to ~size bytes; amounts are multiples of 0.25 (exact sums)."""
    rng = random.Random(5)
    lines = []
    for k in range(keys):
        head = f'{{"key":"k{k:07d}","amount":{rng.randrange(0, 40000) / 4},"pad":"'
        lines.append(head + "x" * max(0, size - len(head) - 2) + '"}')
    return lines


def producer_perf(bootstrap, topic, payload_file, num):
    cmd = ["java", "-Xmx2g", "-cp", f"{JARS}/*", "-Dlog4j2.level=WARN",
           "org.apache.kafka.tools.ProducerPerformance", "--topic", topic,
           "--num-records", str(num), "--throughput", "-1", "--payload-file", str(payload_file),
           "--bootstrap-server", bootstrap,
           "--command-property", "acks=1", "batch.size=262144", "linger.ms=5"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        sys.exit(f"ProducerPerformance failed:\n{out.stdout}")
    return out.stdout


def close_windows(bootstrap, topic):
    """One record per partition, stamped 10 minutes after now: the watermark passes every window."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap})
    ts = int(time.time() * 1000) + 10 * 60 * 1000
    for part in range(PARTITIONS):
        p.produce(topic, value=b'{"key":"__close","amount":0,"pad":""}', partition=part, timestamp=ts)
    assert p.flush(30) == 0


def oracle(bootstrap, topic, sample):
    """{(key, window_start_us): (n, total)} for the sample keys, from the topic itself."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "window-bench-oracle", "enable.auto.commit": False})
    ends = {}
    for part in range(PARTITIONS):
        ends[part] = c.get_watermark_offsets(TopicPartition(topic, part), timeout=10)[1]
    c.assign([TopicPartition(topic, part, 0) for part in range(PARTITIONS)])
    needles = {f'"key":"{k}"'.encode(): k for k in sample}
    out, left = {}, dict(ends)
    while any(v > 0 for v in left.values()):
        for m in c.consume(10000, timeout=5):
            if m.error():
                continue
            left[m.partition()] = ends[m.partition()] - m.offset() - 1
            v = m.value()
            key = needles.get(v[1:17])  # '"key":"k0000000"' sits at the start of every payload
            if key is None:
                continue
            ws = (m.timestamp()[1] * 1000 // WINDOW_US) * WINDOW_US
            amount = json.loads(v)["amount"]
            n, total = out.get((key, ws), (0, 0.0))
            out[(key, ws)] = (n + 1, total + amount)
    c.close()
    return out


def write_pipeline(folder, bootstrap, topic):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(
        f"name: wbench\nstorage: ./data\nmode: triggered\nkafka:\n  default:\n    bootstrap.servers: \"{bootstrap}\"\n")
    (folder / "windows.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE windows
AS SELECT key, window.start AS window_start, count(*) AS n, sum(amount) AS total, avg(amount) AS mean
FROM (SELECT value.key AS key, value.amount AS amount, timestamp AS ts
      FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest', value_format => 'json',
                             value_schema => 'key STRING, amount DOUBLE, pad STRING'))
WATERMARK ts DELAY OF INTERVAL 10 SECONDS
GROUP BY key, window(ts, '1 minute');
""")
    return folder


def late_rows(storage):
    from deltalake import DeltaTable
    late = 0
    for row in DeltaTable(str(storage / "system" / "event_log")).to_pyarrow_table().to_pylist():
        if row["event_type"] == "flow_progress":
            late += json.loads(row["details"])["flow_progress"]["metrics"].get("num_late_rows", 0)
    return late


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--sample", type=int, default=200, help="keys checked against the oracle")
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--bootstrap", help="use this running broker instead of starting one")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--sluice", action="append", help="a sluice binary to run (repeatable; runs alternate)")
    args = ap.parse_args()
    bins = [pathlib.Path(b).resolve() for b in (args.sluice or [str(SLUICE)])]
    if not all(b.exists() for b in bins):
        sys.exit("build sluice first (make build)")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-wbench-"))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {', '.join(map(str, bins))}")
    ok = True
    try:
        with Broker(args.port, args.bootstrap) as broker:
            payload_file = work / "payloads.jsonl"
            payload_file.write_text("\n".join(make_payloads(args.keys)))
            topic = f"bench-window-{args.events}-{args.keys}-{int(time.time())}"
            broker.create_topic(topic)
            log(f"pre-loading {args.events:,} events over {args.keys:,} keys into {topic} with ProducerPerformance")
            t = time.perf_counter()
            out = producer_perf(broker.bootstrap, topic, payload_file, args.events)
            log(f"pre-loaded in {time.perf_counter() - t:.1f} s ({out.strip().splitlines()[-1]})")
            close_windows(broker.bootstrap, topic)
            produced = topic_end_offsets(broker.bootstrap, topic)
            sample = [f"k{k:07d}" for k in random.Random(3).sample(range(args.keys), args.sample)]
            expected = oracle(broker.bootstrap, topic, set(sample))
            runs = []
            for i in range(args.repeat):
                for bi, b in enumerate(bins):
                    kafka_pipeline_bench.SLUICE = b
                    pipe = write_pipeline(work / f"run{i}-{bi}", broker.bootstrap, topic)
                    wall, rss, cpu, _ = run_once(pipe)
                    storage = pipe / "data"
                    import pyarrow.compute as pc
                    from deltalake import DeltaTable
                    table = DeltaTable(str(storage / "tables" / "windows")).to_pyarrow_table()
                    late = late_rows(storage)
                    total_n = pc.sum(table.column("n")).as_py() or 0
                    got = {}
                    for r in table.filter(pc.is_in(table.column("key"), value_set=__import__("pyarrow").array(sample))).to_pylist():
                        ws = int(r["window_start"].timestamp() * 1_000_000)
                        got[(r["key"], ws)] = (r["n"], r["total"])
                    counts_ok = total_n == produced - PARTITIONS - late  # the closing records stay in an open window
                    sample_ok = late > 0 or got == expected  # late rows would make the sample differ
                    runs.append((wall, rss, cpu, table.num_rows, total_n, late, counts_ok, sample_ok, bi))
                    ok &= counts_ok and sample_ok
                    log(f"run {i} {b}: wall {wall:.2f}s cpu {cpu:.1f}s rss {rss:.0f}MiB rows {table.num_rows:,} "
                        f"n {total_n:,} late {late} counts {'OK' if counts_ok else 'WRONG'} sample {'OK' if sample_ok else 'WRONG'}")
                    if not args.keep:
                        shutil.rmtree(pipe, ignore_errors=True)
            for bi, b in enumerate(bins):
                mine = [r for r in runs if r[8] == bi]
                best = min(mine)
                load1 = os.getloadavg()[0]
                print(f"window count/sum/avg events={produced:,} keys={args.keys:,} window=1 minute partitions={PARTITIONS} "
                      f"event_bytes~200 cores={os.cpu_count()} load1={load1:.2f} best of {args.repeat}, {b}")
                print(f"  end to end (wall)  {best[0]:7.2f} s  {produced / best[0] / 1e6:.3f} M events/s  "
                      f"(cpu {best[2]:.1f} s = {best[2] / best[0]:.2f} cores; {best[2] / produced * 1e6:.2f} us cpu/event)")
                print(f"  peak RSS           {best[1]:.0f} MiB")
                print(f"  output: {best[3]:,} window rows, n summed {best[4]:,} = produced {produced:,} - {PARTITIONS} closing - late {best[5]:,}: "
                      f"{'OK' if best[6] else 'WRONG'}; {len(expected)} sampled (key, window) rows vs oracle: "
                      f"{'OK' if best[7] else 'WRONG'}")
                print("  raw: " + "; ".join(f"wall {r[0]:.2f}s cpu {r[2]:.1f}s rss {r[1]:.0f}MiB" for r in mine))
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
