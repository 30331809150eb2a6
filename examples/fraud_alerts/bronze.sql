-- Raw card transactions as Kafka delivered them.
CREATE OR REFRESH STREAMING TABLE transactions_bronze
AS SELECT * FROM STREAM read_kafka(topic => '${transactions_topic}', starting_offsets => 'earliest');
