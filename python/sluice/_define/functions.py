"""pyspark.sql.functions for pipelines: each function renders sluice SQL, none runs in Python.

The plain functions are generated from sluice's function registry (the table below is
`sluice functions`, checked against the binary by python/tests/dataframe/test_functions.py);
the ones whose pyspark signature differs from the SQL call (literal arguments, defaults, names)
are written out after it. A function sluice's SQL does not implement can still be imported, so
that a pipeline fails where it calls it, with an error naming the function."""
from __future__ import annotations

import builtins as _builtins
import re as _re

from .column import Column, UnsupportedError, interval_sql, lit_sql, to_column
from .types import StructType, DataType, type_ddl

# (name, min args, max args or -1, aliases): `sluice functions`, one row per function.
# Regenerate: python3 -m sluice._define.functions --table  (prints it from $SLUICE_BIN or build/sluice)
# BEGIN GENERATED
_SCALAR_FUNCTIONS = (
    ('lower', 1, 1, ('lcase',)),
    ('upper', 1, 1, ('ucase',)),
    ('trim', 1, 1, ()),
    ('ltrim', 1, 1, ()),
    ('rtrim', 1, 1, ()),
    ('reverse', 1, 1, ()),
    ('initcap', 1, 1, ()),
    ('length', 1, 1, ('char_length', 'character_length', 'len')),
    ('octet_length', 1, 1, ()),
    ('bit_length', 1, 1, ()),
    ('concat', 1, -1, ()),
    ('concat_ws', 2, -1, ()),
    ('regexp_extract', 2, 3, ()),
    ('substring', 2, 3, ('substr',)),
    ('left', 2, 2, ()),
    ('right', 2, 2, ()),
    ('instr', 2, 2, ()),
    ('locate', 2, 3, ('position',)),
    ('replace', 2, 3, ()),
    ('regexp_replace', 3, 3, ()),
    ('split', 2, 2, ()),
    ('lpad', 2, 3, ()),
    ('rpad', 2, 3, ()),
    ('startswith', 2, 2, ('starts_with',)),
    ('endswith', 2, 2, ('ends_with',)),
    ('contains', 2, 2, ()),
    ('regexp_like', 2, 2, ('rlike', 'regexp')),
    ('repeat', 2, 2, ()),
    ('space', 1, 1, ()),
    ('base64', 1, 1, ()),
    ('unbase64', 1, 1, ()),
    ('btrim', 1, 2, ()),
    ('ascii', 1, 1, ()),
    ('chr', 1, 1, ('char',)),
    ('elt', 2, -1, ()),
    ('find_in_set', 2, 2, ()),
    ('levenshtein', 2, 3, ()),
    ('soundex', 1, 1, ()),
    ('overlay', 3, 4, ()),
    ('substring_index', 3, 3, ()),
    ('translate', 3, 3, ()),
    ('split_part', 3, 3, ()),
    ('luhn_check', 1, 1, ()),
    ('url_encode', 1, 1, ()),
    ('url_decode', 1, 1, ()),
    ('try_url_decode', 1, 1, ()),
    ('regexp_count', 2, 2, ()),
    ('regexp_substr', 2, 2, ()),
    ('is_valid_utf8', 1, 1, ()),
    ('make_valid_utf8', 1, 1, ()),
    ('validate_utf8', 1, 1, ()),
    ('try_validate_utf8', 1, 1, ()),
    ('encode', 2, 2, ()),
    ('decode', 2, 2, ()),
    ('format_number', 2, 2, ()),
    ('abs', 1, 1, ()),
    ('negative', 1, 1, ()),
    ('positive', 1, 1, ()),
    ('sqrt', 1, 1, ()),
    ('ln', 1, 1, ()),
    ('log10', 1, 1, ()),
    ('log2', 1, 1, ()),
    ('log1p', 1, 1, ()),
    ('exp', 1, 1, ()),
    ('sign', 1, 1, ('signum',)),
    ('sin', 1, 1, ()),
    ('cos', 1, 1, ()),
    ('tan', 1, 1, ()),
    ('asin', 1, 1, ()),
    ('acos', 1, 1, ()),
    ('atan', 1, 1, ()),
    ('sinh', 1, 1, ()),
    ('cosh', 1, 1, ()),
    ('tanh', 1, 1, ()),
    ('asinh', 1, 1, ()),
    ('atan2', 2, 2, ()),
    ('log', 1, 2, ()),
    ('degrees', 1, 1, ()),
    ('radians', 1, 1, ()),
    ('pi', 0, 0, ()),
    ('e', 0, 0, ()),
    ('floor', 1, 1, ()),
    ('ceil', 1, 1, ('ceiling',)),
    ('round', 1, 2, ()),
    ('bround', 1, 2, ()),
    ('pow', 2, 2, ('power',)),
    ('greatest', 2, -1, ()),
    ('least', 2, -1, ()),
    ('acosh', 1, 1, ()),
    ('atanh', 1, 1, ()),
    ('expm1', 1, 1, ()),
    ('cbrt', 1, 1, ()),
    ('hypot', 2, 2, ()),
    ('cot', 1, 1, ()),
    ('csc', 1, 1, ()),
    ('sec', 1, 1, ()),
    ('rint', 1, 1, ()),
    ('isnan', 1, 1, ()),
    ('factorial', 1, 1, ()),
    ('mod', 2, 2, ()),
    ('pmod', 2, 2, ()),
    ('try_mod', 2, 2, ()),
    ('div', 2, 2, ()),
    ('try_add', 2, 2, ()),
    ('try_subtract', 2, 2, ()),
    ('try_multiply', 2, 2, ()),
    ('try_divide', 2, 2, ()),
    ('shiftleft', 2, 2, ()),
    ('shiftright', 2, 2, ()),
    ('shiftrightunsigned', 2, 2, ()),
    ('bit_get', 2, 2, ('getbit',)),
    ('bit_count', 1, 1, ()),
    ('bin', 1, 1, ()),
    ('conv', 3, 3, ()),
    ('year', 1, 1, ()),
    ('quarter', 1, 1, ()),
    ('month', 1, 1, ()),
    ('day', 1, 1, ('dayofmonth',)),
    ('dayofweek', 1, 1, ()),
    ('dayofyear', 1, 1, ()),
    ('weekofyear', 1, 1, ()),
    ('hour', 1, 1, ()),
    ('minute', 1, 1, ()),
    ('second', 1, 1, ()),
    ('weekday', 1, 1, ()),
    ('extract', 2, 2, ('date_part', 'datepart')),
    ('current_timestamp', 0, 0, ('now',)),
    ('current_date', 0, 0, ('curdate',)),
    ('date_format', 2, 2, ()),
    ('from_utc_timestamp', 2, 2, ()),
    ('to_utc_timestamp', 2, 2, ()),
    ('date_trunc', 2, 2, ()),
    ('to_date', 1, 1, ()),
    ('to_timestamp', 1, 1, ('to_timestamp_ltz',)),
    ('datediff', 2, 2, ('date_diff',)),
    ('date_add', 2, 2, ('dateadd',)),
    ('date_sub', 2, 2, ()),
    ('unix_timestamp', 1, 1, ('to_unix_timestamp',)),
    ('from_unixtime', 1, 1, ()),
    ('timestamp_seconds', 1, 1, ()),
    ('timestamp_millis', 1, 1, ()),
    ('timestamp_micros', 1, 1, ()),
    ('unix_seconds', 1, 1, ()),
    ('unix_millis', 1, 1, ()),
    ('unix_micros', 1, 1, ()),
    ('unix_date', 1, 1, ()),
    ('date_from_unix_date', 1, 1, ()),
    ('window', 2, 4, ()),
    ('session_window', 2, 2, ()),
    ('add_months', 2, 2, ()),
    ('last_day', 1, 1, ()),
    ('months_between', 2, 3, ()),
    ('next_day', 2, 2, ()),
    ('make_date', 3, 3, ()),
    ('make_timestamp', 6, 6, ('make_timestamp_ltz',)),
    ('make_timestamp_ntz', 6, 6, ()),
    ('try_make_timestamp', 6, 6, ()),
    ('try_make_timestamp_ntz', 6, 6, ()),
    ('to_timestamp_ntz', 1, 1, ()),
    ('dayname', 1, 1, ()),
    ('monthname', 1, 1, ()),
    ('trunc', 2, 2, ()),
    ('current_timezone', 0, 0, ()),
    ('coalesce', 1, -1, ()),
    ('nvl', 2, 2, ('ifnull',)),
    ('nvl2', 3, 3, ()),
    ('nullif', 2, 2, ()),
    ('if', 3, 3, ('iff',)),
    ('isnull', 1, 1, ()),
    ('isnotnull', 1, 1, ()),
    ('equal_null', 2, 2, ()),
    ('nanvl', 2, 2, ()),
    ('zeroifnull', 1, 1, ()),
    ('nullifzero', 1, 1, ()),
    ('typeof', 1, 1, ()),
    ('bigint', 1, 1, ()),
    ('int', 1, 1, ()),
    ('smallint', 1, 1, ()),
    ('tinyint', 1, 1, ()),
    ('double', 1, 1, ()),
    ('float', 1, 1, ()),
    ('boolean', 1, 1, ()),
    ('string', 1, 1, ()),
    ('decimal', 1, 1, ()),
    ('binary', 1, 1, ()),
    ('size', 1, 1, ('cardinality', 'array_size')),
    ('element_at', 2, 2, ()),
    ('try_element_at', 2, 2, ()),
    ('get', 2, 2, ()),
    ('array_contains', 2, 2, ()),
    ('struct', 0, -1, ()),
    ('named_struct', 0, -1, ()),
    ('array', 1, -1, ()),
    ('array_compact', 1, 1, ()),
    ('array_distinct', 1, 1, ()),
    ('array_max', 1, 1, ()),
    ('array_min', 1, 1, ()),
    ('array_sort', 1, 1, ()),
    ('sort_array', 1, 2, ()),
    ('flatten', 1, 1, ()),
    ('array_remove', 2, 2, ()),
    ('array_position', 2, 2, ()),
    ('array_append', 2, 2, ()),
    ('array_prepend', 2, 2, ()),
    ('array_union', 2, 2, ()),
    ('array_intersect', 2, 2, ()),
    ('array_except', 2, 2, ()),
    ('arrays_overlap', 2, 2, ()),
    ('slice', 3, 3, ()),
    ('array_repeat', 2, 2, ()),
    ('array_join', 2, 3, ()),
    ('sequence', 2, 3, ()),
    ('map', 2, -1, ()),
    ('map_keys', 1, 1, ()),
    ('map_values', 1, 1, ()),
    ('map_entries', 1, 1, ()),
    ('map_contains_key', 2, 2, ()),
    ('map_from_arrays', 2, 2, ()),
    ('map_from_entries', 1, 1, ()),
    ('map_concat', 1, -1, ()),
    ('from_json', 2, 3, ()),
    ('get_json_object', 2, 2, ('json_extract_path_text',)),
    ('to_json', 1, 2, ()),
    ('md5', 1, 1, ()),
    ('sha1', 1, 1, ('sha',)),
    ('sha2', 1, 2, ()),
    ('sha256', 1, 1, ()),
    ('xxhash64', 1, -1, ()),
    ('crc32', 1, 1, ()),
    ('hex', 1, 1, ()),
    ('unhex', 1, 1, ()),
    ('explode', 1, 1, ()),
    ('explode_outer', 1, 1, ()),
    ('posexplode', 1, 1, ()),
    ('posexplode_outer', 1, 1, ()),
    ('inline', 1, 1, ()),
    ('inline_outer', 1, 1, ()),
)
# END GENERATED

# Aggregates are bound outside the scalar registry (scripts/gen-functions-doc.py AGGREGATES).
_AGGREGATES = ("count", "sum", "avg", "mean", "min", "max", "first", "last", "stddev", "stddev_samp",
               "approx_count_distinct")

# Positions at which a str argument is a literal (a pattern, a format, a unit), not a column
# name, as in pyspark's signatures. Elsewhere a str names a column and other values are literals.
_LITERAL_POSITIONS = {
    "concat_ws": {0}, "regexp_extract": {1}, "regexp_replace": {1, 2}, "regexp_like": {1}, "rlike": {1},
    "regexp": {1}, "locate": {0}, "position": {0}, "instr": {1}, "replace": {1, 2}, "split": {1},
    "lpad": {2}, "rpad": {2}, "startswith": {1}, "endswith": {1}, "starts_with": {1}, "ends_with": {1},
    "contains": {1}, "date_format": {1}, "from_utc_timestamp": {1}, "to_utc_timestamp": {1},
    "date_trunc": {0}, "extract": {0}, "date_part": {0}, "datepart": {0}, "get_json_object": {1},
    "json_extract_path_text": {1}, "element_at": {1}, "try_element_at": {1}, "array_contains": {1},
    "get": {1},
}

_AGGREGATE_CALL = _re.compile(r"\b(" + "|".join(_AGGREGATES) + r")\s*\(", _re.IGNORECASE)
_IDENTIFIER = _re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PATH = _re.compile(r"(?:(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)+`)\.)*(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)+`|\*)\Z")
_LITERAL_WORDS = frozenset(("NULL", "TRUE", "FALSE"))
_TRAILING_ALIAS = _re.compile(r"\s+AS\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s*\Z", _re.IGNORECASE)

__all__ = []


def _arguments(name, args):
    literal_at = _LITERAL_POSITIONS.get(name, ())
    return [to_column(a, strings_are_names=i not in literal_at) for i, a in enumerate(args)]


def _call(sql_name, columns, *, aggregate=False, distinct=False, name=None, window=False, fields=None):
    prefix = "DISTINCT " if distinct else ""

    def render(ctx):
        return f"{sql_name}({prefix}{', '.join(c._sql(ctx) for c in columns)})"

    return Column(render, aggregate=aggregate or any(c._aggregate for c in columns), default_name=name,
                  window=window, fields=fields, opaque=any(c._opaque for c in columns))


def _generated(name, sql_name, min_args, max_args):
    def function(*args):
        if _builtins.len(args) < min_args or (max_args >= 0 and _builtins.len(args) > max_args):
            expected = f"{min_args}" if min_args == max_args else (
                f"at least {min_args}" if max_args < 0 else f"{min_args} to {max_args}")
            raise TypeError(f"{name}() takes {expected} argument(s) in sluice, got {_builtins.len(args)}")
        return _call(sql_name, _arguments(name, args))

    function.__name__ = name
    function.__qualname__ = name
    function.__doc__ = f"sluice SQL's {sql_name}() (docs/functions.md)."
    return function


# SQL's type-named casts (int(x), string(x), ...) are not pyspark functions: reachable as F.int,
# but kept out of `from ... import *`, where `int` and `float` would hide Python's.
_NOT_STARRED = frozenset(("if", "int", "float", "bigint", "smallint", "tinyint", "double", "boolean", "string",
                          "decimal", "binary"))


def _export(name, fn):
    globals()[name] = fn
    if name.isidentifier() and name not in _NOT_STARRED:
        __all__.append(name)


for _name, _min, _max, _aliases in _SCALAR_FUNCTIONS:
    for _n in (_name, *_aliases):
        _export(_n, _generated(_n, _name, _min, _max))


class UnsupportedFunctionError(UnsupportedError, AttributeError):
    """A pyspark function sluice's SQL lacks, refused where it is called; also an AttributeError, as
    pyspark's own module raises for a name it does not have (`except AttributeError` still works)."""


def _unsupported(name, why):
    def function(*args, **kwargs):
        raise UnsupportedFunctionError(f"pyspark.sql.functions.{name}: {why}")

    function.__name__ = name
    return function


# -- references, literals, SQL text ------------------------------------------------------------
def col(col: str) -> Column:  # noqa: A001 (pyspark's names)
    """A column by name (`a`, `s.field`, `t.a` in a join, `*`, `e.*`)."""
    return Column.ref(col)


column = col


def lit(col) -> Column:
    if isinstance(col, Column):
        return col
    return Column.literal(col)


def expr(str: str) -> Column:  # noqa: A002
    """SQL text in sluice's dialect, as is."""
    if not isinstance(str, _builtins.str):
        raise TypeError(f"expr() takes SQL text, not {str!r}")
    text = str.strip()
    if not text:
        raise ValueError("expr(''): no SQL text")
    alias = _TRAILING_ALIAS.search(text)
    name = alias.group(1) if alias else (text if _IDENTIFIER.match(text) else None)
    if alias:
        # Parenthesised: composed later (`s * 10` over `id + 1 AS s`) it stays one operand.
        c = Column.sql(f"({text[:alias.start()].strip()})", aggregate=bool(_AGGREGATE_CALL.search(text)))
        return c.alias(name)
    if name is not None and name.upper() in _LITERAL_WORDS:
        return Column.sql(name.upper())  # NULL, TRUE, FALSE are literals, not column names
    if name is not None:
        return Column.ref(name)
    if _PATH.match(text):  # `e.user_id`, `*`, `e.*`: a reference, so that its name is known
        return Column.ref(text)
    return Column.sql(f"({text})", aggregate=bool(_AGGREGATE_CALL.search(text)))


def when(condition, value) -> Column:
    from .column import _case
    return _case([(to_column(condition), to_column(value, strings_are_names=False))], None)


def asc(col): return to_column(col).asc()  # noqa: E704
def desc(col): return to_column(col).desc()  # noqa: E704
def asc_nulls_first(col): return to_column(col).asc_nulls_first()  # noqa: E704
def asc_nulls_last(col): return to_column(col).asc_nulls_last()  # noqa: E704
def desc_nulls_first(col): return to_column(col).desc_nulls_first()  # noqa: E704
def desc_nulls_last(col): return to_column(col).desc_nulls_last()  # noqa: E704


def broadcast(df):
    """A hint: sluice's stream-static joins already hold the static side in memory (a broadcast)."""
    return df


# -- aggregates --------------------------------------------------------------------------------
def count(col) -> Column:
    if isinstance(col, _builtins.str) and col == "*":
        return Column.sql("count(*)", aggregate=True, opaque=False)
    if isinstance(col, _builtins.int) and not isinstance(col, _builtins.bool):
        return Column.sql("count(*)", aggregate=True, opaque=False)  # count(1): Spark counts every row
    return _call("count", [to_column(col)], aggregate=True)


def count_distinct(col, *cols) -> Column:
    if cols:
        raise UnsupportedError("count_distinct of several columns: sluice's count(DISTINCT ...) takes one "
                               "column; count a struct of them instead: count_distinct(struct(a, b))")
    return _call("count", [to_column(col)], aggregate=True, distinct=True)


countDistinct = count_distinct


def approx_count_distinct(col, rsd=None) -> Column:
    """Exact in sluice, so within any relative error `rsd` asks for."""
    return _call("approx_count_distinct", [to_column(col)], aggregate=True)


approxCountDistinct = approx_count_distinct


def _aggregate(name, sql_name=None):
    def function(col):
        return _call(sql_name or name, [to_column(col)], aggregate=True)

    function.__name__ = name
    return function


sum = _aggregate("sum")  # noqa: A001
avg = _aggregate("avg")
mean = _aggregate("mean", "avg")
min = _aggregate("min")  # noqa: A001
max = _aggregate("max")  # noqa: A001
stddev = _aggregate("stddev")
stddev_samp = _aggregate("stddev_samp")


def first(col, ignorenulls=False) -> Column:
    if ignorenulls:
        raise UnsupportedError("first(col, ignorenulls=True): sluice's first() does not skip nulls")
    return _call("first", [to_column(col)], aggregate=True)


def last(col, ignorenulls=False) -> Column:
    if ignorenulls:
        raise UnsupportedError("last(col, ignorenulls=True): sluice's last() does not skip nulls")
    return _call("last", [to_column(col)], aggregate=True)


# -- event time --------------------------------------------------------------------------------
def _duration_literal(value, what):
    if isinstance(value, Column):
        raise UnsupportedError(f"{what}: the duration must be a str literal such as '10 minutes' in sluice")
    interval_sql(value, what)  # checks it reads as a duration
    return Column.literal(value)


def window(timeColumn, windowDuration, slideDuration=None, startTime=None) -> Column:  # noqa: N803
    args = [to_column(timeColumn), _duration_literal(windowDuration, "window(windowDuration)")]
    if slideDuration is not None or startTime is not None:
        args.append(_duration_literal(slideDuration or windowDuration, "window(slideDuration)"))
    if startTime is not None:
        args.append(_duration_literal(startTime, "window(startTime)"))
    return _call("window", args, name="window", window=True)


def session_window(timeColumn, gapDuration) -> Column:  # noqa: N803
    return _call("session_window", [to_column(timeColumn), _duration_literal(gapDuration, "session_window(gapDuration)")],
                 name="session_window", window=True)


# -- JSON and structs --------------------------------------------------------------------------
def _top_level_names(ddl: str):
    names, depth, start = [], 0, 0
    pieces = []
    for i, ch in enumerate(ddl):
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(ddl[start:i])
            start = i + 1
    pieces.append(ddl[start:])
    for piece in pieces:
        m = _re.match(r"\s*(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*)\s*:?", piece)
        if not m:
            return None
        names.append(m.group(1).strip("`").replace("``", "`"))
    return names


def from_json(col, schema, options=None) -> Column:
    if options:
        raise UnsupportedError(f"from_json(options={options!r}): sluice reads no from_json options")
    fields = None
    if isinstance(schema, StructType):
        ddl, fields = schema._schema_ddl(), schema.names
    elif isinstance(schema, DataType):
        ddl = type_ddl(schema)
    elif isinstance(schema, _builtins.str):
        text = schema.strip()
        inner = _re.fullmatch(r"(?is)struct\s*<(.*)>", text)
        ddl = type_ddl(text)
        fields = _top_level_names(inner.group(1) if inner else text)
    elif isinstance(schema, Column):
        raise UnsupportedError("from_json(schema=Column): the schema must be a DDL string or a StructType in sluice")
    else:
        raise TypeError(f"from_json schema: a DDL string or a StructType, not {schema!r}")
    return _call("from_json", [to_column(col), Column.literal(ddl)], fields=fields)


def to_json(col, options=None) -> Column:
    if options:
        raise UnsupportedError(f"to_json(options={options!r}): sluice's to_json takes no options")
    return _call("to_json", [to_column(col)])


def struct(*cols) -> Column:
    if _builtins.len(cols) == 1 and isinstance(cols[0], (list, tuple)):
        cols = tuple(cols[0])
    columns = [to_column(c) for c in cols]
    names = [c._output_name() for c in columns]
    if all(n is not None for n in names):
        def render(ctx):
            return "named_struct(" + ", ".join(f"{lit_sql(n)}, {c._sql(ctx)}" for n, c in zip(names, columns)) + ")"
        return Column(render, aggregate=any(c._aggregate for c in columns), fields=names,
                      opaque=any(c._opaque for c in columns))
    return _call("struct", columns)


# -- functions whose pyspark signature differs from the SQL call --------------------------------
def _no_format(name, format):  # noqa: A002
    if format is not None:
        raise UnsupportedError(f"{name}(col, format={format!r}): sluice's {name} takes no format argument "
                               "(ISO text only); docs/functions.md")


def to_timestamp(col, format=None) -> Column:  # noqa: A002
    _no_format("to_timestamp", format)
    return _call("to_timestamp", [to_column(col)])


def to_date(col, format=None) -> Column:  # noqa: A002
    _no_format("to_date", format)
    return _call("to_date", [to_column(col)])


def unix_timestamp(timestamp=None, format="yyyy-MM-dd HH:mm:ss") -> Column:  # noqa: A002
    if timestamp is None:
        raise UnsupportedError("unix_timestamp() without a column: sluice's unix_timestamp takes one argument")
    if format != "yyyy-MM-dd HH:mm:ss":
        _no_format("unix_timestamp", format)
    return _call("unix_timestamp", [to_column(timestamp)])


def from_unixtime(timestamp, format="yyyy-MM-dd HH:mm:ss") -> Column:  # noqa: A002
    if format != "yyyy-MM-dd HH:mm:ss":
        _no_format("from_unixtime", format)
    return _call("from_unixtime", [to_column(timestamp)])


def round(col, scale=None) -> Column:  # noqa: A001
    return _call("round", [to_column(col)] + ([] if scale is None else [to_column(scale, strings_are_names=False)]))


def bround(col, scale=None) -> Column:
    return _call("bround", [to_column(col)] + ([] if scale is None else [to_column(scale, strings_are_names=False)]))


def split(str, pattern, limit=-1) -> Column:  # noqa: A002
    if limit != -1:
        raise UnsupportedError(f"split(limit={limit}): sluice's split takes no limit")
    return _call("split", _arguments("split", (str, pattern)))


def trim(col, trim=None) -> Column:
    if trim is not None:
        raise UnsupportedError("trim(col, trim=...): sluice's trim removes spaces only")
    return _call("trim", [to_column(col)])


def log(arg1, arg2=None) -> Column:
    """log(col) is the natural logarithm; log(base, col) as in pyspark."""
    if arg2 is None:
        return _call("ln", [to_column(arg1)])
    return _call("log", [to_column(arg1, strings_are_names=False), to_column(arg2)])


def substring(str, pos, len) -> Column:  # noqa: A002
    return _call("substring", [to_column(str), to_column(pos, strings_are_names=False),
                               to_column(len, strings_are_names=False)])


def locate(substr, str, pos=None) -> Column:  # noqa: A002
    args = [Column.literal(substr) if isinstance(substr, _builtins.str) else to_column(substr), to_column(str)]
    if pos is not None:
        args.append(to_column(pos, strings_are_names=False))
    return _call("locate", args)


def concat_ws(sep, *cols) -> Column:
    if not cols:
        raise TypeError("concat_ws() takes at least 2 argument(s) in sluice, got 1")
    return _call("concat_ws", [Column.literal(sep)] + [to_column(c) for c in cols])


def regexp_extract(str, pattern, idx) -> Column:  # noqa: A002
    return _call("regexp_extract", [to_column(str), Column.literal(pattern), to_column(idx, strings_are_names=False)])


def date_trunc(format, timestamp) -> Column:  # noqa: A002
    return _call("date_trunc", [Column.literal(format), to_column(timestamp)])


for _n in ("col", "column", "lit", "expr", "when", "asc", "desc", "asc_nulls_first", "asc_nulls_last",
           "desc_nulls_first", "desc_nulls_last", "broadcast", "count", "count_distinct", "countDistinct",
           "approx_count_distinct", "approxCountDistinct", "sum", "avg", "mean", "min", "max", "stddev",
           "stddev_samp", "first", "last", "window", "session_window", "from_json", "to_json", "struct",
           "to_timestamp", "to_date", "unix_timestamp", "from_unixtime", "round", "bround", "split", "trim",
           "log", "substring", "locate", "concat_ws", "regexp_extract", "date_trunc"):
    if _n not in __all__:
        __all__.append(_n)

_WHY = {
    "udf": "Python UDFs would put Python in the per-record path; sluice runs SQL only",
    "pandas_udf": "Python UDFs would put Python in the per-record path; sluice runs SQL only",
    "collect_list": "sluice's SQL has no collect_list aggregate yet",
    "collect_set": "sluice's SQL has no collect_set aggregate yet",
    "row_number": "sluice's SQL has no window functions over partitions (OVER)",
    "rank": "sluice's SQL has no window functions over partitions (OVER)",
    "dense_rank": "sluice's SQL has no window functions over partitions (OVER)",
    "lag": "sluice's SQL has no window functions over partitions (OVER)",
    "lead": "sluice's SQL has no window functions over partitions (OVER)",
}


def __getattr__(name):
    """A pyspark function sluice does not implement: importable, refused where it is called."""
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name in globals():  # a supported name, also when a shim calls this function directly
        return globals()[name]
    why = _WHY.get(name, f"sluice's SQL does not implement {name} (docs/functions.md lists what it runs)")
    return _unsupported(name, why)


def _table_from_binary(binary):
    import json
    import subprocess
    out = subprocess.run([binary, "functions"], capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return tuple((r["name"], r["min_args"], r["max_args"], tuple(r["aliases"])) for r in rows)


if __name__ == "__main__":
    import os
    import pathlib
    import sys
    if sys.argv[1:] != ["--table"]:
        sys.exit("usage: python3 -m sluice._define.functions --table")
    default = pathlib.Path(__file__).resolve().parents[3] / "build" / "sluice"
    for row in _table_from_binary(os.environ.get("SLUICE_BIN", _builtins.str(default))):
        print(f"    {row!r},")
