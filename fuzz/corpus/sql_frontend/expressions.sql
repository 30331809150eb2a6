-- Operator precedence, predicates and every literal form.
CREATE MATERIALIZED VIEW exprs AS SELECT
  a + b * c - d / e % f AS arith,
  -x, - 5, NOT a = b AND c OR d,
  a || 'x' || b,
  x BETWEEN 1 AND 10, x NOT BETWEEN lo AND hi,
  y IN (1, 2, 3), y NOT IN ('a'),
  s LIKE 'a%', s NOT ILIKE 'B_', s RLIKE '^x.*$',
  z IS NULL, z IS NOT NULL, flag IS TRUE, flag IS NOT FALSE, a IS DISTINCT FROM b, a <=> b,
  CASE WHEN x > 0 THEN 'pos' WHEN x < 0 THEN 'neg' ELSE 'zero' END,
  CASE kind WHEN 1 THEN 'one' END,
  CAST(v AS DECIMAL(10, 2)), TRY_CAST(v AS INT), v::BIGINT, CAST(m AS MAP<STRING, ARRAY<INT>>),
  CAST(s AS STRUCT<a: INT, b STRING NOT NULL>),
  DATE '2024-01-01', TIMESTAMP '2024-01-01 00:00:00', ts + INTERVAL 1 HOUR 30 MINUTES,
  INTERVAL '10 minutes', INTERVAL '5' SECOND,
  1e3, 1.5, .5, 10L, TRUE, false, NULL, 'it''s', "dq", 'tab\tnew\nline',
  arr[0], m['k'], st.field, (st).field, value:a.b[0].c, t.*,
  count(*), count(DISTINCT user_id), approx_count_distinct(u), coalesce(a, b, 0),
  `weird name`, `select`
FROM t;
