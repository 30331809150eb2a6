# Silver: rows a consumer can trust. Rows that break an expect_or_drop expectation go to
# <table>_quarantine with the expectations they broke.
import dlt
from pyspark.sql.functions import col


@dlt.table(comment="user events with a user, a known type and a time",
           table_properties={"sluice.quarantine": "true"})
@dlt.expect_or_drop("has_user", "user_id IS NOT NULL")
@dlt.expect_or_drop("known_type", "event_type IN ('view', 'click', 'purchase')")
@dlt.expect_or_drop("has_time", "event_time IS NOT NULL")
def user_events_silver():
    return dlt.read_stream("user_events_bronze").select(
        "event_id", "user_id", "event_type", "event_time", "amount",
        col("event_time").cast("date").alias("event_date"))


# Each transaction once: a copy sent again within the watermark's 10 minutes is dropped; a
# transaction older than the watermark is late, kept aside in transactions_silver_late.
@dlt.table(comment="transactions de-duplicated on txn_id",
           table_properties={"sluice.late_rows": "table"})
def transactions_silver():
    return (dlt.read_stream("transactions_bronze")
            .select("txn_id", "account_id", "amount", "currency", "ts")
            .withWatermark("ts", "10 minutes")
            .dropDuplicatesWithinWatermark(["txn_id"]))


@dlt.table(comment="readings a sensor can produce",
           table_properties={"sluice.quarantine": "true"})
@dlt.expect_or_drop("plausible_temperature", "temperature BETWEEN -40 AND 85")
@dlt.expect_or_drop("has_device", "device_id IS NOT NULL")
def iot_silver():
    return dlt.read_stream("iot_bronze").select("device_id", "temperature", "humidity", "ts")
