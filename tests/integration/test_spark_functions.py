"""Differential test of sluice's SQL functions against Spark itself (pyspark, ANSI on, UTC).

One Spark session, one generated table (NULLs, empty strings, Unicode, extremes, pre-1970
instants and daylight-saving edges), one `sluice eval` run and one Spark query per function
family; every expression's values and result type must equal Spark's, except the differences
listed in KNOWN_DIFFERENCES with their reason. Expressions Spark refuses under ANSI must fail
in sluice too (ERRORS). With SLUICE_FUNCTIONS_RESULTS set, the per-function outcome is written
there as JSON for scripts/gen-functions-doc.py (docs/functions.md).
"""
import datetime as dt
import decimal
import json
import math
import os
import re
import subprocess

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from conftest import SLUICE
from spark_support import spark_session

pytestmark = pytest.mark.slow

UTC = dt.timezone.utc


def _ts(*args):
    return dt.datetime(*args, tzinfo=UTC)


S = ["hello world", "héllo wörld ✓", None, "", "  padded  ", "ÄÖÜ äöü", "a,b,,c", "12", "日本語テキスト", "MiXeD Case"]
NS = [" 12 ", "-3", "0", None, "7", "42", "100", "-1", "5", "3"]  # numbers as text, for implicit casts
N = [3, -2, None, 0, 42, 7, 1, -1, 1_000_000, -999]
D = [1.5, 1e10, None, -0.001, 2.5, -2.5, 1e-5, 123456789.125, 0.0, 0.1]
TS = [
    _ts(2024, 3, 10, 2, 30),             # a wall clock in Los Angeles' spring-forward gap
    _ts(1970, 1, 1),
    None,
    _ts(1969, 12, 31, 23, 59, 59, 999999),
    _ts(2024, 11, 3, 1, 30),             # an ambiguous wall clock in Los Angeles (fall back)
    _ts(2024, 3, 10, 9, 59, 59, 999999),  # the last instant before Los Angeles springs forward
    _ts(2024, 2, 29, 12, 0, 0, 123456),
    _ts(2023, 1, 1, 23, 0),               # a Sunday in ISO week 52 of 2022
    _ts(1900, 1, 1, 0, 0, 1),
    _ts(2099, 12, 31, 13, 45, 30, 500000),
]
ARR = [[1, 2, 3], [None, 5], None, [], [7], [5, 5], [1], [0, -1], [2, None], [9, 8, 7, 6]]
M = [[("a", 1)], [], None, [("k", 7), ("j", 8)], [("a", 2)], [("x", None)], [("é", 3)], [], [("a", 0)], [("b", 1)]]
STS = [[{"a": 1, "b": "x"}, None], [], None, [{"a": None, "b": "ü"}], [{"a": 2, "b": ""}, {"a": 3, "b": None}],
       [None], [{"a": -1, "b": "日本"}], [], [{"a": 0, "b": "z"}], [{"a": 9, "b": "y"}]]
ST = [{"a": 1, "b": "x"}, {"a": None, "b": 'q"uote'}, None, {"a": -5, "b": None}, {"a": 0, "b": ""},
      {"a": 2, "b": "ü\n"}, {"a": None, "b": None}, {"a": 7, "b": "tab\t"}, {"a": 8, "b": "/"}, {"a": 9, "b": "z"}]


def make_table():
    return pa.table({
        "s": pa.array(S, pa.string()),
        "ns": pa.array(NS, pa.string()),
        "n": pa.array(N, pa.int64()),
        "d": pa.array(D, pa.float64()),
        "ts": pa.array(TS, pa.timestamp("us", tz="UTC")),
        "arr": pa.array(ARR, pa.list_(pa.int32())),
        "m": pa.array(M, pa.map_(pa.string(), pa.int32())),
        "st": pa.array(ST, pa.struct([("a", pa.int32()), ("b", pa.string())])),
        "sts": pa.array(STS, pa.list_(pa.struct([("a", pa.int32()), ("b", pa.string())]))),
    })


FAMILIES = {
    "string": [
        "lower(s)", "upper(s)", "trim(s)", "ltrim(s)", "rtrim(s)", "reverse(s)", "initcap(s)", "length(s)",
        "char_length(s)", "octet_length(s)", "bit_length(s)", "concat(s, '-', n)", "concat_ws('|', s, ns, s)",
        "substring(s, 2, 3)", "substr(s, -3)", "substring(s, -3, 2)", "left(s, 2)", "right(s, 2)", "left(s, 0)",
        "instr(s, 'o')", "instr(s, '')", "locate('l', s)", "locate('l', s, 4)", "locate('l', s, 0)",
        "position('ö', s)", "replace(s, 'l', 'L')", "replace(s, 'l')", "regexp_replace(s, '[aeiou]', '*')",
        "regexp_extract(s, '([a-z]+) ([a-z]+)', 2)", "regexp_extract(s, '([0-9]+)', 1)", "split(s, ',')",
        "lpad(s, 8, '*')", "rpad(s, 8, '*')", "lpad(s, 3, '✓')", "startswith(s, 'he')", "endswith(s, 'd')",
        "contains(s, 'l')", "regexp_like(s, '^h')", "s rlike 'o.w'", "repeat(s, 2)", "base64(s)",
        "unbase64(base64(s))", "space(2)",
        # (fa)
        "btrim(s)", "btrim(s, 'hd ')", "ascii(s)", "chr(n)", "char(n + 200)", "elt(CAST(abs(n) % 3 + 1 AS INT), s, ns, 'z')",
        "find_in_set(s, 'a,b,,c,hello world,12')", "find_in_set('b', s)", "levenshtein(s, 'hello')",
        "levenshtein(s, ns, 3)", "soundex(s)", "soundex('Tymczak')", "overlay(s, '__', 2)", "overlay(s, ns, 3, 1)",
        "overlay(s, '✓', 1, 0)", "substring_index(s, ',', 2)", "substring_index(s, ',', -1)",
        "substring_index(s, 'l', 1)", "translate(s, 'lo', '01')", "translate(s, 'éö ', 'eo')", "split_part(s, ',', 2)",
        "split_part(s, ' ', -1)", "split_part(s, ',', 10)", "luhn_check(ns)", "luhn_check('79927398713')",
        "url_encode(s)", "url_decode(url_encode(s))", "url_decode(s)", "try_url_decode(concat(s, '%G'))",
        "regexp_count(s, 'l')", "regexp_count(s, '[a-z]+')", "regexp_substr(s, '[a-z]+')", "regexp_substr(s, 'z+')",
        "is_valid_utf8(s)", "make_valid_utf8(s)", "validate_utf8(s)", "try_validate_utf8(s)", "encode(s, 'UTF-8')",
        "decode(encode(s, 'utf-8'), 'UTF-8')", "format_number(d, 2)", "format_number(n, 0)", "format_number(d, 0)",
        "format_number(n, 3)",
    ],
    "hash": ["md5(s)", "sha1(s)", "sha2(s, 256)", "sha2(s, 512)", "xxhash64(s, n)", "xxhash64(d)",
             # (fa)
             "crc32(s)", "hex(s)", "hex(n)", "unhex(hex(s))", "unhex(ns)"],
    "math": [
        "abs(n)", "negative(n)", "positive(d)", "sqrt(d)", "ln(d)", "log10(d)", "log2(d)", "log(2, d)", "log(d)",
        "log1p(d)", "exp(n)", "sign(d)", "signum(n)", "sin(d)", "cos(d)", "tan(d)", "asin(d)", "acos(d)", "atan(d)",
        "atan2(d, n)", "sinh(d)", "cosh(n)", "tanh(d)", "asinh(d)", "floor(d)", "ceil(d)", "ceiling(n)", "floor(n)",
        "round(d)", "round(d, 1)", "round(n, -1)", "bround(d)", "bround(d, 1)", "pow(n, 2)", "power(d, 0.5)",
        "degrees(d)", "radians(d)", "pi()", "e()", "greatest(n, 5)", "least(n, 5, -1)", "greatest(d, n)",
        # (fa)
        "acosh(d)", "atanh(d)", "expm1(d)", "cbrt(d)", "cbrt(n)", "hypot(d, n)", "cot(d)", "csc(d)", "sec(d)", "rint(d)",
        "isnan(d)", "isnan(sqrt(d))", "factorial(CAST(n % 25 AS INT))", "mod(n, 3)", "mod(d, 2)", "pmod(n, 3)",
        "pmod(n, -3)", "pmod(d, 2)", "div(n, 3)", "div(n, -4)", "shiftleft(n, 3)", "shiftleft(CAST(n AS INT), 33)",
        "shiftright(n, 2)", "shiftrightunsigned(n, 60)", "shiftrightunsigned(CAST(n AS INT), 1)", "bit_get(n, 0)",
        "getbit(n, 63)", "bit_count(n)", "bit_count(CAST(n AS INT))", "bin(n)", "conv(ns, 10, 2)", "conv(s, 36, 10)",
        "conv(ns, 10, -16)", "conv(CAST(n AS STRING), 10, 16)", "try_add(n, 9223372036854775000)",
        "try_subtract(n, 9223372036854775000)", "try_multiply(n, 10000000000000)", "try_add(d, n)",
        "try_add(CAST(n AS INT), 2147483647)", "try_divide(n, 0)", "try_divide(n, n)", "try_divide(d, 2)",
        "try_mod(n, 0)", "try_mod(n, 7)",
    ],
    "conditional": [
        "coalesce(s, 'z')", "coalesce(n, d)", "nvl(n, 0)", "ifnull(s, '')", "nvl2(s, 'a', 'b')", "nvl2(n, n, -1)",
        "nullif(n, 0)", "if(n > 0, 'pos', 'neg')", "if(s = '', 1, 2)", "isnull(s)", "isnotnull(n)",
        "equal_null(n, 0)", "nanvl(d, 0.0)", "zeroifnull(n)", "nullifzero(n)",
    ],
    # (fa) the functions named after types, and typeof
    "conversion": [
        "typeof(n)", "typeof(s)", "typeof(arr)", "typeof(m)", "typeof(st)", "typeof(ts)", "typeof(d)", "bigint(d)",
        "int(n)", "smallint(n % 1000)", "tinyint(n % 100)", "double(n)", "float(d)", "boolean(n)", "string(n)",
        "string(s)", "decimal(n)", "binary(s)",
    ],
    "datetime": [
        "year(ts)", "quarter(ts)", "month(ts)", "day(ts)", "dayofmonth(ts)", "dayofweek(ts)", "weekday(ts)",
        "dayofyear(ts)", "weekofyear(ts)", "hour(ts)", "minute(ts)", "second(ts)", "EXTRACT(YEAR FROM ts)",
        "EXTRACT(SECOND FROM ts)", "EXTRACT(DOW FROM ts)", "EXTRACT(DAYOFWEEK_ISO FROM ts)", "EXTRACT(WEEK FROM ts)",
        "EXTRACT(YEAROFWEEK FROM ts)", "date_part('doy', ts)", "date_part('HOUR', ts)",
        "date_format(ts, 'yyyy-MM-dd HH:mm:ss.SSS')", "date_format(ts, 'EEE, d MMM yyyy h:mm a')",
        "date_format(ts, 'EEEE MMMM D Q kk KK yy')", "date_format(ts, 'SSSSSS XXX')",
        "from_utc_timestamp(ts, 'America/Los_Angeles')", "to_utc_timestamp(ts, 'America/Los_Angeles')",
        "from_utc_timestamp(ts, 'Asia/Kolkata')", "to_utc_timestamp(ts, 'Europe/Paris')",
        "to_utc_timestamp(ts, '+05:30')", "date_trunc('HOUR', ts)", "date_trunc('MONTH', ts)",
        "date_trunc('WEEK', ts)", "date_trunc('YEAR', ts)", "to_date(ts)", "datediff(CAST(ts AS DATE), DATE'2024-01-01')",
        "date_add(CAST(ts AS DATE), 1)", "date_sub(CAST(ts AS DATE), 40)", "unix_timestamp(ts)", "unix_seconds(ts)",
        "unix_millis(ts)", "unix_micros(ts)", "timestamp_seconds(n)", "timestamp_millis(n)", "timestamp_micros(n)",
        "unix_date(CAST(ts AS DATE))", "date_from_unix_date(CAST(n AS INT))", "from_unixtime(n)",
        # (fb) month arithmetic across month ends, leap days, pre-1970 and DST-edge instants
        "add_months(ts, 1)", "add_months(CAST(ts AS DATE), -13)", "add_months(DATE'2024-01-31', CAST(n % 25 AS INT))",
        "last_day(ts)", "last_day(CAST(ts AS DATE))", "months_between(ts, TIMESTAMP'2024-02-29 00:00:00')",
        "months_between(ts, TIMESTAMP'1970-01-31 10:00:00', false)", "months_between(ts, TIMESTAMP'2099-12-31 23:00:00')",
        "months_between(DATE'2024-03-31', ts)", "next_day(ts, 'MON')", "next_day(CAST(ts AS DATE), 'sunday')",
        "next_day(ts, 'Fr')", "make_date(2024, 2, 29)", "make_date(CAST(n % 3000 + 2000 AS INT), 1, 31)",
        "make_timestamp(2024, 2, 29, 12, 30, 45.5)", "make_timestamp(1969, 12, 31, 23, 59, 60)",
        "make_timestamp(CAST(n % 100 + 1950 AS INT), 3, 10, 2, 30, 0.000001)", "dayname(ts)", "monthname(ts)",
        "dayname(CAST(ts AS DATE))", "trunc(ts, 'MM')", "trunc(CAST(ts AS DATE), 'week')", "trunc(ts, 'YEAR')",
        "trunc(ts, 'quarter')", "current_timezone()", "date_diff(CAST(ts AS DATE), DATE'2024-01-01')",
        "dateadd(CAST(ts AS DATE), 3)", "to_unix_timestamp(ts)", "to_timestamp_ltz(ts)",
        "make_timestamp_ltz(2024, 3, 10, 2, 30, 0)", "make_timestamp_ntz(1969, 12, 31, 23, 59, 59.999999)",
        "try_make_timestamp(2024, 2, CAST(n % 40 AS INT), 1, 2, 3)", "try_make_timestamp_ntz(2023, 2, 29, 0, 0, 0)",
        "to_timestamp_ntz(ts)", "to_timestamp_ntz(CAST(ts AS DATE))",
    ],
    "collection": [
        "size(arr)", "size(m)", "cardinality(arr)", "array_size(arr)", "element_at(m, 'a')", "try_element_at(arr, 2)",
        "try_element_at(arr, -1)", "get(arr, 0)", "get(arr, 5)", "array_contains(arr, 5)", "array_contains(arr, 1)",
        "struct(n, s)", "named_struct('x', n, 'y', s)",
        # (fb) arrays: NULL elements, empty and NULL arrays, duplicates, negative positions
        "array(n, 1, NULL)", "array(d, n)", "array(s, 'é', '')", "array_compact(arr)", "array_distinct(arr)",
        "array_distinct(array(s, s, NULL, NULL))", "array_union(arr, array(5, 1, NULL))",
        "array_intersect(arr, array(5, 2, NULL))", "array_except(arr, array(5, NULL))",
        "array_except(array(s, 'x', s), array('x'))", "arrays_overlap(arr, array(5, 7))",
        "arrays_overlap(arr, array(NULL, 100))", "array_max(arr)", "array_min(arr)", "array_max(array(s, 'é', 'z'))",
        "array_min(array(ts, TIMESTAMP'1970-01-01 00:00:00'))", "sort_array(arr)", "sort_array(arr, false)",
        "array_sort(arr)", "sort_array(array(s, NULL, 'Z', ''))", "array_remove(arr, 5)", "array_remove(arr, NULL)",
        "array_position(arr, 5)", "array_position(array(s, 'x'), 'x')", "array_append(arr, n)",
        "array_append(arr, NULL)", "array_prepend(arr, 0)", "array_repeat(s, 2)", "array_repeat(n, CAST(n % 3 AS INT))",
        "slice(arr, 2, 2)", "slice(arr, -2, 5)", "slice(arr, 1, 0)", "slice(arr, -9, 2)", "flatten(array(arr, arr))",
        "flatten(array(arr, NULL))", "array_join(split(s, ','), '|')", "array_join(array(s, NULL, 'x'), '-')",
        "array_join(array(s, NULL, 'x'), '-', 'N')", "sequence(1, 5)", "sequence(5, 1)", "sequence(1, 10, 3)",
        "sequence(CAST(n % 10 AS INT), 3)", "sequence(-2, abs(n % 10), 2)",
        # (fb) maps
        "map_keys(m)", "map_values(m)", "map_entries(m)", "map_contains_key(m, 'a')", "map_contains_key(m, 'é')",
        "map('k', n, 'ü', 2)", "map(1, s)", "map_from_arrays(array(1, 2), array(s, 'x'))",
"map_from_entries(array(struct(1, 'a'), struct(2, coalesce(s, ''))))", "array(struct(n, 'a'), struct(n, ''))",
        "map_from_entries(array(named_struct('k', coalesce(s, '?'), 'v', n)))", "map_concat(m, map('zz', 9))",
        "map_concat(m, map('q', n))",
    ],
    "json": [
        "to_json(st)", "to_json(arr)", "to_json(m)", "to_json(named_struct('d', d, 't', ts, 's', s))",
        "get_json_object(to_json(st), '$.b')", "from_json(to_json(st), 'a INT, b STRING').b",
    ],
    # Spark 4 with ANSI on: a STRING against a number is cast to BIGINT (integral) or DOUBLE.
    "implicit cast": [
        "ns = n", "ns < n", "n >= ns", "ns = d", "n IN (ns, '7')", "n BETWEEN ns AND '100'", "ns <=> n",
    ],
}

# Generators make rows, so each is a query over the table `t` (a Delta table for `sluice sql`, a
# view of the same rows for Spark), compared as a multiset of rows; the key names the generator.
GENERATORS = [
    ("explode", "SELECT n, explode(arr) FROM t"),
    ("explode", "SELECT n, explode(m) FROM t"),
    ("explode", "SELECT s, x FROM t LATERAL VIEW explode(arr) v AS x WHERE x > 1"),
    ("explode", "SELECT n, x, key, value FROM t LATERAL VIEW explode(arr) a AS x LATERAL VIEW explode(m) b"),
    ("explode", "SELECT key, count(*) AS c, sum(value) AS total FROM t LATERAL VIEW explode(m) b GROUP BY key"),
    ("explode_outer", "SELECT explode_outer(arr) AS x, s FROM t"),
    ("explode_outer", "SELECT explode_outer(m) AS (k, v), s FROM t"),
    ("explode_outer", "SELECT n, y FROM t LATERAL VIEW OUTER explode(arr) v AS y"),
    ("posexplode", "SELECT n, posexplode(arr) AS (p, x) FROM t"),
    ("posexplode", "SELECT posexplode(m), n FROM t"),
    ("posexplode_outer", "SELECT posexplode_outer(arr), n FROM t"),
    ("posexplode_outer", "SELECT n, v.pos, v.x FROM t LATERAL VIEW OUTER posexplode(arr) v AS pos, x"),
    ("inline", "SELECT n, inline(sts) FROM t"),
    ("inline", "SELECT s, b FROM t LATERAL VIEW inline(sts) v WHERE a > 0"),
    ("inline_outer", "SELECT inline_outer(sts), n FROM t"),
]

# Aggregates outside the scalar registry, in GROUP BY and without keys, compared the same way.
AGGREGATE_QUERIES = [
    ("count_if", "SELECT n % 3 AS g, count_if(n > 0) AS c, count_if(d > 1) AS e FROM t GROUP BY n % 3"),
    ("count_if", "SELECT count_if(s LIKE '%o%') AS c FROM t"),
    ("bool_and", "SELECT n % 3 AS g, bool_and(n > 0) AS c, bool_and(d > 1e12) AS e FROM t GROUP BY n % 3"),
    ("bool_or", "SELECT n % 3 AS g, bool_or(n > 0) AS c, bool_or(d > 1e12) AS e FROM t GROUP BY n % 3"),
    ("every", "SELECT every(n > -1000) AS c FROM t"),
    ("some", "SELECT n % 2 AS g, some(d < 0) AS c FROM t GROUP BY n % 2"),
    ("any", "SELECT n % 2 AS g, any(s = '') AS c FROM t GROUP BY n % 2"),
    ("any_value", "SELECT n > 0 AS g, any_value(n > 0) AS c FROM t GROUP BY n > 0"),
    # The list aggregates. Spark leaves the order of collect_list / collect_set unspecified (it
    # depends on the shuffle): compared as multisets ("unordered"). With ties, max_by / min_by
    # keep the last tied row read (Spark's MaxMinBy replaces its buffer unless the old ordering
    # is strictly greater / less); Spark reads `t` in one partition, in the table's row order, so
    # the tie query compares exact values.
    ("collect_list", "SELECT n % 3 AS g, collect_list(s) AS a, collect_list(ts) AS b, collect_list(d) AS c "
                     "FROM t GROUP BY n % 3", "unordered"),
    ("collect_list", "SELECT n > 0 AS g, collect_list(arr) AS a, collect_list(st) AS b FROM t GROUP BY n > 0",
     "unordered"),
    ("collect_set", "SELECT n % 2 AS g, collect_set(s) AS a, collect_set(n % 2) AS b, collect_set(d) AS c, "
                    "collect_set(CAST(ts AS DATE)) AS e FROM t GROUP BY n % 2", "unordered"),
    # -0.0 and 0.0 are one value, kept as 0.0 by Spark 4 (a group's first such row is -0.0 here);
    # "signed": floats compared by repr too, since the tolerant comparison takes -0.0 for 0.0.
    ("collect_set", "SELECT n > 0 AS g, collect_set(IF(n % 2 = 1, CAST('-0.0' AS DOUBLE), CAST('0.0' AS DOUBLE))) "
                    "AS z FROM t GROUP BY n > 0", "signed"),
    ("max_by", "SELECT n % 3 AS g, max_by(s, n) AS a, max_by(ts, d) AS b, max_by(n, s) AS c, max_by(arr, ts) AS e "
               "FROM t GROUP BY n % 3"),
    ("max_by", "SELECT n > 0 AS g, max_by(n, n % 2 = 0) AS a, max_by(s, n % 2 = 1) AS b FROM t GROUP BY n > 0"),
    ("min_by", "SELECT n > 0 AS g, min_by(n, n % 2 = 0) AS a, min_by(d, n IS NOT NULL) AS b FROM t GROUP BY n > 0"),
    ("min_by", "SELECT n % 3 AS g, min_by(s, d) AS a, min_by(st, ts) AS b, min_by(d, s) AS c FROM t GROUP BY n % 3"),
    ("percentile_approx", "SELECT n % 3 AS g, percentile_approx(d, 0.5) AS a, percentile_approx(n, array(0.1, 0.9), "
                          "100) AS b, percentile_approx(ts, 0.25, 1000) AS c FROM t GROUP BY n % 3", "percentile"),
    ("approx_percentile", "SELECT n > 0 AS g, approx_percentile(d, array(0.0, 0.5, 1.0)) AS a FROM t GROUP BY n > 0",
     "percentile"),
]

# expression -> why sluice's result differs from Spark's on purpose (docs/functions.md shows it).
KNOWN_DIFFERENCES = {}

# Spark refuses these under ANSI (an error, not a value); sluice must fail too.
ERRORS = {
    "element_at(arr, 3)": "element_at out of bounds",
    "element_at(arr, 0)": "element_at index 0",
    "try_element_at(arr, 0)": "index 0, even for try_element_at",
    "unbase64(concat(s, '='))": "text that is not base64",
    "s = 1": "a string that is not a number compared with one",
    "abs(n - 9223372036854775807 - 2)": "integer overflow",
    # (fa)
    "mod(n, 0)": "division by zero", "pmod(n, 0)": "division by zero", "div(n, 0)": "division by zero",
    "elt(CAST(n AS INT), s, ns)": "elt index out of range", "url_decode(concat(s, '%G'))": "a broken %-escape",
    "split_part(s, ',', 0)": "part number 0", "bit_get(n, 64)": "bit position past the width",
    "int(d)": "a DOUBLE past INT's range", "tinyint(n)": "a BIGINT past TINYINT's range",
    "encode(s, 'EBCDIC-X')": "an unknown charset", "CAST(d AS INT)": "a DOUBLE past INT's range (wrapped before)", "conv('99999999999999999999', 10, 16)": "a number past 64 bits",
    # (fb)
    "make_date(2023, 2, 29)": "an invalid date under ANSI",
    "make_timestamp(2024, 1, 1, 24, 0, 0)": "an invalid hour under ANSI",
    "make_timestamp(2024, 1, 1, 0, 0, 60.5)": "a fractional 60th second",
    "next_day(ts, 'xx')": "an unknown day of the week under ANSI",
    "slice(arr, 0, 1)": "slice's start 0",
    "slice(arr, 1, -1)": "a negative slice length",
    "sequence(5, 1, 1)": "a step away from the stop",
    "sequence(1, 3000000000)": "more elements than an array may hold",
    "map(s, n)": "a NULL map key",
    "map('a', 1, 'a', 2)": "a duplicate map key (mapKeyDedupPolicy EXCEPTION)",
    "map_concat(m, map('a', n))": "a key in both maps",
    "map_from_arrays(array(1, 2), array(1))": "keys and values of different lengths",
    "map_from_arrays(arr, arr)": "a NULL map key",
}


def function_of(expr):
    m = re.match(r"\s*([A-Za-z_0-9]+)\s*\(", expr)
    return m.group(1).lower() if m else None


def sluice_eval(tmp_path, table, exprs, name):
    source = tmp_path / f"{name}.arrow"
    with ipc.new_file(source, table.schema) as w:
        w.write_table(table)
    exprs_file = tmp_path / f"{name}.txt"
    exprs_file.write_text("\n".join(exprs) + "\n")
    out = tmp_path / f"{name}.out.arrow"
    result = subprocess.run([str(SLUICE), "eval", "--input", str(source), "--output", str(out),
                             "--exprs-file", str(exprs_file)], capture_output=True, text=True)
    if result.returncode != 0:
        return None, result.stderr
    return ipc.open_file(out).read_all(), None


TYPE_NAMES = [
    (pa.types.is_int8, "TINYINT"), (pa.types.is_int16, "SMALLINT"), (pa.types.is_int32, "INT"),
    (pa.types.is_int64, "BIGINT"), (pa.types.is_float32, "FLOAT"), (pa.types.is_float64, "DOUBLE"),
    (pa.types.is_boolean, "BOOLEAN"), (pa.types.is_string, "STRING"), (pa.types.is_large_string, "STRING"),
    (pa.types.is_binary, "BINARY"), (pa.types.is_date32, "DATE"), (pa.types.is_timestamp, "TIMESTAMP"),
    (pa.types.is_decimal, "DECIMAL"), (pa.types.is_list, "ARRAY"), (pa.types.is_map, "MAP"),
    (pa.types.is_struct, "STRUCT"), (pa.types.is_null, "VOID"),
]


def type_name(t):
    for test, name in TYPE_NAMES:
        if test(t):
            return f"DECIMAL({t.precision},{t.scale})" if name == "DECIMAL" else name
    return str(t)


def same_value(x, y):
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, float) or isinstance(y, float):
        x, y = float(x), float(y)
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        if math.isinf(x) or math.isinf(y):
            return x == y
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300)
    if isinstance(x, dt.datetime) and isinstance(y, dt.datetime):
        return x.replace(tzinfo=None) == y.replace(tzinfo=None)
    if isinstance(x, decimal.Decimal) or isinstance(y, decimal.Decimal):
        return decimal.Decimal(str(x)) == decimal.Decimal(str(y))
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(same_value(a, b) for a, b in zip(x, y))
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(same_value(x[k], y[k]) for k in x)
    return x == y


@pytest.fixture(scope="module")
def spark_frame(tmp_path_factory):
    spark = spark_session()
    assert spark.conf.get("spark.sql.ansi.enabled") == "true", "Spark 4's default, the mode sluice follows"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    path = tmp_path_factory.mktemp("spark_functions") / "input.parquet"
    pq.write_table(make_table(), path)
    frame = spark.read.parquet(str(path))
    return frame


def compare_family(tmp_path, spark_frame, family, exprs):
    ours, error = sluice_eval(tmp_path, make_table(), exprs, family.replace(" ", "_"))
    assert ours is not None, f"sluice eval failed for {family}: {error}"
    theirs = spark_frame.selectExpr(*[f"{e} AS e{i}" for i, e in enumerate(exprs)]).toArrow()
    outcomes = {}
    for i, expr in enumerate(exprs):
        got, want = ours.column(f"e{i}"), theirs.column(f"e{i}")
        problems = []
        if type_name(got.type) != type_name(want.type):
            problems.append(f"type {type_name(got.type)} vs Spark's {type_name(want.type)}")
        for row, (a, b) in enumerate(zip(got.to_pylist(), want.to_pylist())):
            if not same_value(a, b):
                problems.append(f"row {row}: {a!r} vs Spark's {b!r}")
                break
        outcomes[expr] = problems
    return outcomes


def record(results, family, expr, status, note=""):
    name = function_of(expr) or family
    if name == "extract" or name == "date_part":
        name = "extract" if expr.upper().startswith("EXTRACT") else "date_part"
    entry = results.setdefault(name, {"family": family, "status": "same", "exprs": [], "notes": []})
    entry["exprs"].append(expr)
    if status != "same":
        entry["status"] = status
        entry["notes"].append(note)


def sluice_query(tmp_path, table_dir, query, name):
    out = tmp_path / f"{name}.arrow"
    result = subprocess.run([str(SLUICE), "sql", str(table_dir), query, "--output", str(out)], capture_output=True,
                            text=True)
    if result.returncode != 0:
        return None, result.stderr
    return ipc.open_file(out).read_all(), None


def unordered(value):
    """A list cell as a multiset (sorted by repr), recursively over the row's cells."""
    if isinstance(value, dict):
        return {k: unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted(value, key=repr)
    return value


def percentile_problems(query, ours, theirs):
    """percentile_approx within Spark's documented error: each value's rank among its group's
    sorted non-NULL values is at most ceil(n / accuracy) (at least 1) from ceil(p * n). Both
    sluice's (exact) and Spark's (Greenwald-Khanna) values are checked against that model."""
    key = "n % 3" if "GROUP BY n % 3" in query else "n > 0"
    rows = make_table().to_pylist()

    def group_of(r):
        if r["n"] is None:
            return None
        return int(math.fmod(r["n"], 3)) if key == "n % 3" else r["n"] > 0

    calls = re.findall(r"(?:percentile_approx|approx_percentile)\((\w+), (array\([^)]*\)|[0-9.]+)(?:, (\d+))?\) AS (\w+)",
                       query)
    problems = []
    for table, who in ((ours, "sluice"), (theirs, "Spark")):
        for out in table.to_pylist():
            members = [r for r in rows if group_of(r) == out["g"]]
            for column, percentages, accuracy, alias in calls:
                values = sorted(r[column] for r in members if r[column] is not None)
                ps = [float(p) for p in re.findall(r"[0-9.]+", percentages)]
                got = out[alias] if percentages.startswith("array") else [out[alias]]
                if not values:
                    if out[alias] is not None:
                        problems.append(f"{who}: {alias} of group {out['g']} is {out[alias]!r}, not NULL")
                    continue
                tolerance = max(1, math.ceil(len(values) / int(accuracy or 10000)))
                for p, v in zip(ps, got):
                    target = min(max(math.ceil(p * len(values)), 1), len(values))
                    ranks = [i + 1 for i, x in enumerate(values) if same_value(x, v)]
                    if not ranks or min(abs(r - target) for r in ranks) > tolerance:
                        problems.append(f"{who}: {alias}({p}) of group {out['g']} is {v!r}, not within {tolerance} "
                                        f"rank(s) of rank {target} of {values!r}")
    return problems


def compare_generators(tmp_path, spark_frame):
    """Each generator and aggregate query's rows (as a multiset) and column types against Spark's."""
    from deltalake import write_deltalake

    table_dir = tmp_path / "t"
    write_deltalake(str(table_dir), make_table())
    # One partition, in the table's row order (as sluice reads its one file): max_by / min_by's
    # ties resolve the same way in both.
    spark_frame.coalesce(1).createOrReplaceTempView("t")
    outcomes = []
    for i, (name, query, *how) in enumerate(GENERATORS + AGGREGATE_QUERIES):
        ours, error = sluice_query(tmp_path, table_dir, query, f"gen{i}")
        theirs = spark_frame.sparkSession.sql(query).toArrow()
        problems = []
        if ours is None:
            problems.append(f"sluice failed: {error.strip()}")
        else:
            if ours.column_names != theirs.column_names:
                problems.append(f"columns {ours.column_names} vs Spark's {theirs.column_names}")
            types = [type_name(c.type) for c in ours.columns]
            their_types = [type_name(c.type) for c in theirs.columns]
            if types != their_types:
                problems.append(f"types {types} vs Spark's {their_types}")
            got, want = ours.to_pylist(), theirs.to_pylist()
            if how == ["unordered"]:
                got, want = [unordered(r) for r in got], [unordered(r) for r in want]
            if how == ["percentile"]:  # values within the error bound, not equal to Spark's
                problems += percentile_problems(query, ours, theirs)
                got = [{"g": r["g"]} for r in got]
                want = [{"g": r["g"]} for r in want]
            got, want = sorted(got, key=repr), sorted(want, key=repr)
            if how == ["signed"] and repr(got) != repr(want):  # -0.0 is not 0.0 here
                problems.append(f"rows {got!r} vs Spark's {want!r} (signed zeros)")
            if len(got) != len(want):
                problems.append(f"{len(got)} rows vs Spark's {len(want)}")
            else:
                for a, b in zip(got, want):
                    if not all(same_value(a[k], b[k]) for k in b if k in a):
                        problems.append(f"row {a!r} vs Spark's {b!r}")
                        break
        outcomes.append((name, query, problems))
    return outcomes


def test_functions_match_spark(tmp_path, spark_frame):
    results = {}
    unexpected = []
    for name, query, problems in compare_generators(tmp_path, spark_frame):
        family = "generator" if any(name == g[0] for g in GENERATORS) else "aggregate"
        entry = results.setdefault(name, {"family": family, "status": "same", "exprs": [], "notes": []})
        entry["exprs"].append(query)
        if problems:
            entry["status"] = "differs"
            entry["notes"].append("; ".join(problems))
            unexpected.append(f"{query}: " + "; ".join(problems))
    for family, exprs in FAMILIES.items():
        outcomes = compare_family(tmp_path, spark_frame, family, exprs)
        for expr, problems in outcomes.items():
            if expr in KNOWN_DIFFERENCES:
                record(results, family, expr, "differs", KNOWN_DIFFERENCES[expr])
                if not problems:
                    unexpected.append(f"{expr}: listed as differing but now matches Spark")
            elif problems:
                record(results, family, expr, "differs", "; ".join(problems))
                unexpected.append(f"{expr}: " + "; ".join(problems))
            else:
                record(results, family, expr, "same")
    out = os.environ.get("SLUICE_FUNCTIONS_RESULTS")
    if out:
        with open(out, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True, ensure_ascii=False)
    assert not unexpected, "\n".join(unexpected)


def test_what_spark_refuses_under_ansi_sluice_refuses(tmp_path, spark_frame):
    wrong = []
    for i, (expr, why) in enumerate(ERRORS.items()):
        ours, error = sluice_eval(tmp_path, make_table(), [expr], f"error{i}")
        try:
            spark_frame.selectExpr(expr).collect()
            spark_failed = False
        except Exception:  # noqa: BLE001 - any Spark error (AnalysisException, ArithmeticException, ...)
            spark_failed = True
        if not spark_failed:
            wrong.append(f"{expr}: Spark did not refuse it ({why})")
        if ours is not None:
            wrong.append(f"{expr}: sluice gave {ours.column(0).to_pylist()} ({why})")
    assert not wrong, "\n".join(wrong)


def test_current_timestamp_and_date_are_one_instant_per_batch(tmp_path):
    ours, error = sluice_eval(tmp_path, make_table(), ["current_timestamp()", "current_timestamp", "current_date()",
                                                       "now()"], "now")
    assert ours is not None, error
    stamps = {v for c in ("e0", "e1", "e3") for v in ours.column(c).to_pylist()}
    assert len(stamps) == 1, stamps  # every row and every column of the batch
    assert set(ours.column("e2").to_pylist()) == {stamps.pop().date()}
