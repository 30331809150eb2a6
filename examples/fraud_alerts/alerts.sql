-- A card used more than ${max_per_window} times in a 5-minute window: one alert row when the
-- window closes (the watermark passes its end).
CREATE OR REFRESH STREAMING TABLE fraud_alerts
AS SELECT card_id, window.start AS window_start, window.end AS window_end, count(*) AS n,
          round(sum(amount), 2) AS total
   FROM STREAM(transactions_silver) WATERMARK ts DELAY OF INTERVAL 1 MINUTE
   GROUP BY card_id, window(ts, '5 minutes')
   HAVING count(*) > ${max_per_window};
