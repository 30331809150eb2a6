-- Recomputed on every update.
CREATE OR REFRESH MATERIALIZED VIEW revenue_by_type
AS SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users,
          round(sum(amount), 2) AS revenue
   FROM user_events_silver
   GROUP BY event_type
   HAVING count(*) > ${min_events}
   ORDER BY revenue DESC;
