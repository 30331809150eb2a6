-- Raw records, exactly as Kafka holds them (Spark's Kafka source schema).
CREATE OR REFRESH STREAMING TABLE user_events_bronze
  COMMENT 'raw user events'
AS SELECT * FROM STREAM read_kafka(topic => '»user-events', starting_offsets => 'earliest');
-- Recomputed onCRENCT user_id) ASNG TABLE b 