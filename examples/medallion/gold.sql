-- Gold: what a dashboard shows. A device's 10 seconds are written once the watermark (the
-- newest reading minus 5 seconds) passes their end; readings behind the watermark are late and
-- kept aside in iot_device_windows_late.
CREATE OR REFRESH STREAMING TABLE iot_device_windows
COMMENT 'per device and 10 seconds: readings, mean and highest temperature'
TBLPROPERTIES ('sluice.late_rows' = 'table')
AS SELECT device_id, window.start AS window_start, window.end AS window_end, count(*) AS readings,
          avg(temperature) AS avg_temperature, max(temperature) AS max_temperature
   FROM STREAM(iot_silver) WATERMARK ts DELAY OF INTERVAL 5 SECONDS
   GROUP BY device_id, window(ts, '10 seconds');

CREATE OR REFRESH MATERIALIZED VIEW revenue_by_event_type
COMMENT 'events and revenue per event type'
AS SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users, round(sum(amount), 2) AS revenue
   FROM user_events_silver
   GROUP BY event_type;

CREATE OR REFRESH MATERIALIZED VIEW account_totals
COMMENT 'transactions and their total per account'
AS SELECT account_id, count(*) AS transactions, round(sum(amount), 2) AS total
   FROM transactions_silver
   GROUP BY account_id;
