# Gold: what a dashboard shows. A device's 10 seconds are written once the watermark (the
# newest reading minus 5 seconds) passes their end; readings behind the watermark are late and
# kept aside in iot_device_windows_late.
import dlt
from pyspark.sql import functions as F


@dlt.table(comment="per device and 10 seconds: readings, mean and highest temperature",
           table_properties={"sluice.late_rows": "table"})
def iot_device_windows():
    return (dlt.read_stream("iot_silver")
            .withWatermark("ts", "5 seconds")
            .groupBy("device_id", F.window("ts", "10 seconds"))
            .agg(F.count("*").alias("readings"), F.avg("temperature").alias("avg_temperature"),
                 F.max("temperature").alias("max_temperature"))
            .select("device_id", F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
                    "readings", "avg_temperature", "max_temperature"))


# dlt.read (not read_stream): a batch read, so these are materialized views.
@dlt.table(comment="events and revenue per event type")
def revenue_by_event_type():
    return (dlt.read("user_events_silver")
            .groupBy("event_type")
            .agg(F.count("*").alias("events"), F.countDistinct("user_id").alias("users"),
                 F.round(F.sum("amount"), 2).alias("revenue")))


@dlt.table(comment="transactions and their total per account")
def account_totals():
    return (dlt.read("transactions_silver")
            .groupBy("account_id")
            .agg(F.count("*").alias("transactions"), F.round(F.sum("amount"), 2).alias("total")))
