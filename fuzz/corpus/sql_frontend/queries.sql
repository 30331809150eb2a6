CREATE OR REFRESH MATERIALIZED VIEW gold
COMMENT 'joins, unions, ctes'
CLUSTER BY (region)
TBLPROPERTIES ('delta.appendOnly' = 'true', pipelines.reset.allowed = false, 'x' 1)
AS WITH recent AS (SELECT * EXCEPT (raw, _rescued_data) FROM LIVE.orders WHERE ts > current_timestamp() - INTERVAL 1 DAY),
     users AS (SELECT id, region FROM live.users)
SELECT DISTINCT r.id, u.region, sum(r.amount) total
FROM recent r
  JOIN users AS u ON r.user_id = u.id
  LEFT OUTER JOIN regions g USING (region)
  LEFT SEMI JOIN allow ON allow.id = r.id
  CROSS JOIN params
WHERE r.amount > 0 AND EXISTS (SELECT 1 FROM blocked b WHERE b.id = r.id) = false
GROUP BY r.id, u.region
HAVING sum(r.amount) > 100
UNION ALL
SELECT id, region, 0 FROM fallback
UNION
(SELECT id, region, total FROM archived)
ORDER BY total DESC NULLS LAST, id
LIMIT 10;

CREATE TEMPORARY VIEW v AS SELECT * FROM (SELECT a FROM STREAM t WATERMARK ts DELAY OF INTERVAL 5 SECONDS AS s) sub;
CREATE VIEW v2 AS SELECT * FROM STREAM(LIVE.events) AS e WATERMARK e.ts DELAY OF INTERVAL '2 minutes', dims;
CREATE OR REFRESH STREAMING TABLE target (id BIGINT NOT NULL COMMENT 'key', name STRING, tags ARRAY<STRING>);
CREATE FLOW backfill AS INSERT INTO target BY NAME SELECT id, name FROM STREAM(old_source);
CREATE FLOW live_feed AS INSERT INTO LIVE.target BY NAME SELECT * FROM STREAM read_kafka(topic => 'feed', `kafka.security.protocol` => 'SSL');
APPLY CHANGES INTO LIVE.dim FROM STREAM(cdc) KEYS (id, region) IGNORE NULL UPDATES
  APPLY AS DELETE WHEN op = 'DELETE' APPLY AS TRUNCATE WHEN op = 'TRUNCATE'
  SEQUENCE BY struct(ts, seq) COLUMNS * EXCEPT (op, ts) STORED AS SCD TYPE 1;
