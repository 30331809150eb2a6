-- Struct field names that are not plain words keep their backquotes in the column type.
CREATE OR REFRESH STREAMING TABLE m (s STRUCT<`a b`: INT NOT NULL, c: STRUCT<`x-y`: STRING>>)
AS SELECT * FROM STREAM(src);
