-- Raw records, exactly as Kafka holds them (Spark's Kafka source schema).
CREATE OR REFRESH STREAMING TABLE user_events_bronze
  COMMENT 'raw user events'
AS SELECT * FROM STREAM read_kafka(topic => 'user-events', starting_offsets => 'earliest');
-- Recomputed on every update.
CREATE OR REFRESH MATERIALIZED VIEW revenue_by_type
AS SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users,
          round(sum(amount), 2) AS revenue
   FROM user_events_silver
   GROUP BY event_type
   HAVING count(*) > 0
   ORDER BY revenue DESC;
-- Typed events; records without a user are dropped, unknown event types are counted.
CREATE OR REFRESH STREAMING TABLE user_events_silver (
  CONSTRAINT has_user   EXPECT (user_id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT known_type EXPECT (event_type IN ('view', 'click', 'purchase'))
)
PARTITIONED BY (event_date)
AS SELECT e.user_id, e.event_type, e.event_time, e.amount, CAST(e.event_time AS DATE) AS event_date
   FROM (SELECT from_json(CAST(value AS STRING),
                          'user_id STRING, event_type STRING, event_time TIMESTAMP, amount DOUBLE') AS e
         FROM STREAM(user_events_bronze));
