"""pyspark.sql.Column for pipelines: an expression that renders itself as sluice SQL text.

A Column is a function from a rendering context to SQL text, so that the DataFrame that uses it
can qualify references (`left.id` in a join), or put an aggregate in place of its output name
(a filter after groupBy().agg() becomes HAVING count(*) > 1). Nothing is evaluated in Python."""
from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import math
import re
import sys

from .types import quote_identifier, type_ddl

__all__ = ["Column", "UnsupportedError", "TooDeepError", "name_ref", "lit_sql", "to_column", "column_name"]


class UnsupportedError(NotImplementedError):
    """A DataFrame method, argument or function that sluice's SQL cannot honour. Raised while
    the pipeline is defined, never deferred to a run."""


class TooDeepError(UnsupportedError):
    """An expression nested more deeply than Python renders (a sum of ~1,000 terms built one `+` at
    a time); DataFrame methods add their name (dataframe._named_refusals)."""

    def __init__(self, call=None):
        self.call = call
        where = f"{call}: " if call else ""
        super().__init__(
            f"{where}an expression nested more deeply than Python's recursion limit "
            f"({sys.getrecursionlimit()} frames) cannot be rendered; build long sums with fewer levels "
            "(e.g. F.expr('a + b + ...')) or compute the parts in earlier columns")


class RenderContext:
    """frames: id of a DataFrame -> the alias its columns are qualified with (joins);
    names: lower-cased output name -> the SQL it stands for (a projection or aggregation the
    Column is composed with); fields: whether `name.field` is the field of such an output too
    (not after an aggregation, where `window.start` is read as is)."""

    __slots__ = ("frames", "names", "fields", "uses")

    def __init__(self, frames=None, names=None, fields=False):
        self.frames = frames or {}
        self.names = names or {}
        self.fields = fields
        self.uses = {}             # output name -> how often a rendering put its SQL in place


EMPTY_CONTEXT = RenderContext()


def split_name(name: str) -> list[str]:
    """`a.b` -> [a, b]; backquotes keep dots: "`a.b`.c" -> [a.b, c]."""
    parts, current, quoted, i = [], "", False, 0
    while i < len(name):
        c = name[i]
        if c == "`":
            if quoted and i + 1 < len(name) and name[i + 1] == "`":
                current += "`"
                i += 2
                continue
            quoted = not quoted
        elif c == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += c
        i += 1
    if quoted:
        raise ValueError(f"column name {name!r} has an unclosed backquote")
    parts.append(current)
    if any(p == "" for p in parts):
        raise ValueError(f"column name {name!r} has an empty part")
    return parts


def quote_path(name: str) -> str:
    parts = split_name(name)
    return ".".join("*" if p == "*" and i == len(parts) - 1 else quote_identifier(p) for i, p in enumerate(parts))


def lit_sql(value) -> str:
    """A Python value as a sluice SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "CAST('NaN' AS DOUBLE)"
        if math.isinf(value):
            return "CAST('Infinity' AS DOUBLE)" if value > 0 else "CAST('-Infinity' AS DOUBLE)"
        text = repr(value)
        # A DOUBLE literal (a bare 1.5 is a DECIMAL in Spark's SQL, a float in pyspark's lit).
        return f"CAST({text} AS DOUBLE)" if "e" not in text and "E" not in text else text
    if isinstance(value, _decimal.Decimal):
        if not value.is_finite():
            raise UnsupportedError(f"lit({value!r}): a DECIMAL cannot hold {value}")
        return _decimal_literal(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, _dt.datetime):
        # pyspark's lit(datetime) is a TIMESTAMP; sluice's session time zone is UTC.
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, _dt.date):
        return f"DATE '{value.isoformat()}'"
    raise UnsupportedError(f"lit({value!r}): sluice's SQL has no literal of Python type {type(value).__name__}")


def _decimal_literal(value) -> str:
    """pyspark's lit(Decimal) is a DECIMAL typed as Spark types a java.math.BigDecimal: scale = the
    digits after the point (0 when the exponent is positive: 1E+2 is 100), precision = the digits of
    the unscaled value, at least the scale (0.05 is DECIMAL(2,2))."""
    sign, digits, exponent = value.as_tuple()
    scale = max(-exponent, 0)
    unscaled = 1 if not any(digits) else len(digits) + max(exponent, 0)
    precision = max(unscaled, scale, 1)
    if precision > 38:
        raise UnsupportedError(f"lit({value!r}): {precision} digits; a DECIMAL holds at most 38")
    return f"CAST('{format(value, 'f')}' AS DECIMAL({precision},{scale}))"


def name_ref(name: str, frame=None) -> "Column":
    """A reference to a column by its whole name, as tracked (`a.b` is one column named so, not the
    field b of a)."""
    return Column.ref("`" + name.replace("`", "``") + "`", frame=frame)


def to_column(value, *, strings_are_names=True) -> "Column":
    """A Column as pyspark reads a ColumnOrName argument (a str names a column), or a literal."""
    if isinstance(value, Column):
        return value
    if isinstance(value, str) and strings_are_names:
        return Column.ref(value)
    if isinstance(value, (list, tuple, set, dict)):
        raise TypeError(f"expected a Column, a column name or a literal, not {type(value).__name__} {value!r}")
    return Column.literal(value)


def column_name(value, own=None, method="this method") -> str:
    """The column a str or a plain column reference names (drop, withWatermark, dropDuplicates).
    A reference qualified by another DataFrame (`r.id` after a join, `df["x"]`) names the column of
    that DataFrame, which a bare name cannot say: refused unless it is `own`'s."""
    if isinstance(value, str):
        return value
    if isinstance(value, Column) and value._ref is not None and value._alias is None:
        if value._frame is not None and value._frame != own:
            raise UnsupportedError(
                f"DataFrame.{method}({value._ref!r} of another DataFrame): a column qualified by a join side "
                "cannot be told from the other side's column of that name here; select the columns to keep "
                "instead, e.g. joined.select(l['*'], r['x'])")
        return value._ref
    raise TypeError(f"expected a column name, not {value!r}")


class Column:
    """An expression. _render(ctx) gives its SQL (without alias); _name its output name when
    known (an alias, or the last part of a column reference); _aggregate whether it holds an
    aggregate; _ref the name it references when it is a plain column reference."""

    __slots__ = ("_render", "_alias", "_ref", "_frame", "_aggregate", "_fields", "_order", "_cases",
                 "_default_name", "_window", "_opaque")

    def __init__(self, render, *, ref=None, frame=None, aggregate=False, fields=None, default_name=None,
                 window=False, opaque=False):
        self._render = render
        self._opaque = opaque          # holds SQL text whose column names cannot be rewritten (F.expr)
        self._alias = None
        self._ref = ref
        self._frame = frame
        self._aggregate = aggregate
        self._fields = fields          # known struct field names (from_json of a known schema, struct())
        self._order = None             # 'ASC NULLS FIRST' etc. for sort expressions
        self._cases = None             # [(cond, value)] of an open CASE built by when()
        self._default_name = default_name
        self._window = window

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def ref(cls, name: str, frame=None) -> "Column":
        if not isinstance(name, str) or not name:
            raise TypeError(f"a column name is a non-empty str, not {name!r}")
        text = quote_path(name)  # checks the name

        def render(ctx):
            if frame is not None and ctx.frames.get(frame) is not None:
                return ctx.frames[frame] + "." + text
            replaced = ctx.names.get(key)
            if replaced is not None:
                ctx.uses[key] = ctx.uses.get(key, 0) + 1
                return replaced
            if ctx.fields and len(parts) > 1 and parts[-1] != "*":
                base = ctx.names.get(parts[0].lower())
                if base is not None:
                    ctx.uses[parts[0].lower()] = ctx.uses.get(parts[0].lower(), 0) + 1
                    return f"({base})." + ".".join(quote_identifier(p) for p in parts[1:])
            return text

        parts = split_name(name)
        key = parts[0].lower() if len(parts) == 1 else name.lower()  # "`a.b`" is the output named a.b
        return cls(render, ref=name, frame=frame, default_name=None if parts[-1] == "*" else parts[-1])

    @classmethod
    def literal(cls, value) -> "Column":
        text = lit_sql(value)
        return cls(lambda ctx: text, default_name=None)

    @classmethod
    def sql(cls, text: str, *, aggregate=False, name=None, opaque=True) -> "Column":
        return cls(lambda ctx: text, aggregate=aggregate, default_name=name, opaque=opaque)

    def _derive(self, render, *, others=(), aggregate=None, fields=None, name=None, window=False) -> "Column":
        parts = (self, *others)
        return Column(render, aggregate=any(p._aggregate for p in parts) if aggregate is None else aggregate,
                      fields=fields, default_name=name, window=window, opaque=any(p._opaque for p in parts))

    def _copy(self) -> "Column":
        c = Column(self._render, ref=self._ref, frame=self._frame, aggregate=self._aggregate, fields=self._fields,
                   default_name=self._default_name, window=self._window, opaque=self._opaque)
        c._alias, c._order, c._cases = self._alias, self._order, self._cases
        return c

    # -- rendering ---------------------------------------------------------------------------
    def _sql(self, ctx: RenderContext = EMPTY_CONTEXT) -> str:
        if self._order is not None:
            raise UnsupportedError(f"{self._render(ctx)} {self._order}: a sort order is only valid in orderBy/sort")
        try:
            return self._render(ctx)
        except RecursionError:
            raise TooDeepError() from None

    def _output_name(self):
        return self._alias if self._alias is not None else self._default_name

    def _item(self, ctx: RenderContext = EMPTY_CONTEXT) -> str:
        """As a SELECT item: the expression and its alias."""
        text = self._sql(ctx)
        if self._alias is not None:
            return f"{text} AS {quote_identifier(self._alias)}"
        if self._ref is not None and self._default_name and "." in self._default_name:
            # sluice names a reference to a column called `a.b` 'b' (it reads a.b as a join side's
            # column): the name is said explicitly.
            return f"{text} AS {quote_identifier(self._default_name)}"
        if self._window and self._default_name:
            # Spark names window(...) 'window' (session_window(...) 'session_window').
            return f"{text} AS {self._default_name}"
        return text

    def _sort_item(self, ctx: RenderContext = EMPTY_CONTEXT) -> str:
        text = self._render(ctx)
        return f"{text} {self._order}" if self._order else text

    def __repr__(self):
        try:
            return f"Column<'{self._item()}'>"
        except Exception:  # noqa: BLE001 (repr must not raise)
            return "Column<?>"

    # -- operators ---------------------------------------------------------------------------
    def _binary(self, other, op, reverse=False):
        other = to_column(other, strings_are_names=False)
        a, b = (other, self) if reverse else (self, other)
        return self._derive(lambda ctx: f"({a._sql(ctx)} {op} {b._sql(ctx)})", others=(other,))

    def __add__(self, o): return self._binary(o, "+")
    def __radd__(self, o): return self._binary(o, "+", True)
    def __sub__(self, o): return self._binary(o, "-")
    def __rsub__(self, o): return self._binary(o, "-", True)
    def __mul__(self, o): return self._binary(o, "*")
    def __rmul__(self, o): return self._binary(o, "*", True)
    def __truediv__(self, o): return self._binary(o, "/")
    def __rtruediv__(self, o): return self._binary(o, "/", True)
    def __mod__(self, o): return self._binary(o, "%")
    def __rmod__(self, o): return self._binary(o, "%", True)
    def __eq__(self, o): return self._binary(o, "=")  # noqa: E704
    def __ne__(self, o): return self._binary(o, "<>")
    def __lt__(self, o): return self._binary(o, "<")
    def __le__(self, o): return self._binary(o, "<=")
    def __gt__(self, o): return self._binary(o, ">")
    def __ge__(self, o): return self._binary(o, ">=")
    def __and__(self, o): return self._binary(o, "AND")
    def __rand__(self, o): return self._binary(o, "AND", True)
    def __or__(self, o): return self._binary(o, "OR")
    def __ror__(self, o): return self._binary(o, "OR", True)

    def __invert__(self):
        return self._derive(lambda ctx: f"(NOT {self._sql(ctx)})")

    def __neg__(self):
        return self._derive(lambda ctx: f"(- {self._sql(ctx)})")

    def __pow__(self, o):
        o = to_column(o, strings_are_names=False)
        return self._derive(lambda ctx: f"pow({self._sql(ctx)}, {o._sql(ctx)})", others=(o,))

    def __rpow__(self, o):
        o = to_column(o, strings_are_names=False)
        return self._derive(lambda ctx: f"pow({o._sql(ctx)}, {self._sql(ctx)})", others=(o,))

    __hash__ = None

    def __bool__(self):
        raise ValueError("Cannot convert column into bool: use '&' for 'and', '|' for 'or', '~' for 'not' "
                         "when building DataFrame boolean expressions")

    def __iter__(self):
        raise TypeError("Column is not iterable")

    def __contains__(self, item):
        raise ValueError("Cannot apply 'in' operator against a column: use 'contains' in a string column "
                         "or 'array_contains' function for an array column")

    def eqNullSafe(self, other):  # noqa: N802
        other = to_column(other, strings_are_names=False)
        return self._derive(lambda ctx: f"equal_null({self._sql(ctx)}, {other._sql(ctx)})", others=(other,))

    # -- names -------------------------------------------------------------------------------
    def alias(self, *names, **kwargs):
        if kwargs.get("metadata") is not None:
            raise UnsupportedError("Column.alias(metadata=...): sluice keeps no column metadata")
        if len(names) != 1 or not isinstance(names[0], str) or not names[0]:
            raise UnsupportedError(f"Column.alias{names!r}: one name (multi-name aliases of generators are not "
                                   "supported: sluice has no explode/posexplode)")
        c = self._copy()
        c._alias = names[0]
        c._window = False
        return c

    name = alias

    def cast(self, dataType):  # noqa: N803
        ddl = type_ddl(dataType)
        return self._derive(lambda ctx: f"CAST({self._sql(ctx)} AS {ddl})", name=self._default_name)

    astype = cast

    def try_cast(self, dataType):  # noqa: N803
        ddl = type_ddl(dataType)
        return self._derive(lambda ctx: f"TRY_CAST({self._sql(ctx)} AS {ddl})", name=self._default_name)

    # -- predicates --------------------------------------------------------------------------
    def isNull(self):  # noqa: N802
        return self._derive(lambda ctx: f"({self._sql(ctx)} IS NULL)")

    def isNotNull(self):  # noqa: N802
        return self._derive(lambda ctx: f"({self._sql(ctx)} IS NOT NULL)")

    def isNaN(self):  # noqa: N802
        raise UnsupportedError("Column.isNaN: sluice's SQL has no isnan(); nanvl(x, y) replaces NaN")

    def isin(self, *values):
        if len(values) == 1 and isinstance(values[0], (list, tuple, set)):
            values = tuple(values[0])
        if not values:
            raise UnsupportedError("Column.isin() with no values: sluice's SQL has no empty IN list")
        items = [to_column(v, strings_are_names=False) for v in values]
        return self._derive(lambda ctx: f"({self._sql(ctx)} IN ({', '.join(i._sql(ctx) for i in items)}))",
                            others=items)

    def between(self, lowerBound, upperBound):  # noqa: N803
        lo = to_column(lowerBound, strings_are_names=False)
        hi = to_column(upperBound, strings_are_names=False)
        return self._derive(lambda ctx: f"({self._sql(ctx)} BETWEEN {lo._sql(ctx)} AND {hi._sql(ctx)})",
                            others=(lo, hi))

    def _pattern(self, op, other):
        if not isinstance(other, str):
            raise UnsupportedError(f"Column.{op.lower()}({other!r}): the pattern must be a str literal in sluice")
        text = lit_sql(other)
        return self._derive(lambda ctx: f"({self._sql(ctx)} {op} {text})")

    def like(self, other):
        return self._pattern("LIKE", other)

    def ilike(self, other):
        return self._pattern("ILIKE", other)

    def rlike(self, other):
        return self._pattern("RLIKE", other)

    def _call_literal(self, fn, other):
        if isinstance(other, Column):
            raise UnsupportedError(f"Column.{fn}(Column): sluice's {fn} takes a literal as its second argument")
        text = lit_sql(other)
        return self._derive(lambda ctx: f"{fn}({self._sql(ctx)}, {text})")

    def contains(self, other):
        return self._call_literal("contains", other)

    def startswith(self, other):
        return self._call_literal("startswith", other)

    def endswith(self, other):
        return self._call_literal("endswith", other)

    def substr(self, startPos, length=None):  # noqa: N803
        if length is None or isinstance(startPos, Column) or isinstance(length, Column):
            raise UnsupportedError("Column.substr(start, length): both must be int literals in sluice")
        return self._derive(lambda ctx: f"substring({self._sql(ctx)}, {int(startPos)}, {int(length)})")

    # -- nested values -----------------------------------------------------------------------
    def getField(self, name):  # noqa: N802
        if not isinstance(name, str):
            raise TypeError(f"getField takes a field name, not {name!r}")
        field = quote_identifier(name)
        if self._ref is not None and self._alias is None and self._frame is None:
            return Column.ref(self._ref + "." + quote_identifier(name) if not name.isidentifier()
                              else self._ref + "." + name)
        return self._derive(lambda ctx: f"({self._sql(ctx)}).{field}", name=name)

    def getItem(self, key):  # noqa: N802
        if isinstance(key, str):
            return self.getField(key)
        k = to_column(key, strings_are_names=False)
        return self._derive(lambda ctx: f"{self._sql(ctx)}[{k._sql(ctx)}]", others=(k,))

    def __getitem__(self, key):
        if isinstance(key, slice):
            if key.step is not None:
                raise UnsupportedError("Column[a:b:step]: no step")
            return self.substr(key.start, key.stop)
        return self.getItem(key)

    def __getattr__(self, item):
        if item.startswith("_"):
            raise AttributeError(item)
        return self.getField(item)

    def __call__(self, *args, **kwargs):
        name = self._default_name or "?"
        raise TypeError(f"'Column' object is not callable: '{name}' is no Column method, so it was read as the "
                        f"struct field '{name}' (see the supported methods in README, \"DataFrames and "
                        "pyspark.sql.functions in Python pipelines\")")

    # -- sort orders -------------------------------------------------------------------------
    def _sorted(self, order):
        c = self._copy()
        c._order = order
        return c

    def asc(self): return self._sorted("ASC")
    def desc(self): return self._sorted("DESC")
    def asc_nulls_first(self): return self._sorted("ASC NULLS FIRST")
    def asc_nulls_last(self): return self._sorted("ASC NULLS LAST")
    def desc_nulls_first(self): return self._sorted("DESC NULLS FIRST")
    def desc_nulls_last(self): return self._sorted("DESC NULLS LAST")

    # -- CASE --------------------------------------------------------------------------------
    def when(self, condition, value):
        if self._cases is None:
            raise UnsupportedError("Column.when() applies to a column built by functions.when(); start with F.when")
        return _case(self._cases + [(to_column(condition), to_column(value, strings_are_names=False))], None)

    def otherwise(self, value):
        if self._cases is None:
            raise UnsupportedError("Column.otherwise() applies to a column built by functions.when()")
        c = _case(self._cases, to_column(value, strings_are_names=False))
        c._cases = None  # closed: a further when/otherwise is an error, as in Spark
        return c

    def over(self, window=None):
        raise UnsupportedError("Column.over(): sluice's SQL has no window functions over partitions "
                               "(OVER); event-time windows are groupBy(F.window(...))")

    def dropFields(self, *names):  # noqa: N802
        raise UnsupportedError("Column.dropFields: sluice's SQL cannot drop struct fields")

    def withField(self, *args):  # noqa: N802
        raise UnsupportedError("Column.withField: sluice's SQL cannot replace struct fields")


def _case(cases, default):
    def render(ctx):
        parts = ["CASE"]
        for cond, value in cases:
            parts.append(f"WHEN {cond._sql(ctx)} THEN {value._sql(ctx)}")
        if default is not None:
            parts.append(f"ELSE {default._sql(ctx)}")
        parts.append("END")
        return " ".join(parts)

    parts = [x for pair in cases for x in pair] + ([default] if default is not None else [])
    c = Column(render, aggregate=any(p._aggregate for p in parts), opaque=any(p._opaque for p in parts))
    c._cases = list(cases)
    return c


_INTERVAL_UNITS = {
    "microsecond": "MICROSECOND", "millisecond": "MILLISECOND", "second": "SECOND", "minute": "MINUTE",
    "hour": "HOUR", "day": "DAY", "week": "WEEK",
}


def interval_sql(text: str, what: str) -> str:
    """'10 minutes' / '1 hour 30 minutes' -> INTERVAL 10 MINUTES / INTERVAL 1 HOUR 30 MINUTES."""
    if not isinstance(text, str):
        raise TypeError(f"{what}: a delay is a str such as '10 minutes', not {text!r}")
    t = text.strip()
    if t.lower().startswith("interval "):
        t = t[len("interval "):].strip().strip("'")
    pairs = re.findall(r"(\d+)\s*([A-Za-z]+)", t)
    if not pairs or re.sub(r"(\d+)\s*([A-Za-z]+)", "", t).strip():
        raise ValueError(f"{what}: cannot read {text!r} as a duration (write e.g. '10 minutes', '1 hour 30 seconds')")
    out = []
    for amount, unit in pairs:
        u = unit.lower().rstrip("s") if unit.lower() not in ("ms", "us") else unit.lower()
        u = {"ms": "millisecond", "us": "microsecond", "sec": "second", "min": "minute", "hr": "hour"}.get(u, u)
        if u not in _INTERVAL_UNITS:
            raise ValueError(f"{what}: unknown unit {unit!r} in {text!r} (seconds, minutes, hours, days, ...)")
        out.append(f"{amount} {_INTERVAL_UNITS[u]}S")
    return "INTERVAL " + " ".join(out)
