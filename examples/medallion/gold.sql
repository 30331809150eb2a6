-- Gold: what a dashboard shows. A device's minute is written once the watermark (the newest
-- reading minus 1 minute) passes its end; readings behind the watermark are late and kept aside.
CREATE OR REFRESH STREAMING TABLE iot_device_minutes
COMMENT 'per device and minute: readings, mean and highest temperature'
TBLPROPERTIES ('sluice.late_rows' = 'table')
AS SELECT device_id, window.start AS minute_start, window.end AS minute_end, count(*) AS readings,
          avg(temperature) AS avg_temperature, max(temperature) AS max_temperature
   FROM STREAM(iot_silver) WATERMARK ts DELAY OF INTERVAL 1 MINUTE
   GROUP BY device_id, window(ts, '1 minute');

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
