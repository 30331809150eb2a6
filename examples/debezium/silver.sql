-- One row per change: the key from `after` (create, update, snapshot read) or `before` (delete),
-- the row's values from `after`, the position in the database's log (source.lsn) to order by.
-- Tombstones (null values) carry no change and are left out.
CREATE OR REFRESH STREAMING TABLE customers_changes (
  CONSTRAINT known_op EXPECT (op IN ('c', 'u', 'd', 'r')) ON VIOLATION DROP ROW,
  CONSTRAINT has_key EXPECT (id IS NOT NULL AND lsn IS NOT NULL) ON VIOLATION DROP ROW
) AS SELECT coalesce(e.after.id, e.before.id) AS id, e.after.name AS name, e.after.city AS city,
            e.op AS op, e.source.lsn AS lsn, e.ts_ms AS ts_ms
   FROM (SELECT from_json(CAST(value AS STRING),
                 'before STRUCT<id: BIGINT, name: STRING, city: STRING>,
                  after STRUCT<id: BIGINT, name: STRING, city: STRING>,
                  source STRUCT<lsn: BIGINT, snapshot: STRING>, op STRING, ts_ms BIGINT') AS e
         FROM STREAM(customers_cdc_bronze) WHERE value IS NOT NULL);
