#!/usr/bin/env python3
"""Nexmark q0, q1, q2 (stateless) and q3 (an unbounded stream-stream join) in PySpark Structured Streaming + delta-spark, as
sluice runs them: the Nexmark topic (JSON, bench/nexmark/generate.py) -> from_json with the same
schema -> the query -> a Delta table, with Trigger.AvailableNow (= `sluice run --once`), local[2].

run_measured() (used by nexmark_bench.py --spark) runs this file as a job in its own process
tree and measures the whole tree (this driver and the JVM it starts), by being the tree's child
subreaper: every process is reaped by the measuring process, so the CPU (user + system) of all
of them is counted, and the peak RSS is the largest process's (the JVM's). Jars: delta-spark from
.deps/spark/jars; the Kafka connector (spark-sql-kafka-0-10_2.13 4.2.0, its token provider,
kafka-clients 3.9.2, commons-pool2 2.13.1) from .deps/spark-kafka/jars, else from ~/.m2.

  spark_nexmark.py --query q0 --bootstrap HOST:PORT --topic T --out DIR
"""
import argparse
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
DELTA_JARS = ROOT / ".deps" / "spark" / "jars"
KAFKA_JARS = ROOT / ".deps" / "spark-kafka" / "jars"
M2 = pathlib.Path.home() / ".m2" / "repository"
M2_KAFKA = [
    "org/apache/spark/spark-sql-kafka-0-10_2.13/4.2.0/spark-sql-kafka-0-10_2.13-4.2.0.jar",
    "org/apache/spark/spark-token-provider-kafka-0-10_2.13/4.2.0/spark-token-provider-kafka-0-10_2.13-4.2.0.jar",
    "org/apache/kafka/kafka-clients/3.9.2/kafka-clients-3.9.2.jar",
    "org/apache/commons/commons-pool2/2.13.1/commons-pool2-2.13.1.jar",
]
SCHEMA = ("event_type INT, "
          "person STRUCT<id: BIGINT, name: STRING, emailAddress: STRING, creditCard: STRING, city: STRING, "
          "state: STRING, dateTime: TIMESTAMP, extra: STRING>, "
          "auction STRUCT<id: BIGINT, itemName: STRING, description: STRING, initialBid: BIGINT, reserve: BIGINT, "
          "dateTime: TIMESTAMP, expires: TIMESTAMP, seller: BIGINT, category: BIGINT, extra: STRING>, "
          "bid STRUCT<auction: BIGINT, bidder: BIGINT, price: BIGINT, channel: STRING, url: STRING, "
          "dateTime: TIMESTAMP, extra: STRING>")
# The queries over the views `bid`, `person`, `auction` (bench/nexmark/queries/, column for
# column; q3 as Flink runs it: an inner stream-stream join with no watermark, all state kept).
QUERIES = {
    "q0": "SELECT auction, bidder, price, channel, url, dateTime, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, dateTime, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q3": """SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
             WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')""",
}


def jars():
    delta = sorted(DELTA_JARS.glob("*.jar"))
    kafka = sorted(KAFKA_JARS.glob("*.jar")) or [M2 / j for j in M2_KAFKA]
    missing = [str(j) for j in kafka if not j.exists()]
    if not delta or missing:
        sys.exit(f"Spark jars missing: {'delta-spark in ' + str(DELTA_JARS) if not delta else ''} "
                 f"{', '.join(missing)}; run scripts/setup.sh, and fetch spark-sql-kafka-0-10_2.13:4.2.0 "
                 f"with its dependencies (e.g. mvn dependency:get) into ~/.m2")
    return [str(j) for j in delta + kafka]


def job(args):
    from pyspark.sql import SparkSession
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master("local[2]").appName(f"nexmark-{args.query}")
             .config("spark.jars", ",".join(jars()))
             .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
             .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", "1g")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    raw = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", args.bootstrap)
           .option("subscribe", args.topic).option("startingOffsets", "earliest").load())
    raw.selectExpr(f"from_json(CAST(value AS STRING), '{SCHEMA}') AS e").selectExpr("e.*") \
        .createOrReplaceTempView("nexmark")
    for view, event_type in (("person", 0), ("auction", 1), ("bid", 2)):
        spark.sql(f"SELECT {view}.* FROM nexmark WHERE event_type = {event_type}").createOrReplaceTempView(view)
    query = (spark.sql(QUERIES[args.query]).writeStream.format("delta")
             .option("checkpointLocation", str(args.out / "_checkpoint"))
             .trigger(availableNow=True).start(str(args.out / "table")))
    query.awaitTermination()
    if query.exception() is not None:
        sys.exit(f"Spark {args.query} failed: {query.exception()}")
    spark.stop()


# The measuring process: child subreaper, runs argv[1:], reaps every descendant, prints
# "wall_s cpu_s max_rss_kib exit_code".
_MEASURE = """import ctypes, os, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
t = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
cpu, rss, code = 0.0, 0, None
while True:
    try:
        p, status, ru = os.wait4(-1, 0)
    except ChildProcessError:
        break
    cpu += ru.ru_utime + ru.ru_stime
    rss = max(rss, ru.ru_maxrss)
    if p == pid:
        code = os.waitstatus_to_exitcode(status)
print(time.perf_counter() - t, cpu, rss, code)
"""


def run_measured(query, bootstrap, topic, out):
    """Runs the job for `query` in a measured process tree; returns dict(wall, cpu, rss (MiB),
    table (pyarrow, the Delta table Spark wrote))."""
    import pyarrow as pa
    from deltalake import DeltaTable
    out.mkdir(parents=True)
    log_path = out / "spark.log"
    with open(log_path, "w") as log:
        meas = subprocess.run([sys.executable, "-S", "-c", _MEASURE, sys.executable, __file__, "--query", query,
                               "--bootstrap", bootstrap, "--topic", topic, "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=log, text=True)
    fields = meas.stdout.split()
    if meas.returncode != 0 or len(fields) != 4 or fields[3] != "0":
        sys.exit(f"Spark {query} failed ({meas.stdout.strip()}); its log: {log_path}\n"
                 + log_path.read_text()[-3000:])
    wall, cpu, rss_kib, _ = fields
    table = pa.table(DeltaTable(str(out / "table")).to_pyarrow_table())
    return dict(wall=float(wall), cpu=float(cpu), rss=int(rss_kib) / 1024, table=table)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--query", choices=sorted(QUERIES), required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    job(ap.parse_args())


if __name__ == "__main__":
    main()
