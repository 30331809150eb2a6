-- Silver: rows a consumer can trust. Rows that break a DROP ROW expectation go to
-- <table>_quarantine with the expectations they broke.
CREATE OR REFRESH STREAMING TABLE user_events_silver (
  CONSTRAINT has_user   EXPECT (user_id IS NOT NULL) ON VIOLATION DROP ROW,
  CONSTRAINT known_type EXPECT (event_type IN ('view', 'click', 'purchase')) ON VIOLATION DROP ROW,
  CONSTRAINT has_time   EXPECT (event_time IS NOT NULL) ON VIOLATION DROP ROW
)
COMMENT 'user events with a user, a known type and a time'
TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT event_id, user_id, event_type, event_time, amount, CAST(event_time AS DATE) AS event_date
   FROM STREAM(user_events_bronze);

-- Each transaction once: a copy sent again within the watermark's 10 minutes is dropped; a
-- transaction older than the watermark is late, kept aside in transactions_silver_late.
CREATE OR REFRESH STREAMING TABLE transactions_silver
COMMENT 'transactions de-duplicated on txn_id'
TBLPROPERTIES ('sluice.late_rows' = 'table')
AS SELECT DISTINCT ON (txn_id) txn_id, account_id, amount, currency, ts
   FROM STREAM(transactions_bronze) WATERMARK ts DELAY OF INTERVAL 10 MINUTES;

CREATE OR REFRESH STREAMING TABLE iot_silver (
  CONSTRAINT plausible_temperature EXPECT (temperature BETWEEN -40 AND 85) ON VIOLATION DROP ROW,
  CONSTRAINT has_device EXPECT (device_id IS NOT NULL) ON VIOLATION DROP ROW
)
COMMENT 'readings a sensor can produce'
TBLPROPERTIES ('sluice.quarantine' = 'true')
AS SELECT device_id, temperature, humidity, ts FROM STREAM(iot_bronze);
