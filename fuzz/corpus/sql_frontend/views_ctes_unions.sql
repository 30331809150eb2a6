CREATE STREAMING TABLE bronze AS SELECT * FROM STREAM read_kafka(topic => 'a,b', include_headers => 'false');
CREATE VIEW v AS SELECT topic, partition, offset, CAST(value AS STRING) AS s FROM bronze WHERE offset >= 0;
CREATE TEMPORARY VIEW v2 AS WITH x AS (SELECT * FROM v), y AS (SELECT topic, count(*) AS n FROM x GROUP BY topic) SELECT * FROM x;
CREATE MATERIALIZED VIEW m (topic STRING COMMENT 'the topic', n BIGINT) COMMENT 'counts'
AS SELECT topic, count(*) AS n FROM v2 GROUP BY 1 ORDER BY 2 DESC NULLS LAST, topic LIMIT 10;
CREATE MATERIALIZED VIEW u AS SELECT topic, offset FROM v UNION ALL SELECT s, partition FROM v2;
CREATE MATERIALIZED VIEW f AS SELECT upper(s) || '!' AS x, s:a.b[0] AS p, coalesce(s, 'z') AS c,
  CASE WHEN offset % 2 = 0 THEN 'even' ELSE 'odd' END AS parity, offset IN (1, 2, 3) AS small,
  s LIKE 'a%' AS l, s RLIKE '^b' AS r, offset BETWEEN 1 AND 10 AS mid, round(offset / 3, 2) AS q,
  date_trunc('hour', current_timestamp()) AS h, try_cast(s AS INT) AS i, named_struct('a', 1, 'b', s) AS st
FROM v;
CREATE STREAMING TABLE t2;
CREATE FLOW into_t2 AS INSERT INTO t2 BY NAME SELECT offset FROM STREAM(bronze);
CREATE FLOW into_t2_again AS INSERT INTO t2 BY NAME SELECT partition AS offset FROM STREAM(bronze);
CREATE MATERIALIZED VIEW agg AS SELECT topic, min(offset), max(offset), avg(offset), stddev(offset), first(s), last(s), count(DISTINCT s), approx_count_distinct(s) FROM v GROUP BY topic HAVING count(*) > 0;
