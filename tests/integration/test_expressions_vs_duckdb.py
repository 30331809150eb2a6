"""Differential tests: SQL expressions evaluated by sluice (`sluice eval`, vectorised over
Arrow) and by DuckDB over the same random data with nulls give identical results.

Where Spark (which sluice follows) and DuckDB spell or define a function differently, the
case gives DuckDB's equivalent spelling and the reason; see INTENDED_DIFFERENCES."""
import datetime as dt
import json
import math
import random
import subprocess

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from conftest import SLUICE

ROWS = 400

# Intended differences: (sluice/Spark expression, DuckDB expression that means the same, why).
INTENDED_DIFFERENCES = [
    ("concat(s, t)", "s || t", "Spark's concat is NULL if any argument is; DuckDB's skips NULLs"),
    ("concat(s, '-', t)", "s || '-' || t", "as above"),
    ("regexp_replace(s, '[aeiou]', '*')", "regexp_replace(s, '[aeiou]', '*', 'g')",
     "Spark replaces every match; DuckDB only the first without 'g'"),
    ("regexp_replace(s, '(\\\\w)(\\\\w)', '$2$1')", "regexp_replace(s, '(\\w)(\\w)', '\\2\\1', 'g')",
     "Spark writes groups as $1, DuckDB as \\1; and Spark string literals process backslash "
     "escapes (so a regex \\w is written '\\\\w'), DuckDB's do not"),
    ("a / k", "a / nullif(k, 0)", "division by zero is NULL in Spark, +-inf in DuckDB"),
    ("CAST(dt AS TIMESTAMP)", "CAST(dt AS TIMESTAMPTZ)", "Spark's TIMESTAMP is zoned (UTC here); DuckDB's is not"),
    ("s RLIKE '^[a-m]'", "regexp_matches(s, '^[a-m]')", "DuckDB has no RLIKE operator"),
    ("s NOT RLIKE 'o'", "NOT regexp_matches(s, 'o')", "as above"),
    ("datediff(dt, DATE '2024-01-01')", "date_diff('day', DATE '2024-01-01', dt)",
     "Spark's datediff(end, start) vs DuckDB's date_diff(part, start, end)"),
    ("date_add(dt, 10)", "dt + 10", "DuckDB's date_add takes an INTERVAL"),
    ("date_sub(dt, k)", "dt - k", "as above"),
    ("a <=> b", "a IS NOT DISTINCT FROM b", "DuckDB has no <=> operator"),
    ("a ^ b", "xor(a, b)", "'^' is bitwise XOR in Spark, power in DuckDB"),
    ("a DIV k", "CASE WHEN k = 0 THEN NULL ELSE CAST(trunc(a / k) AS BIGINT) END",
     "Spark's DIV; DuckDB's // floors instead of truncating"),
    ("CAST(d AS INT)", "CAST(trunc(d) AS INT)", "Spark truncates toward zero; DuckDB rounds"),
    ("sha2(s, 256)", "sha256(s)", "DuckDB names it sha256"),
    ("TRY_CAST(d AS TINYINT)", "TRY_CAST(trunc(d) AS TINYINT)", "Spark truncates toward zero; DuckDB rounds"),
    ("window(ts, '5 minutes').start", "time_bucket(INTERVAL '5 minutes', ts)", "Spark's tumbling window start"),
    ("window(ts, '1 hour').end", "time_bucket(INTERVAL '1 hour', ts) + INTERVAL '1 hour'", "window end"),
    ("window(ts, '1 day').start", "time_bucket(INTERVAL '1 day', ts)", "daily windows from the epoch"),
    ("get_json_object(js, '$.a')", "json_extract_string(js, '$.a')", "DuckDB's name for it"),
    ("get_json_object(js, '$.b[1]')", "json_extract_string(js, '$.b[1]')", "as above"),
    ("get_json_object(js, '$.c')", "json_extract_string(js, '$.c')", "as above"),
    ("js:c.d", "json_extract_string(js, '$.c.d')", "Databricks' ':' path syntax"),
    ("CAST(js:b[0] AS INT) + 1", "CAST(json_extract_string(js, '$.b[0]') AS INT) + 1", "as above"),
    ("concat_ws('-', s, t)", "CASE WHEN s IS NULL AND t IS NULL THEN '' ELSE concat_ws('-', s, t) END",
     "Spark's concat_ws of only NULLs is ''; DuckDB's is NULL"),
    ("split(s, '[ o]')", "regexp_split_to_array(s, '[ o]')", "Spark's split takes a regex"),
    ("unix_timestamp(ts)", "CAST(floor(epoch(ts)) AS BIGINT)", "DuckDB's epoch() is fractional"),
    ("from_unixtime(j % 1000000000)", "strftime(to_timestamp(j % 1000000000), '%Y-%m-%d %H:%M:%S')",
     "DuckDB has no from_unixtime"),
    ("if(c, a, b)", "CASE WHEN c THEN a ELSE b END", "same meaning; DuckDB's if is spelled the same but typed differently"),
    ("floor(d)", "CAST(floor(d) AS BIGINT)", "Spark's floor of a DOUBLE is BIGINT"),
    ("ceil(d)", "CAST(ceil(d) AS BIGINT)", "as above"),
    ("sign(d)", "CAST(sign(d) AS DOUBLE)", "Spark's sign returns DOUBLE"),
    ("to_date(ds)", "TRY_CAST(ds AS DATE)", "Spark's to_date gives NULL for text that is not a date"),
    ("initcap(lower(s))", "(SELECT string_agg(upper(w[1]) || w[2:], ' ') FROM (SELECT unnest(string_split(lower(s), ' ')) AS w))",
     "DuckDB has no initcap"),
]

SAME = [
    # arithmetic (checked; no overflow in this data)
    "a + b", "a - b", "a * b", "a + 1", "b - 100", "-a", "a * -1", "a + b * k", "(a + b) * k",
    "a / b", "d / 2", "a / 3.0", "a % k", "b % 7", "d + a", "d * d", "d - 0.5",
    "abs(a)", "abs(d)", "a + j", "j - a", "j * 2", "k * k", "-d", "abs(-k)",
    # comparisons and logic (three-valued)
    "a = b", "a <> b", "a < b", "a <= b", "a > b", "a >= b", "a = 1", "s = 'apple'", "s < 'm'",
    "d > 0", "dt = DATE '2024-02-01'", "ts < TIMESTAMP '2024-03-01 00:00:00'",
    "c AND e", "c OR e", "NOT c", "c AND NOT e", "c OR a > 0", "(a > 0) AND (b > 0)",
    "a > 0 OR b > 0 OR k = 0", "NOT (a = b)", "c = e",
    "a IS NULL", "a IS NOT NULL", "s IS NULL", "c IS TRUE", "c IS NOT TRUE", "c IS FALSE",
    "c IS NOT FALSE", "a IS DISTINCT FROM b", "a IS NOT DISTINCT FROM b",
    "a IN (1, 2, 3)", "a NOT IN (1, 2, 3)", "a IN (1, NULL)", "a NOT IN (1, NULL)",
    "s IN ('apple', 'kiwi')", "k IN (0)",
    "a BETWEEN -10 AND 10", "a NOT BETWEEN -10 AND 10", "d BETWEEN a AND b",
    "dt BETWEEN DATE '2024-01-15' AND DATE '2024-02-15'",
    "s LIKE 'a%'", "s LIKE '%e'", "s LIKE '_i%'", "s NOT LIKE '%an%'", "s ILIKE 'A%'",
    "s ILIKE '%E%'", "t LIKE '%'",
    # conditionals
    "CASE WHEN a > 0 THEN 'pos' WHEN a < 0 THEN 'neg' ELSE 'zero' END",
    "CASE WHEN a > 0 THEN a END", "CASE k WHEN 0 THEN 'z' WHEN 1 THEN 'o' ELSE 'x' END",
    "CASE WHEN c THEN d ELSE -d END", "CASE WHEN s IS NULL THEN 'none' ELSE s END",
    "coalesce(a, b)", "coalesce(a, b, 0)", "coalesce(s, t, 'dflt')", "coalesce(d, 0.0)",
    "nullif(a, 0)", "nullif(s, 'apple')", "nullif(k, k)",
    "greatest(a, b)", "least(a, b)", "greatest(a, b, k)", "least(d, 0.0)",
    # casts
    "CAST(a AS BIGINT)", "CAST(a AS DOUBLE)", "CAST(a AS STRING)", "CAST(k AS BOOLEAN)",
"CAST(dt AS STRING)", "CAST(ns AS INT)", "CAST(ns AS DOUBLE)",
    "CAST(c AS INT)", "CAST(a AS DECIMAL(12, 2))", "CAST(k AS SMALLINT)",
    "CAST(ts AS DATE)", "TRY_CAST(ds AS DATE)", "TRY_CAST(s AS INT)", "TRY_CAST(ns AS INT)",
    "TRY_CAST(b AS SMALLINT)",
    # strings
    "upper(s)", "lower(s)", "trim(p)", "ltrim(p)", "rtrim(p)", "length(t)",
    "substring(s, 2, 3)", "substring(s, 1, 1)", "substring(s, 3)", "substr(t, 2, 2)",
    "s || t", "s || '!'", "upper(s) || lower(t)",
    "replace(s, 'a', 'A')", "replace(s, 'an', '')", "lpad(s, 8, '*')", "rpad(s, 8, '.')",
    "lpad(s, 3, '*')", "rpad(t, 2, '#')", "reverse(s)", "starts_with(s, 'a')", "ends_with(s, 'e')",
    "contains(s, 'an')", "md5(s)", "md5(t)",
    "concat_ws(',', s, t, s)", "regexp_extract(s, '([a-z])([a-z]+)', 2)", "regexp_extract(s, 'an', 0)",
    "regexp_extract(t, '(a)(n)?', 2)", "upper(substring(s, 1, 2))", "length(s) + length(t)",
    "s LIKE 'b%' OR t LIKE 'b%'",
    # dates and times (UTC)
    "year(dt)", "month(dt)", "day(dt)", "year(ts)", "month(ts)", "day(ts)", "hour(ts)",
    "minute(ts)", "second(ts)", "quarter(dt)", "dayofyear(dt)",
    "date_trunc('day', ts)", "date_trunc('hour', ts)", "date_trunc('month', ts)",
    "date_trunc('year', ts)", "date_trunc('minute', ts)", "date_trunc('week', ts)",
    "ts + INTERVAL 1 HOUR", "ts - INTERVAL 30 MINUTES", "ts + INTERVAL 2 DAYS",
    "ts + INTERVAL '90 seconds'", "year(ts + INTERVAL 400 DAYS)",
    # math
    "round(d)", "round(d, 2)", "round(d, 1)", "sqrt(abs(d))", "ln(abs(d) + 1)", "exp(k)",
    "power(k, 2)", "pow(abs(d), 0.5)", "round(a / 7.0, 3)", "abs(a - b)",
    # bitwise
    "a & b", "a | b", "~a", "k & 1",
]


def make_data(seed=42):
    rng = random.Random(seed)

    def maybe(v, p=0.12):
        return None if rng.random() < p else v

    words = ["apple", "banana", "kiwi", "mango", "Orange", "grape fruit", "", "élan", "zeta", "an"]
    return pa.table({
        "a": pa.array([maybe(rng.randint(-50, 50)) for _ in range(ROWS)], pa.int32()),
        "b": pa.array([maybe(rng.randint(-1000, 1000)) for _ in range(ROWS)], pa.int64()),
        "k": pa.array([rng.randint(0, 3) for _ in range(ROWS)], pa.int32()),
        "j": pa.array([maybe(rng.randint(0, 10**12)) for _ in range(ROWS)], pa.int64()),
        "d": pa.array([maybe(round(rng.uniform(-100, 100), 3)) for _ in range(ROWS)], pa.float64()),
        "s": pa.array([maybe(rng.choice(words)) for _ in range(ROWS)], pa.string()),
        "t": pa.array([maybe(rng.choice(words)) for _ in range(ROWS)], pa.string()),
        "p": pa.array([maybe(rng.choice(["  x ", "y  ", "  z", "w"])) for _ in range(ROWS)], pa.string()),
        "ns": pa.array([maybe(str(rng.randint(-999, 999))) for _ in range(ROWS)], pa.string()),
        "ds": pa.array([maybe(rng.choice(["2024-01-05", "2023-12-31", "not a date", "2024-02-29"]))
                        for _ in range(ROWS)], pa.string()),
        "c": pa.array([maybe(rng.random() < 0.5) for _ in range(ROWS)], pa.bool_()),
        "e": pa.array([maybe(rng.random() < 0.5) for _ in range(ROWS)], pa.bool_()),
        "dt": pa.array([maybe(dt.date(2024, 1, 1) + dt.timedelta(days=rng.randint(0, 90)))
                        for _ in range(ROWS)], pa.date32()),
        "ts": pa.array([maybe(1_704_067_200_000_000 + rng.randint(0, 90 * 86_400_000_000))
                        for _ in range(ROWS)], pa.timestamp("us", tz="UTC")),
        "js": pa.array([maybe(json.dumps({"a": rng.choice(["x", "y", None]), "b": [rng.randint(0, 9), rng.random() < 0.5],
                                          "c": {"d": rng.randint(-5, 5)}}, separators=(",", ":")))
                        for _ in range(ROWS)], pa.string()),
    })


def sluice_eval(tmp_path, data, exprs):
    source = tmp_path / "in.arrow"
    with ipc.new_file(source, data.schema) as w:
        w.write_table(data)
    (tmp_path / "exprs.txt").write_text("\n".join(exprs) + "\n")
    out = tmp_path / "out.arrow"
    result = subprocess.run([str(SLUICE), "eval", "--input", str(source), "--output", str(out),
                             "--exprs-file", str(tmp_path / "exprs.txt")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return ipc.open_file(out).read_all()


def duckdb_eval(data, exprs):
    con = duckdb.connect()
    con.sql("SET TimeZone = 'UTC'")
    con.register("data", data)
    select = ", ".join(f"{e} AS e{i}" for i, e in enumerate(exprs))
    return con.sql(f"SELECT {select} FROM data").arrow().read_all()


def same_value(x, y):
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, float) or isinstance(y, float):
        if isinstance(x, float) and math.isnan(x):
            return isinstance(y, float) and math.isnan(y)
        return math.isclose(float(x), float(y), rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(x, dt.datetime) and isinstance(y, dt.datetime):
        return x.replace(tzinfo=None) == y.replace(tzinfo=None) and (x.tzinfo is None) == (y.tzinfo is None)
    return x == y


CASES = [(e, e, None) for e in SAME] + INTENDED_DIFFERENCES


def test_there_are_at_least_150_expressions():
    assert len(CASES) >= 150


def test_sluice_matches_duckdb(tmp_path):
    data = make_data()
    ours = sluice_eval(tmp_path, data, [c[0] for c in CASES])
    theirs = duckdb_eval(data, [c[1] for c in CASES])
    mismatches = []
    for i, (expr, duck_expr, _) in enumerate(CASES):
        got = ours.column(f"e{i}").to_pylist()
        want = theirs.column(f"e{i}").to_pylist()
        bad = [(row, g, w) for row, (g, w) in enumerate(zip(got, want)) if not same_value(g, w)]
        if bad:
            mismatches.append(f"{expr!r} vs DuckDB {duck_expr!r}: {len(bad)} rows differ, e.g. "
                              f"row {bad[0][0]}: sluice {bad[0][1]!r}, duckdb {bad[0][2]!r}")
    assert not mismatches, "\n".join(mismatches)
