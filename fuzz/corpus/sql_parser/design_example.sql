CREATE OR REFRESH STREAMING TABLE user_events_bronze
  COMMENT 'raw user events'
AS SELECT * FROM STREAM read_kafka(topic => 'user-events', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE user_events_silver (
  CONSTRAINT valid_ts   EXPECT (event_time IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT known_type EXPECT (event_type IN ('view','click','purchase')),
  CONSTRAINT has_user   EXPECT (user_id IS NOT NULL) ON VIOLATION FAIL UPDATE
)
PARTITIONED BY (event_date)
AS SELECT e.user_id, e.event_type, e.event_time, CAST(e.event_time AS DATE) AS event_date
   FROM (SELECT from_json(CAST(value AS STRING), 'user_id STRING, event_type STRING,
                 event_time TIMESTAMP') AS e FROM STREAM(user_events_bronze));

CREATE OR REFRESH STREAMING TABLE fraud_alerts
AS SELECT customer_id, window.start, window.end, count(*) AS n
   FROM STREAM(transactions_silver) WATERMARK ts DELAY OF INTERVAL 10 MINUTES
   GROUP BY customer_id, window(ts, '5 minutes')
   HAVING count(*) > 10;

CREATE OR REFRESH MATERIALIZED VIEW revenue_daily
AS SELECT date_trunc('DAY', ts) AS day, sum(amount) AS revenue FROM transactions_silver GROUP BY 1;

APPLY CHANGES INTO customers FROM STREAM(customers_cdc)
  KEYS (id) APPLY AS DELETE WHEN op = 'd' SEQUENCE BY ts STORED AS SCD TYPE 2;
