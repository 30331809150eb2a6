"""Apache Spark with Delta Lake as an independent reader and writer of Delta tables.

One local SparkSession per pytest process (started on first use: ~10-20 s), with the Delta
jars fetched by scripts/setup.sh into .deps/spark/jars, no network.
"""
import functools
import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
JARS = ROOT / ".deps" / "spark" / "jars"


@functools.lru_cache(maxsize=1)
def spark_session():
    from pyspark.sql import SparkSession

    jars = sorted(str(p) for p in JARS.glob("*.jar"))
    if not jars:
        raise RuntimeError(f"no Delta jars in {JARS}: run scripts/setup.sh")
    os.environ.setdefault("PYSPARK_PYTHON", str(ROOT / ".venv" / "bin" / "python"))
    builder = (SparkSession.builder.master("local[2]").appName("sluice-tests")
               .config("spark.jars", ",".join(jars))
               .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
               .config("spark.sql.catalog.spark_catalog",
                       "org.apache.spark.sql.delta.catalog.DeltaCatalog")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.driver.memory", "1g")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               # VACUUM lists a table's folders in this many tasks (Spark's default 10,000: a
               # dry run of a 3-file table took ~35-50 s of task overhead on local[2]).
               .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
               .config("spark.databricks.delta.snapshotPartitions", "2")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1"))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def read_delta_with_spark(path, version=None):
    """The table as a pyarrow.Table, read by Spark's Delta reader."""
    reader = spark_session().read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(str(path)).toArrow()


def spark_delta_version(path):
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark_session(), str(path)).history(1).collect()
    return history[0]["version"]
