#!/usr/bin/env python3
"""The bench pipeline (bench/kafka_pipeline_bench.py) as Spark would run it: PySpark Structured
Streaming + delta-spark, two queries with Trigger.AvailableNow (= `sluice run --once`), each
checkpointed; bronze copies the Kafka topic into a Delta table, then silver streams from that
Delta table, parses the JSON and applies the expectations (the two DROP ROW ones as a filter,
all three counted with Dataset.observe, as DLT reports expectation metrics).

Run by bench/spark_side_by_side.py inside bench/proctree.py, which measures the whole process
tree (this driver and its JVM). Writes a JSON summary (query durations, rows, observed metrics,
CPU seconds of driver + JVM for start-up, bronze and silver from /proc) to --summary. Usage:
  spark_pipeline_job.py --bootstrap HOST:PORT --topic T --work DIR --summary FILE
                        [--cores 2] [--driver-memory 1g] [--include-headers]
"""
import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
DELTA_JARS = ROOT / ".deps" / "spark" / "jars"
KAFKA_JARS = ROOT / ".deps" / "spark-kafka" / "jars"

# The silver query of bench/kafka_pipeline_bench.py (SILVER_SQL), column for column.
EVENT_SCHEMA = ("user_id STRING, event_type STRING, event_time TIMESTAMP, amount DOUBLE, "
                "country STRING, device STRING")


def session(args):
    from pyspark.sql import SparkSession
    jars = sorted(str(p) for p in DELTA_JARS.glob("*.jar")) + sorted(str(p) for p in KAFKA_JARS.glob("*.jar"))
    missing = [d for d in (DELTA_JARS, KAFKA_JARS) if not any(d.glob("*.jar"))]
    if missing:
        sys.exit(f"no jars in {', '.join(map(str, missing))}: run scripts/setup.sh (make setup)")
    import pyspark
    kafka_jar = next(KAFKA_JARS.glob("spark-sql-kafka-0-10_2.13-*.jar"), None)
    if kafka_jar is None or not kafka_jar.stem.endswith("-" + pyspark.__version__):
        sys.exit(f"{KAFKA_JARS} has {kafka_jar.name if kafka_jar else 'no spark-sql-kafka jar'} but pyspark is "
                 f"{pyspark.__version__}: make tools/spark-kafka/pom.xml's spark.version and requirements.txt's "
                 "pyspark agree, then run scripts/setup.sh")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (SparkSession.builder.master(f"local[{args.cores}]").appName("sluice-bench-spark")
             .config("spark.jars", ",".join(jars))
             .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
             .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
             .config("spark.sql.session.timeZone", "UTC")
             .config("spark.driver.memory", args.driver_memory)
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.sql.shuffle.partitions", str(args.cores))
             .config("spark.databricks.delta.snapshotPartitions", str(args.cores))
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.driver.host", "127.0.0.1")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def process_cpu(pids):
    """User + system CPU seconds so far of the given live processes (/proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def run_query(query):
    """Waits for an AvailableNow query; returns (seconds, input rows, observed metrics)."""
    t = time.perf_counter()
    query.awaitTermination()
    seconds = time.perf_counter() - t
    if query.exception() is not None:
        sys.exit(f"query {query.name} failed: {query.exception()}")
    rows, observed = 0, {}
    for p in query.recentProgress:
        rows += p.numInputRows
        for name, row in (p.observedMetrics or {}).items():
            for k, v in row.asDict().items():
                observed[k] = observed.get(k, 0) + (v or 0)
    return seconds, rows, observed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--work", required=True, type=pathlib.Path)
    ap.add_argument("--summary", required=True, type=pathlib.Path)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--driver-memory", default="1g")
    ap.add_argument("--include-headers", action="store_true")
    args = ap.parse_args()

    t0 = time.perf_counter()
    spark = session(args)
    startup = time.perf_counter() - t0
    # This driver and the JVM it started (spark-class execs java in the Popen'd process).
    pids = [os.getpid(), spark.sparkContext._gateway.proc.pid]
    cpu_startup = process_cpu(pids)
    from pyspark.sql import functions as F

    bronze_path, silver_path = str(args.work / "tables" / "events_bronze"), str(args.work / "tables" / "events_silver")
    checkpoints = args.work / "checkpoints"

    kafka = (spark.readStream.format("kafka")
             .option("kafka.bootstrap.servers", args.bootstrap)
             .option("subscribe", args.topic)
             .option("startingOffsets", "earliest")
             .option("includeHeaders", "true" if args.include_headers else "false")
             .load())
    bronze = (kafka.writeStream.format("delta").queryName("events_bronze").outputMode("append")
              .option("checkpointLocation", str(checkpoints / "events_bronze"))
              .trigger(availableNow=True).start(bronze_path))
    bronze_s, bronze_rows, _ = run_query(bronze)
    cpu_bronze = process_cpu(pids)

    parsed = (spark.readStream.format("delta").load(bronze_path)
              .select(F.from_json(F.col("value").cast("string"), EVENT_SCHEMA).alias("e"),
                      F.col("timestamp").alias("produced_at"))
              .select("e.user_id", "e.event_type", "e.event_time", "e.amount", "e.country", "e.device",
                      F.col("e.event_time").cast("date").alias("event_date"), "produced_at"))
    has_user = F.col("user_id").isNotNull()
    valid_amount = F.col("amount") >= 0
    known_type = F.col("event_type").isin("view", "click", "purchase")

    def violations(cond):  # a null result violates, as a DROP ROW expectation drops it
        return F.sum(F.when(F.coalesce(cond, F.lit(False)), 0).otherwise(1))

    silver_df = (parsed.observe("expectations", F.count(F.lit(1)).alias("rows"),
                                violations(has_user).alias("has_user"),
                                violations(valid_amount).alias("valid_amount"),
                                violations(known_type).alias("known_type"))
                 .where(has_user & valid_amount))
    silver = (silver_df.writeStream.format("delta").queryName("events_silver").outputMode("append")
              .option("checkpointLocation", str(checkpoints / "events_silver"))
              .trigger(availableNow=True).start(silver_path))
    silver_s, silver_rows, observed = run_query(silver)
    cpu_silver = process_cpu(pids)

    summary = dict(startup_s=startup, bronze_s=bronze_s, bronze_input_rows=bronze_rows,
                   silver_s=silver_s, silver_input_rows=silver_rows, observed=observed,
                   cpu_startup_s=cpu_startup, cpu_bronze_s=cpu_bronze - cpu_startup,
                   cpu_silver_s=cpu_silver - cpu_bronze)
    args.summary.write_text(json.dumps(summary))
    spark.stop()


if __name__ == "__main__":
    main()
