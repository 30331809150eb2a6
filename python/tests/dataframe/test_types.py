"""pyspark.sql.types: Spark's simpleString and sluice's DDL."""
import pytest

from sluice._define.types import (ArrayType, BooleanType, DateType, DecimalType, DoubleType, IntegerType, LongType,
                                  MapType, StringType, StructField, StructType, TimestampNTZType, TimestampType,
                                  type_ddl)


@pytest.mark.parametrize("data_type, simple, ddl", [
    (StringType(), "string", "STRING"), (IntegerType(), "int", "INT"), (LongType(), "bigint", "BIGINT"),
    (DoubleType(), "double", "DOUBLE"), (BooleanType(), "boolean", "BOOLEAN"), (DateType(), "date", "DATE"),
    (TimestampType(), "timestamp", "TIMESTAMP"), (TimestampNTZType(), "timestamp_ntz", "TIMESTAMP_NTZ"),
    (DecimalType(12, 3), "decimal(12,3)", "DECIMAL(12,3)"), (ArrayType(LongType()), "array<bigint>", "ARRAY<BIGINT>"),
    (MapType(StringType(), DoubleType()), "map<string,double>", "MAP<STRING, DOUBLE>"),
    (StructType([StructField("a", IntegerType()), StructField("b c", ArrayType(StringType()))]),
     "struct<a:int,b c:array<string>>", "STRUCT<a: INT, `b c`: ARRAY<STRING>>"),
])
def test_simple_string_is_sparks_and_ddl_is_sluices(data_type, simple, ddl):
    assert data_type.simpleString() == simple
    assert type_ddl(data_type) == ddl


def test_struct_type_builds_with_add_and_reads_back():
    s = StructType().add("id", LongType(), False).add("name", "string")
    assert s.names == ["id", "name"]
    assert s._schema_ddl() == "id BIGINT NOT NULL, name STRING"
    assert s["name"].dataType == StringType()
    assert StructType([StructField("id", LongType(), False), StructField("name", StringType())]) == s


@pytest.mark.parametrize("text, ddl", [
    ("long", "BIGINT"), ("array<long>", "ARRAY<BIGINT>"), ("struct<long:int, b: string>", "STRUCT<long: INT, b: STRING>"),
    ("map<string,integer>", "MAP<STRING, INT>"), ("decimal(3, 1)", "DECIMAL(3,1)"),
    # Field names that are type words stay names; only the type of each `name type` pair is translated.
    ("date STRING, long DOUBLE", "`date` STRING, long DOUBLE"),
    ("int int, string array<long>", "int INT, string ARRAY<BIGINT>"),
    ("struct<date:date, map:map<string,long>>", "STRUCT<`date`: DATE, map: MAP<STRING, BIGINT>>"),
    ("s STRUCT<long: LONG, `a b` ARRAY<STRUCT<timestamp: short>>> NOT NULL",
     "s STRUCT<long: BIGINT, `a b`: ARRAY<STRUCT<`timestamp`: SMALLINT>>> NOT NULL"),
])
def test_type_strings_translate_spark_names(text, ddl):
    assert type_ddl(text) == ddl


@pytest.mark.parametrize("text", ["a", "a INT b STRING", "array<", "x FANCY", "map<string>"])
def test_a_type_string_that_is_neither_a_type_nor_fields_is_refused(text):
    with pytest.raises(TypeError, match="type string"):
        type_ddl(text)
