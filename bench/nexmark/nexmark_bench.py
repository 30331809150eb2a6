#!/usr/bin/env python3
"""Nexmark on sluice (issue 12, "Speed and memory"): queries q0-q5, q7, q8 written in sluice SQL
(bench/nexmark/queries/), each run as its own pipeline with `sluice run --once` over one topic of
Nexmark events (bench/nexmark/generate.py: person/auction/bid as JSON with an event_type, 1:3:46),
checked row for row against an independent oracle (bench/nexmark/oracle.py: DuckDB over the
generated JSON lines), and timed by CPU: events/s per core = events in the topic / CPU seconds
of the sluice process (user + system, wait4), beside Flink's published per-core figure
(github.com/nexmark/nexmark README, "Benchmark Results": Flink 1.13, 8 workers x 8 cores,
100M events, datagen source, blackhole sink). Optionally (--spark) the stateless queries in
PySpark Structured Streaming (Trigger.AvailableNow, Kafka -> Delta) on the same topic
(q0-q2 by default; q3 too with --spark-queries).

The topic has one partition by default: with several, sluice's Kafka watermark (the minimum over
the partitions that have delivered rows so far) can run ahead of a partition whose first fetch
comes later, and rows of that partition become late: the windowed queries' results would then
depend on fetch timing (see docs/decisions.md). --partitions changes it (the stateless queries
are unaffected; the windowed ones may then differ from the oracle, which assumes none are late).

  bench/nexmark/nexmark_bench.py [--events N] [--queries q0,q1,...] [--repeat R] [--spark]
                                 [--partitions P] [--port P | --bootstrap host:port] [--keep]
"""
import argparse
import datetime
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import generate  # noqa: E402
import oracle  # noqa: E402
from kafka_pipeline_bench import SLUICE, Broker, log  # noqa: E402

QUERIES = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"]
# Flink 1.13, Throughput/Cores, github.com/nexmark/nexmark README (events/s per core).
FLINK_PER_CORE = {"q0": 155_020, "q1": 157_940, "q2": 175_210, "q3": 152_120, "q4": 34_330,
                  "q5": 22_140, "q7": 12_330, "q8": 146_140}
# How each query runs in sluice (what it needed besides a plain streaming table).
SHAPE = {
    "q0": "streaming table from Kafka",
    "q1": "streaming table from Kafka",
    "q2": "streaming table from Kafka",
    "q3": "streaming table + materialized view join (unbounded join)",
    "q4": "streaming table + materialized views (join bounded by columns)",
    "q5": "sliding window from Kafka + materialized views (max per window)",
    "q7": "bids table + tumbling window + stream-stream join",
    "q8": "table + two tumbling windows + stream-stream join",
}


def write_pipeline(folder, query, bootstrap, topic):
    folder.mkdir(parents=True)
    (folder / "pipeline.yaml").write_text(
        f"name: nexmark_{query}\nstorage: ./data\nkafka:\n  default:\n    bootstrap.servers: \"{bootstrap}\"\n"
        f"configuration:\n  topic: \"{topic}\"\n")
    shutil.copy(HERE / "queries" / "views.sql", folder / "views.sql")
    shutil.copy(HERE / "queries" / f"{query}.sql", folder / f"{query}.sql")
    return folder


# Runs argv[2:] with its stdout in the file argv[1]; prints "wall_s cpu_s maxrss_kib exit" of
# that child (wait4).
_RUSAGE = """import os, sys, time
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.dup2(os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, ru = os.wait4(pid, 0)
print(time.perf_counter() - t, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def run_once(pipe):
    """`sluice run pipe --once`: (wall s, peak RSS MiB, CPU s). Measured by a small interpreter
    started between this process and sluice: a child forked straight from this process (which
    holds the oracle's tables) would inherit its high-water RSS mark, so its ru_maxrss would
    show this process's size rather than sluice's."""
    with open(pipe / "sluice.err", "w") as err:
        meas = subprocess.run([sys.executable, "-S", "-c", _RUSAGE, str(pipe / "sluice.out"),
                               str(SLUICE), "run", str(pipe), "--once"],
                              stdout=subprocess.PIPE, stderr=err, text=True)
    fields = meas.stdout.split()
    if meas.returncode != 0 or len(fields) != 4 or int(fields[3]) != 0:
        sys.exit(f"sluice run {pipe} --once failed ({meas.stdout.strip()}):\n{(pipe / 'sluice.err').read_text()}")
    wall, cpu, rss_kib, _ = fields
    return float(wall), int(rss_kib) / 1024, float(cpu)


def read_result(storage, query):
    import pyarrow as pa
    from deltalake import DeltaTable
    return pa.table(DeltaTable(str(storage / "tables" / f"nexmark_{query}")).to_pyarrow_table())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=generate.DEFAULT_RATE, help="events/s of event time")
    ap.add_argument("--queries", default=",".join(QUERIES))
    ap.add_argument("--repeat", type=int, default=1, help="rounds over the queries (best CPU reported)")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--spark", action="store_true", help="also run --spark-queries in PySpark Structured Streaming")
    ap.add_argument("--spark-queries", default="q0,q1,q2", help="of q0, q1, q2, q3")
    ap.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "49092")))
    ap.add_argument("--bootstrap", help="use this running broker instead of starting one")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    queries = [q.strip() for q in args.queries.split(",") if q.strip()]
    unknown = [q for q in queries if q not in QUERIES]
    if unknown:
        sys.exit(f"--queries: unknown {', '.join(unknown)} (known: {', '.join(QUERIES)})")
    if not SLUICE.exists():
        sys.exit(f"build sluice first (make build): {SLUICE} is missing")
    work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-nexmark-"))
    print(f"# {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {SLUICE}")
    ok = True
    try:
        events = work / "events.jsonl"
        t = time.perf_counter()
        generate.generate(str(events), args.events, args.rate)
        log(f"generated {args.events:,} Nexmark events ({events.stat().st_size / 2**20:.0f} MiB) "
            f"in {time.perf_counter() - t:.1f} s")
        con = oracle.connect(str(events))
        with Broker(args.port, args.bootstrap) as broker:
            topic = f"nexmark-{args.events}-{int(time.time())}"
            broker.create_topic(topic, partitions=args.partitions)
            t = time.perf_counter()
            produced = generate.produce(str(events), broker.bootstrap, topic, args.partitions)
            log(f"produced {produced:,} records into {topic} ({args.partitions} partition(s)) "
                f"in {time.perf_counter() - t:.1f} s")
            results = {}
            for rnd in range(args.repeat):
                for q in queries:
                    pipe = write_pipeline(work / f"{q}-{rnd}", q, broker.bootstrap, topic)
                    wall, rss, cpu = run_once(pipe)
                    n_exp, n_act, missing, extra = oracle.compare(con, q, read_result(pipe / "data", q))
                    good = n_exp == n_act and missing == 0 and extra == 0
                    ok &= good
                    if n_exp == 0:
                        log(f"{q}: the oracle expects no rows (no 10-second window closed): the check is "
                            f"weak; give --events so that the events span well over 14 s of event time")
                    log(f"{q} run {rnd + 1}: wall {wall:.2f} s, cpu {cpu:.2f} s, rss {rss:.0f} MiB, rows {n_act:,} "
                        f"(oracle {n_exp:,}; missing {missing}, unexpected {extra}) {'OK' if good else 'WRONG'}")
                    best = results.get(q)
                    if best is None or cpu < best["cpu"]:
                        results[q] = dict(wall=wall, rss=rss, cpu=cpu, rows=n_act, expected=n_exp, ok=good)
                    if not args.keep:
                        shutil.rmtree(pipe, ignore_errors=True)
            spark = {}
            if args.spark:
                import spark_nexmark
                for q in [q.strip() for q in args.spark_queries.split(",") if q.strip()]:
                    r = spark_nexmark.run_measured(q, broker.bootstrap, topic, work / f"spark-{q}")
                    n_exp, n_act, missing, extra = oracle.compare(con, q, r.pop("table"))
                    r["ok"] = n_exp == n_act and missing == 0 and extra == 0
                    ok &= r["ok"]
                    spark[q] = r
                    log(f"spark {q}: wall {r['wall']:.1f} s, cpu {r['cpu']:.1f} s, rss {r['rss']:.0f} MiB, rows {n_act:,} "
                        f"(oracle {n_exp:,}) {'OK' if r['ok'] else 'WRONG'}")
        n = args.events
        print(f"nexmark events={n:,} rate={args.rate}/s(event time) partitions={args.partitions} "
              f"cores={os.cpu_count()} load1={os.getloadavg()[0]:.2f} best of {args.repeat} (by CPU)")
        print(f"  {'query':5} {'rows':>9} {'oracle':6} {'wall s':>7} {'CPU s':>6} {'CPU us/ev':>9} "
              f"{'ev/s/core':>10} {'Flink/core':>10} {'x Flink':>7} {'RSS MiB':>7}  plan")
        for q in queries:
            r = results[q]
            per_core = n / r["cpu"]
            print(f"  {q:5} {r['rows']:>9,} {'OK' if r['ok'] else 'WRONG':6} {r['wall']:7.2f} {r['cpu']:6.2f} "
                  f"{r['cpu'] / n * 1e6:9.2f} {per_core:10,.0f} {FLINK_PER_CORE[q]:10,} "
                  f"{per_core / FLINK_PER_CORE[q]:7.2f} {r['rss']:7.0f}  {SHAPE[q]}")
        for q, r in spark.items():
            per_core = n / r["cpu"]
            ratio = f"; sluice uses {r['cpu'] / results[q]['cpu']:.1f}x less CPU" if q in results else ""
            print(f"  spark {q}: wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s ({r['cpu'] / n * 1e6:.2f} us/event, "
                  f"{per_core:,.0f} events/s per core), JVM peak RSS {r['rss']:.0f} MiB, rows "
                  f"{'OK' if r['ok'] else 'WRONG'}{ratio}")
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
