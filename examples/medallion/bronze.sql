-- Bronze: every record decoded from JSON at the source, with its Kafka position. A record that
-- is not JSON at all goes to <table>_dead_letter (raw bytes, topic/partition/offset, error).
CREATE OR REFRESH STREAMING TABLE user_events_bronze
  COMMENT 'user events as sent, decoded'
AS SELECT value.*, partition, offset, timestamp AS kafka_timestamp
   FROM STREAM read_kafka(topic => '${topic_prefix}user-events', starting_offsets => 'earliest',
                          value_format => 'json',
                          value_schema => 'event_id STRING, user_id STRING, event_type STRING, event_time TIMESTAMP, amount DOUBLE');

CREATE OR REFRESH STREAMING TABLE transactions_bronze
  COMMENT 'payment transactions as sent (a retrying producer sends some twice), decoded'
AS SELECT value.*, partition, offset, timestamp AS kafka_timestamp
   FROM STREAM read_kafka(topic => '${topic_prefix}transactions', starting_offsets => 'earliest',
                          value_format => 'json',
                          value_schema => 'txn_id STRING, account_id STRING, amount DOUBLE, currency STRING, ts TIMESTAMP');

CREATE OR REFRESH STREAMING TABLE iot_bronze
  COMMENT 'sensor readings as sent, decoded'
AS SELECT value.*, partition, offset, timestamp AS kafka_timestamp
   FROM STREAM read_kafka(topic => '${topic_prefix}iot-readings', starting_offsets => 'earliest',
                          value_format => 'json',
                          value_schema => 'device_id STRING, temperature DOUBLE, humidity DOUBLE, ts TIMESTAMP');
