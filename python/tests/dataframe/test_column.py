"""Column: operators, literals, casts, predicates, nested access, sort orders, CASE."""
import datetime as dt
import decimal

import pytest

from sluice._define import functions as F
from sluice._define.column import UnsupportedError
from sluice._define.types import ArrayType, DecimalType, StringType, StructField, StructType

a, b = F.col("a"), F.col("b")


@pytest.mark.parametrize("column, sql", [
    (a + b, "(a + b)"), (a - 1, "(a - 1)"), (2 * a, "(2 * a)"), (a / b, "(a / b)"), (a % 3, "(a % 3)"),
    (1 - a, "(1 - a)"), (a == b, "(a = b)"), (a != "x", "(a <> 'x')"), (a < 1, "(a < 1)"), (a <= 1, "(a <= 1)"),
    (a > 1, "(a > 1)"), (a >= 1, "(a >= 1)"), ((a > 1) & (b < 2), "((a > 1) AND (b < 2))"),
    ((a > 1) | ~(b < 2), "((a > 1) OR (NOT (b < 2)))"), (-a, "(- a)"), (a ** 2, "pow(a, 2)"),
    (a.eqNullSafe(b), "equal_null(a, b)"),
])
def test_operators_render_parenthesised_sql(column, sql):
    assert column._sql() == sql


@pytest.mark.parametrize("value, sql", [
    (None, "NULL"), (True, "TRUE"), (False, "FALSE"), (42, "42"), (-7, "-7"), (1.5, "CAST(1.5 AS DOUBLE)"),
    (1e300, "1e+300"), (float("nan"), "CAST('NaN' AS DOUBLE)"), (float("-inf"), "CAST('-Infinity' AS DOUBLE)"),
    ("it's", "'it\\'s'"), ("back\\slash", "'back\\\\slash'"), (decimal.Decimal("12.50"), "CAST('12.50' AS DECIMAL(4,2))"),
    (dt.date(2024, 2, 29), "DATE '2024-02-29'"),
    (dt.datetime(2024, 1, 1, 12, 30), "TIMESTAMP '2024-01-01 12:30:00'"),
    (dt.datetime(2024, 1, 1, 13, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))), "TIMESTAMP '2024-01-01 12:30:00'"),
])
def test_literals_render_as_sluice_sql_literals(value, sql):
    assert F.lit(value)._sql() == sql


def test_a_literal_of_an_unknown_python_type_is_refused():
    with pytest.raises(UnsupportedError, match="no literal of Python type bytes"):
        F.lit(b"\x00")


@pytest.mark.parametrize("cast_to, sql", [
    ("int", "CAST(a AS INT)"), ("long", "CAST(a AS BIGINT)"), ("string", "CAST(a AS STRING)"),
    ("decimal(10,2)", "CAST(a AS DECIMAL(10,2))"), ("array<long>", "CAST(a AS ARRAY<BIGINT>)"),
    (DecimalType(5, 1), "CAST(a AS DECIMAL(5,1))"), (ArrayType(StringType()), "CAST(a AS ARRAY<STRING>)"),
    (StructType([StructField("x", StringType())]), "CAST(a AS STRUCT<x: STRING>)"),
])
def test_cast_takes_type_strings_and_data_types(cast_to, sql):
    assert a.cast(cast_to)._sql() == sql


@pytest.mark.parametrize("column, sql", [
    (a.isNull(), "(a IS NULL)"), (a.isNotNull(), "(a IS NOT NULL)"), (a.isin(1, 2), "(a IN (1, 2))"),
    (a.isin(["x", "y"]), "(a IN ('x', 'y'))"), (a.between(1, 5), "(a BETWEEN 1 AND 5)"),
    (a.like("x%"), "(a LIKE 'x%')"), (a.rlike("^x+$"), "(a RLIKE '^x+$')"), (a.contains("q"), "contains(a, 'q')"),
    (a.startswith("p"), "startswith(a, 'p')"), (a.endswith("s"), "endswith(a, 's')"),
    (a.substr(2, 3), "substring(a, 2, 3)"), (a.getField("f"), "a.f"), (a["f"], "a.f"), (a.f, "a.f"),
    (a[0], "a[0]"), (F.col("s.`odd name`"), "s.`odd name`"), (F.col("select"), "`select`"),
    ((a + 1).getField("f"), "((a + 1)).f"),
])
def test_predicates_and_nested_access(column, sql):
    assert column._sql() == sql


def test_alias_and_name_give_the_select_item_its_name():
    assert (a + 1).alias("n")._item() == "(a + 1) AS n"
    assert a.name("b c")._item() == "a AS `b c`"
    assert F.col("e.user_id")._output_name() == "user_id"


def test_when_otherwise_is_a_case_expression():
    c = F.when(a > 1, "big").when(a.isNull(), F.lit(None)).otherwise(b)
    assert c._sql() == "CASE WHEN (a > 1) THEN 'big' WHEN (a IS NULL) THEN NULL ELSE b END"
    assert F.when(a > 1, 1)._sql() == "CASE WHEN (a > 1) THEN 1 END"
    with pytest.raises(UnsupportedError, match="functions.when"):
        a.when(a > 1, 2)


def test_sort_orders_render_only_in_order_by():
    assert a.desc_nulls_first()._sort_item() == "a DESC NULLS FIRST"
    assert a.asc_nulls_last()._sort_item() == "a ASC NULLS LAST"
    with pytest.raises(UnsupportedError, match="sort order"):
        (a.desc() + 1)._sql()


def test_a_column_is_not_a_python_bool():
    with pytest.raises(ValueError, match="Cannot convert column into bool"):
        bool(a > 1)
    with pytest.raises(ValueError):
        _ = (a > 1) and (b > 1)


def test_window_functions_over_partitions_are_refused_by_name():
    with pytest.raises(UnsupportedError, match="OVER"):
        F.sum("a").over(None)


def test_a_misspelt_column_method_says_it_was_read_as_a_field():
    with pytest.raises(TypeError, match="'isnull' is no Column method"):
        a.isnull()
    with pytest.raises(UnsupportedError, match="no isnan"):
        a.isNaN()


@pytest.mark.parametrize("value, sql", [
    ("19.99", "CAST('19.99' AS DECIMAL(4,2))"), ("0.05", "CAST('0.05' AS DECIMAL(2,2))"),
    ("-7", "CAST('-7' AS DECIMAL(1,0))"), ("1E+2", "CAST('100' AS DECIMAL(3,0))"), ("0.000", "CAST('0.000' AS DECIMAL(3,3))"),
])
def test_a_decimal_literal_is_typed_as_spark_types_it(value, sql):
    assert F.lit(decimal.Decimal(value))._sql() == sql


def test_a_decimal_literal_over_38_digits_is_refused():
    with pytest.raises(UnsupportedError, match="at most 38"):
        F.lit(decimal.Decimal("1" * 39))
