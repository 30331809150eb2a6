# Bronze: every record decoded from JSON at the source, with its Kafka position. A record that
# is not JSON at all goes to <table>_dead_letter (raw bytes, topic/partition/offset, error).
#
# No DataFrame spelling yet: decoding at the source with dead letters is read_kafka's
# `value_format => 'json'`, and Spark's Kafka source (spark.readStream.format("kafka")) has no
# such option. Its usual Python spelling,
#     spark.readStream.format("kafka").option("subscribe", topic).load()
#          .select(from_json(col("value").cast("string"), schema).alias("value"), ...)
# means something else: from_json turns a record that is not JSON into a row of nulls, kept in
# bronze, where the SQL twin sends it to a dead-letter table. So the source is read through
# spark.sql with sluice's read_kafka, and the rest is DataFrame code.
import dlt
from pyspark.sql.functions import col

prefix = spark.conf.get("topic_prefix", "")


def decoded_kafka(topic, schema):
    return spark.sql(
        f"SELECT * FROM STREAM read_kafka(topic => '{prefix}{topic}', starting_offsets => 'earliest', "
        f"value_format => 'json', value_schema => '{schema}')"
    ).select("value.*", "partition", "offset", col("timestamp").alias("kafka_timestamp"))


@dlt.table(comment="user events as sent, decoded")
def user_events_bronze():
    return decoded_kafka(
        "user-events", "event_id STRING, user_id STRING, event_type STRING, event_time TIMESTAMP, amount DOUBLE")


@dlt.table(comment="payment transactions as sent (a retrying producer sends some twice), decoded")
def transactions_bronze():
    return decoded_kafka(
        "transactions", "txn_id STRING, account_id STRING, amount DOUBLE, currency STRING, ts TIMESTAMP")


@dlt.table(comment="sensor readings as sent, decoded")
def iot_bronze():
    return decoded_kafka("iot-readings", "device_id STRING, temperature DOUBLE, humidity DOUBLE, ts TIMESTAMP")
