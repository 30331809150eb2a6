CREATE OR REFRESH STREAMING TABLE orders;

CREATE FLOW orders_eu COMMENT 'EU orders, backfilled from the archive topic'
AS INSERT INTO orders BY NAME
SELECT * FROM STREAM(orders_eu_raw);
