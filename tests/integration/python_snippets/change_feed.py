# Change data feed reader: a table with the change data feed on, and a streaming table reading
# its changes, as the Databricks documentation's readChangeFeed example writes it (stands in for
# the product description's snippet; docs/decisions.md "Python pipelines (py)"). Only the
# connection options (bootstrap servers, topic) are filled in.
import dlt


@dlt.table(table_properties={"delta.enableChangeDataFeed": "true"})
def orders_bronze():
    return (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", "localhost:9092")
        .option("subscribe", "orders")
        .option("startingOffsets", "earliest")
        .load()
    )


@dlt.table
def orders_changes():
    return (
        spark.readStream.format("delta")
        .option("readChangeFeed", "true")
        .option("startingVersion", 0)
        .table("orders_bronze")
    )
