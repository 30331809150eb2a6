-- Debezium's records as Kafka delivered them: key {"id": ...}, value the change envelope, or
-- null for the tombstone Debezium sends after a delete (for log compaction).
CREATE OR REFRESH STREAMING TABLE customers_cdc_bronze
AS SELECT * FROM STREAM read_kafka(topic => '${cdc_topic}', starting_offsets => 'earliest');
