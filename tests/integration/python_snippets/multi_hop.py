# Multi-hop (medallion) pipeline: Kafka -> bronze -> silver -> gold, in the shape of the
# Databricks DLT Python documentation's medallion examples (stands in for the product
# description's snippet; docs/decisions.md "Python pipelines (py)"). Only the connection options
# (bootstrap servers, topic) are filled in.
import dlt
from pyspark.sql.functions import col, count, from_json, sum as sum_
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

event_schema = StructType([
    StructField("user_id", StringType()),
    StructField("event_type", StringType()),
    StructField("amount", DoubleType()),
    StructField("event_time", TimestampType()),
])


@dlt.table(comment="Raw events ingested from Kafka")
def events_bronze():
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", "localhost:9092")
        .option("subscribe", "events")
        .option("startingOffsets", "earliest")
        .load()
    )


@dlt.table(comment="Parsed events with valid users")
@dlt.expect_or_drop("valid_user", "user_id IS NOT NULL")
@dlt.expect("non_negative_amount", "amount >= 0")
def events_silver():
    return (
        dlt.read_stream("events_bronze")
        .select(from_json(col("value").cast("string"), event_schema).alias("event"))
        .select("event.*")
    )


@dlt.table(comment="Event count and revenue per event type")
def revenue_by_type_gold():
    return (
        dlt.read("events_silver")
        .groupBy("event_type")
        .agg(count("*").alias("events"), sum_("amount").alias("revenue"))
    )
