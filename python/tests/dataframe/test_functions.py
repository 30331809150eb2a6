"""pyspark.sql.functions: generated from sluice's registry, special signatures, refusals."""
import json
import os
import pathlib
import subprocess

import pytest

from sluice._define import functions as F
from sluice._define.column import UnsupportedError
from sluice._define.types import LongType, StringType, StructField, StructType

SLUICE = pathlib.Path(os.environ.get("SLUICE_BIN", pathlib.Path(__file__).resolve().parents[3] / "build" / "sluice"))


def test_the_function_table_is_sluices_registry():
    """functions.py's generated table equals `sluice functions` (regenerate it when this fails:
    python3 -m sluice._define.functions --table)."""
    out = subprocess.run([str(SLUICE), "functions"], capture_output=True, text=True, check=True).stdout
    registry = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert F._SCALAR_FUNCTIONS == tuple((r["name"], r["min_args"], r["max_args"], tuple(r["aliases"]))
                                        for r in registry)


def test_every_registry_function_and_alias_is_exported():
    for name, _, _, aliases in F._SCALAR_FUNCTIONS:
        for n in (name, *aliases):
            assert callable(getattr(F, n)), n
            if n.isidentifier() and n not in F._NOT_STARRED:
                assert n in F.__all__


@pytest.mark.parametrize("column, sql", [
    (F.upper("k"), "upper(k)"), (F.lcase(F.col("k")), "lower(k)"), (F.concat("a", F.lit("-"), "b"), "concat(a, '-', b)"),
    (F.coalesce("a", F.lit(0)), "coalesce(a, 0)"), (F.date_format("ts", "yyyy-MM-dd"), "date_format(ts, 'yyyy-MM-dd')"),
    (F.sha2("k", 256), "sha2(k, 256)"), (F.round("x", 2), "round(x, 2)"), (F.round("x"), "round(x)"),
    (F.regexp_extract("s", r"(\d+)", 1), "regexp_extract(s, '(\\\\d+)', 1)"),
    (F.regexp_replace("s", "a", "b"), "regexp_replace(s, 'a', 'b')"), (F.concat_ws("-", "a", "b"), "concat_ws('-', a, b)"),
    (F.date_trunc("hour", "ts"), "date_trunc('hour', ts)"), (F.to_timestamp("s"), "to_timestamp(s)"),
    (F.current_timestamp(), "current_timestamp()"), (F.log("x"), "ln(x)"), (F.log(10, "x"), "log(10, x)"),
    (F.substring("s", 1, 3), "substring(s, 1, 3)"), (F.get_json_object("j", "$.a"), "get_json_object(j, '$.a')"),
    (F.element_at("m", "key"), "element_at(m, 'key')"), (F.array_contains("arr", "v"), "array_contains(arr, 'v')"),
    (F.expr("a + 1"), "(a + 1)"), (F.expr("a"), "a"), (F.expr("e.`odd name`"), "e.`odd name`"), (F.expr("e.*"), "e.*"), (F.struct("a", F.col("b").alias("c")), "named_struct('a', a, 'c', b)"),
    (F.to_json(F.struct("a")), "to_json(named_struct('a', a))"),
])
def test_functions_render_sluice_calls(column, sql):
    assert column._sql() == sql


@pytest.mark.parametrize("column, sql", [
    (F.count("*"), "count(*)"), (F.count(F.lit(1)), "count(1)"), (F.count(1), "count(*)"), (F.count("a"), "count(a)"),
    (F.countDistinct("a"), "count(DISTINCT a)"), (F.count_distinct("a"), "count(DISTINCT a)"),
    (F.sum("a"), "sum(a)"), (F.avg("a"), "avg(a)"), (F.mean("a"), "avg(a)"), (F.min("a"), "min(a)"),
    (F.max("a"), "max(a)"), (F.first("a"), "first(a)"), (F.last("a"), "last(a)"),
    (F.approx_count_distinct("a", 0.05), "approx_count_distinct(a)"), (F.stddev("a"), "stddev(a)"),
])
def test_aggregates_are_marked_and_rendered(column, sql):
    assert column._sql() == sql
    assert column._aggregate


def test_window_and_session_window_name_their_column_as_spark_does():
    assert F.window("ts", "10 minutes")._item() == "window(ts, '10 minutes') AS window"
    assert F.window("ts", "10 minutes", "5 minutes")._sql() == "window(ts, '10 minutes', '5 minutes')"
    assert F.session_window("ts", "5 minutes")._item() == "session_window(ts, '5 minutes') AS session_window"
    with pytest.raises(ValueError, match="cannot read 'soon' as a duration"):
        F.window("ts", "soon")
    with pytest.raises(UnsupportedError, match="str literal"):
        F.session_window("ts", F.col("gap"))


def test_from_json_takes_a_ddl_string_or_a_struct_type_and_knows_its_fields():
    c = F.from_json(F.col("value").cast("string"), "id BIGINT, tags ARRAY<STRING>, `odd name` STRING")
    assert c._sql() == "from_json(CAST(value AS STRING), 'id BIGINT, tags ARRAY<STRING>, `odd name` STRING')"
    assert c._fields == ["id", "tags", "odd name"]
    schema = StructType([StructField("id", LongType()), StructField("name", StringType(), False)])
    c = F.from_json("value", schema)
    assert c._sql() == "from_json(value, 'id BIGINT, name STRING NOT NULL')"
    assert c._fields == ["id", "name"]
    assert F.from_json("value", "struct<a:int,b:string>")._fields == ["a", "b"]
    with pytest.raises(UnsupportedError, match="options"):
        F.from_json("value", schema, {"mode": "FAILFAST"})


@pytest.mark.parametrize("call, message", [
    (lambda: F.to_timestamp("s", "yyyy-MM-dd"), "takes no format argument"),
    (lambda: F.split("s", ",", 2), "takes no limit"),
    (lambda: F.first("a", ignorenulls=True), "does not skip nulls"),
    (lambda: F.countDistinct("a", "b"), "takes one column"),
    (lambda: F.collect_list("a"), "collect_list"),
    (lambda: F.udf(lambda x: x), "per-record path"),
    (lambda: F.percentile_approx("a", 0.5), "does not implement percentile_approx"),
    (lambda: F.upper("a", "b"), "upper\\(\\) takes 1 argument"),
    (lambda: F.concat_ws("-"), "concat_ws\\(\\) takes at least 2"),
])
def test_what_sluice_cannot_honour_is_refused_naming_it(call, message):
    with pytest.raises((UnsupportedError, TypeError), match=message):
        call()


def test_an_unsupported_function_can_be_imported_and_fails_where_called():
    from sluice._define.functions import collect_set  # noqa: F401 (importable, as from pyspark)
    with pytest.raises(UnsupportedError, match="pyspark.sql.functions.collect_set"):
        collect_set("a")


def test_from_json_keeps_field_names_that_are_type_words():
    c = F.from_json("value", "date STRING, long DOUBLE")
    assert c._sql() == "from_json(value, '`date` STRING, long DOUBLE')"
    assert c._fields == ["date", "long"]


def test_expr_with_an_alias_stays_one_operand_when_composed():
    assert F.expr("id + 1 AS s")._item() == "(id + 1) AS s"
    assert (F.expr("a OR b AS f") & F.col("c"))._sql() == "((a OR b) AND c)"


@pytest.mark.parametrize("text, sql", [("null", "NULL"), ("TRUE", "TRUE"), ("false", "FALSE")])
def test_expr_of_a_literal_word_is_that_literal_not_a_column(text, sql):
    c = F.expr(text)
    assert c._ref is None and c._sql() == sql


def test_module_getattr_serves_supported_names_and_refuses_others_as_attribute_errors():
    for name in F.__all__:
        assert F.__getattr__(name) is getattr(F, name), name
    with pytest.raises(AttributeError):
        F.__getattr__("__wrapped__")
    refused = F.__getattr__("collect_list")
    with pytest.raises(AttributeError, match="collect_list"):
        refused("a")
    with pytest.raises(UnsupportedError, match="collect_list"):
        refused("a")
