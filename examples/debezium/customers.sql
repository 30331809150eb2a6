-- The table as it is in the database now (SCD type 1): a change older than what a key already
-- got (by lsn) is ignored, so duplicates and reordered changes give the same table.
CREATE OR REFRESH STREAMING TABLE customers;

APPLY CHANGES INTO customers FROM STREAM(customers_changes) KEYS (id)
  APPLY AS DELETE WHEN op = 'd'
  SEQUENCE BY lsn
  COLUMNS * EXCEPT (op, ts_ms)
  STORED AS SCD TYPE 1;

-- Every version of every customer (SCD type 2): __START_AT / __END_AT are the lsn values at
-- which a version began and ended (null: current); a delete ends the key's open version. A
-- change of name or city opens a new version; one that changes neither (an update of columns
-- not captured here) only moves the open version's lsn.
CREATE OR REFRESH STREAMING TABLE customers_history;

APPLY CHANGES INTO customers_history FROM STREAM(customers_changes) KEYS (id)
  APPLY AS DELETE WHEN op = 'd'
  SEQUENCE BY lsn
  COLUMNS * EXCEPT (op, ts_ms)
  STORED AS SCD TYPE 2 TRACK HISTORY ON * EXCEPT (lsn);
