# Fraud window: cards with more than 3 transactions in a 5-minute event-time window, with a
# watermark for late data, as DLT/Structured Streaming windowed aggregations are written
# (stands in for the product description's snippet; docs/decisions.md "Python pipelines (py)").
# Only the connection options (bootstrap servers, topic) are filled in.
import dlt
from pyspark.sql.functions import col, count, from_json, sum as sum_, window

tx_schema = "card_id STRING, amount DOUBLE, ts TIMESTAMP"


@dlt.table
def transactions_bronze():
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", "localhost:9092")
        .option("subscribe", "transactions")
        .option("startingOffsets", "earliest")
        .load()
    )


@dlt.table
@dlt.expect_or_drop("positive_amount", "amount > 0")
def transactions_silver():
    return (
        dlt.read_stream("transactions_bronze")
        .select(from_json(col("value").cast("string"), tx_schema).alias("tx"))
        .select("tx.*")
    )


@dlt.table(comment="Possible fraud: more than 3 transactions per card in 5 minutes")
def fraud_alerts():
    return (
        dlt.read_stream("transactions_silver")
        .withWatermark("ts", "10 minutes")
        .groupBy(col("card_id"), window(col("ts"), "5 minutes"))
        .agg(count("*").alias("n"), sum_("amount").alias("total"))
        .filter(col("n") > 3)
    )
