"""pyspark's DataFrame for pipelines: each method returns a new DataFrame whose _to_sql() is one
SELECT in sluice's SQL meaning the same thing. Python only builds the text; the C++ engine plans
and runs it like any SQL dataset (docs/decisions.md, "(df)").

A DataFrame is one SELECT under construction: a FROM (a relation, a join, or a subquery), an
optional WATERMARK on it, a projection, WHERE, GROUP BY/HAVING, DISTINCT, then the query's ORDER BY
and LIMIT. A method that fits the SELECT at hand extends it; one that needs the result of the
SELECT (a filter on a computed column) wraps it as a subquery. sluice's SQL does not read from a
subquery that aggregates, deduplicates, orders or limits, so after those a method must fit into
the same SELECT (a filter after an aggregation is a HAVING, a select after it a projection of its
outputs) or is refused with an error naming it."""
from __future__ import annotations

import itertools
import re

from .column import (Column, RenderContext, TooDeepError, UnsupportedError, column_name, interval_sql,
                     name_ref, quote_path, split_name, to_column)
from .sqltext import replace_names, user_sql
from .types import quote_identifier

__all__ = ["DataFrame", "GroupedData", "UnsupportedError"]

_ids = itertools.count(1)
# Words that make an SQL-text column not row-wise (kept out of the sides of a union).
_NOT_ROW_WISE = re.compile(r"\b(over|explode|explode_outer|posexplode|posexplode_outer|inline|inline_outer|stack|"
                           r"distinct)\b", re.IGNORECASE)
_COSTLY = re.compile(r"\b(from_json|to_json|get_json_object|json_extract_path_text|regexp_\w+|rlike|split|"
                     r"sha\w*|md5|xxhash64)\s*\(", re.IGNORECASE)

_JOIN_TYPES = {
    "inner": "JOIN",
    "left": "LEFT JOIN", "leftouter": "LEFT JOIN", "left_outer": "LEFT JOIN",
    "right": "RIGHT JOIN", "rightouter": "RIGHT JOIN", "right_outer": "RIGHT JOIN",
    "full": "FULL JOIN", "outer": "FULL JOIN", "fullouter": "FULL JOIN", "full_outer": "FULL JOIN",
    "left_semi": "LEFT SEMI JOIN", "leftsemi": "LEFT SEMI JOIN", "semi": "LEFT SEMI JOIN",
    "left_anti": "LEFT ANTI JOIN", "leftanti": "LEFT ANTI JOIN", "anti": "LEFT ANTI JOIN",
}

# DataFrame methods of pyspark that a pipeline definition cannot honour: refused by name rather
# than read as a column (df.fillna would otherwise be the column `fillna`).
_REFUSED = {
    "collect": "a pipeline defines datasets; sluice runs them (read a table with sluice.read_table)",
    "show": "a pipeline defines datasets; sluice runs them (read a table with sluice.read_table)",
    "take": "a pipeline defines datasets; sluice runs them", "head": "a pipeline defines datasets; sluice runs them",
    "first": "a pipeline defines datasets; sluice runs them", "toPandas": "a pipeline defines datasets; sluice runs them",
    "count": "a pipeline defines datasets; sluice runs them (groupBy().count() counts per group)",
    "write": "a dataset's rows are written by sluice: return the DataFrame from the @dlt.table function",
    "writeStream": "a dataset's rows are written by sluice: return the DataFrame from the @dlt.table function",
    "foreach": "no Python in the per-record path", "foreachBatch": "no Python in the per-record path",
    "foreachPartition": "no Python in the per-record path", "mapInPandas": "no Python in the per-record path",
    "mapInArrow": "no Python in the per-record path", "rdd": "no Python in the per-record path",
    "schema": "the schema is known when sluice plans the pipeline (sluice validate), not while Python defines it",
    "printSchema": "the schema is known when sluice plans the pipeline (sluice validate), not while Python defines it",
    "dtypes": "the schema is known when sluice plans the pipeline (sluice validate), not while Python defines it",
    "cache": "sluice plans its own storage of intermediate results", "persist": "sluice plans its own storage",
    "repartition": "sluice plans its own parallelism; use partition_cols/cluster_by on the table",
    "coalesce": "sluice plans its own parallelism", "repartitionByRange": "sluice plans its own parallelism",
    "sortWithinPartitions": "sluice plans its own parallelism",
    "fillna": "not in sluice's DataFrame layer yet: withColumn(c, F.coalesce(c, F.lit(v)))",
    "dropna": "not in sluice's DataFrame layer yet: filter(F.col(c).isNotNull())",
    "na": "not in sluice's DataFrame layer yet", "replace": "not in sluice's DataFrame layer yet",
    "pivot": "sluice's SQL has no PIVOT", "unpivot": "sluice's SQL has no UNPIVOT", "melt": "sluice's SQL has no UNPIVOT",
    "intersect": "sluice's SQL has no INTERSECT", "intersectAll": "sluice's SQL has no INTERSECT",
    "subtract": "sluice's SQL has no EXCEPT of queries", "exceptAll": "sluice's SQL has no EXCEPT of queries",
    "sample": "sluice's SQL has no TABLESAMPLE",
    "randomSplit": "sluice's SQL has no TABLESAMPLE", "explain": "use `sluice graph` or `sluice validate`",
    "createOrReplaceTempView": "define a view with @dlt.view instead",
    "createTempView": "define a view with @dlt.view instead", "rollup": "sluice's SQL has no ROLLUP",
    "cube": "sluice's SQL has no CUBE", "groupingSets": "sluice's SQL has no GROUPING SETS",
    "observe": "sluice reports rows per flow in its event log", "checkpoint": "sluice keeps its own state",
    "localCheckpoint": "sluice keeps its own state", "offset": "sluice's SQL has no OFFSET",
    "tail": "a pipeline defines datasets; sluice runs them", "describe": "a pipeline defines datasets",
    "summary": "a pipeline defines datasets",
}


def _flatten(cols):
    if len(cols) == 1 and isinstance(cols[0], (list, tuple)):
        return list(cols[0])
    return list(cols)


class _Select:
    """One SELECT. items/names: the projection as SQL text and output names (None: `*`);
    ctx: how Columns render against the FROM (a join's sides)."""

    __slots__ = ("source", "alias", "watermark", "items", "where", "aggregated", "group_by", "having",
                 "distinct", "distinct_on", "ctx", "outputs", "is_join", "origins")

    def __init__(self, source):
        self.source = source
        self.alias = None
        self.watermark = None      # (column name, INTERVAL ...)
        self.items = None
        self.where = []
        self.aggregated = False
        self.group_by = []
        self.having = []
        self.distinct = False
        self.distinct_on = None
        self.ctx = RenderContext()
        self.outputs = None        # lower-cased output name -> its SQL, when every item is named
        self.is_join = False
        self.origins = None        # a join's columns by side: [(DataFrame id, [names])], when known

    def copy(self):
        s = _Select(self.source)
        for k in self.__slots__:
            v = getattr(self, k)
            setattr(s, k, list(v) if isinstance(v, list) else v)
        return s

    def render(self, with_watermark=True):
        head = "SELECT"
        if self.distinct_on is not None:
            head += " DISTINCT ON (" + ", ".join(self.distinct_on) + ")"
        elif self.distinct:
            head += " DISTINCT"
        parts = [head, ", ".join(self.items) if self.items is not None else "*", "FROM", self.source]
        if self.watermark is not None and with_watermark:
            parts.append(f"WATERMARK {quote_path(self.watermark[0])} DELAY OF {self.watermark[1]}")
        if self.alias is not None:
            parts.append("AS " + quote_identifier(self.alias))
        if self.where:
            parts.append("WHERE " + " AND ".join(self.where))
        if self.group_by:
            parts.append("GROUP BY " + ", ".join(self.group_by))
        if self.having:
            parts.append("HAVING " + " AND ".join(self.having))
        return " ".join(parts)


class DataFrame:
    """pyspark.sql.DataFrame as a pipeline uses it. Immutable: every method returns a new one."""

    def __init__(self, select, *, streaming, columns, structs=None, union=None, order=None, limit=None,
                 branches=None):
        self._sel = select
        self._streaming = streaming
        self._columns = list(columns) if columns is not None else None
        self._structs = dict(structs or {})   # lower-cased column name -> its struct's field names
        self._union = union                   # "A UNION ALL B" when this is a union
        self._branches = branches             # its DataFrames A, B, ... (a step after it goes into each)
        self._order = order or []
        self._limit = limit
        self._id = next(_ids)

    # -- the contract with the definer (python/sluice/_define) ------------------------------------
    @classmethod
    def _from_relation(cls, relation: str, *, streaming: bool, columns: list[str] | None = None) -> "DataFrame":
        """relation: SQL text valid after FROM in sluice's dialect, e.g. `STREAM(events_bronze)`,
        `events_bronze`, `STREAM read_kafka(topic => 't', ...)`, `table_changes('t', 1)`.
        columns: the relation's column names when the caller knows them (None = unknown)."""
        if not isinstance(relation, str) or not relation.strip():
            raise ValueError(f"a relation is SQL text, not {relation!r}")
        return cls(_Select(relation), streaming=bool(streaming), columns=columns)

    def _to_sql(self) -> str:
        """One complete SELECT statement in sluice's SQL (no trailing semicolon) meaning this DataFrame."""
        return self._render(with_watermark=True)

    @property
    def isStreaming(self) -> bool:  # noqa: N802
        return self._streaming

    # -- internals --------------------------------------------------------------------------------
    def _render(self, with_watermark):
        body = self._union if self._union is not None else self._sel.render(with_watermark)
        if self._order:
            body += " ORDER BY " + ", ".join(self._order)
        if self._limit is not None:
            body += f" LIMIT {self._limit}"
        return body

    def _new(self, select=None, **changes):
        fields = dict(streaming=self._streaming, columns=self._columns, structs=self._structs, union=self._union,
                      order=self._order, limit=self._limit, branches=self._branches)
        fields.update(changes)
        return DataFrame(select if select is not None else self._sel.copy(), **fields)

    def _blocker(self):
        """What keeps a method from reading this DataFrame as a subquery (None: nothing)."""
        if self._order:
            return "orderBy/sort"
        if self._limit is not None:
            return "limit"
        if self._sel.aggregated and self._union is None:
            return "groupBy().agg()"
        if (self._sel.distinct or self._sel.distinct_on is not None) and self._union is None:
            return "distinct/dropDuplicates"
        return None

    def _refuse_after(self, method, blocker=None):
        blocker = blocker or self._blocker()
        raise UnsupportedError(
            f"DataFrame.{method} after {blocker}: sluice's SQL does not read from a subquery that aggregates, "
            "deduplicates, orders or limits yet; do this step before it, or define the result as its own "
            "dataset (@dlt.table / @dlt.view) and read that")

    def _wrapped(self, method):
        """This DataFrame as the FROM of a new SELECT; a watermark moves out with it (a projection keeps
        the event-time column's meaning, as in Spark)."""
        if self._blocker() is not None:
            self._refuse_after(method)
        if self._union is not None:
            raise UnsupportedError(
                f"DataFrame.{method} after union: sluice's SQL does not read a UNION ALL as a subquery yet; a "
                "select/filter/withColumn/drop after a union goes into each side when the columns of every side "
                "are known (select them by name first); for anything else define the union as its own dataset "
                "(@dlt.table(temporary=True)) and read that")
        watermark = None
        inner = self
        if self._union is None and self._sel.watermark is not None:
            watermark = self._sel.watermark
            if self._columns is not None and not _has(self._columns, watermark[0]):
                raise UnsupportedError(f"DataFrame.{method}: the watermark column '{watermark[0]}' is not among "
                                       f"the columns {self._columns}; keep it selected")
        sel = _Select("(" + inner._render(with_watermark=False) + ")")
        sel.watermark = watermark
        sel.alias = self._sel.alias if self._union is None else None
        return DataFrame(sel, streaming=self._streaming, columns=self._columns, structs=self._structs)

    def _pushes_into_union(self):
        return self._union is not None and self._branches is not None and not self._order and self._limit is None

    def _per_branch(self, method, step, cols=()):
        """A row-wise step after a union, taken into each side: (A UNION ALL B).filter(c) is
        A.filter(c) UNION ALL B.filter(c), which sluice's SQL says (it reads no UNION ALL as a
        subquery). Only a row-wise step distributes so: an aggregate (sum over the union is not the
        sum of each side's sums, nor a row per side), a window function, a generator or a DISTINCT
        would give another result per side, so those are refused."""
        for c in cols:
            text = None
            if c._opaque:
                text = c._sql(self._branches[0]._ctx()) if self._branches else None
            if c._aggregate or (text is not None and _NOT_ROW_WISE.search(text)):
                raise UnsupportedError(
                    f"DataFrame.{method}({c!r}) after union: the column is not row-wise (an aggregate, window "
                    "function, generator or DISTINCT), so it cannot go into each side of the union as sluice "
                    "does for steps after a union (it would give one result per side); define the union as its "
                    "own dataset (@dlt.table(temporary=True) or @dlt.view) and aggregate that, or aggregate "
                    "each side with groupBy and combine")
        return _union_of([step(b) for b in self._aligned_branches(f"DataFrame.{method} after union")])

    def _aligned_branches(self, what):
        """The sides of this union with the first side's column names (a union is by position: a
        side whose names differ is renamed to them), so a step or an INSERT BY NAME reads the same
        column in each. Needs every side's columns."""
        names = self._branches[0]._columns
        if names is None or any(b._columns is None for b in self._branches):
            raise UnsupportedError(
                f"{what} needs the columns of every side of the union (it applies to each side), which are not "
                "known while the pipeline is defined; select the columns by name on each side first, e.g. "
                "a.select('k', 'v').union(b.select('k', 'v'))")
        aligned = [self._branches[0]]
        for b in self._branches[1:]:
            if len(b._columns) != len(names):
                raise ValueError(f"union: {len(b._columns)} columns {b._columns} against {len(names)} {names}")
            if [c.lower() for c in b._columns] != [n.lower() for n in names]:
                b = b.select(*[name_ref(t) if t == n else name_ref(t).alias(n) for t, n in zip(b._columns, names)])
            aligned.append(b)
        return aligned

    def _projectable(self, method):
        """A DataFrame whose SELECT still has `*` as projection and can take one (else wrapped)."""
        if self._union is None and self._sel.items is None and self._blocker() is None:
            return self._new()
        return self._wrapped(method)

    def _ctx(self):
        return self._sel.ctx

    def _expand(self, c: Column):
        """A select argument -> ([item SQL], [output names or None]) against this DataFrame."""
        ctx = self._ctx()
        if c._ref is not None and c._alias is None and split_name(c._ref)[-1] == "*":
            parts = split_name(c._ref)
            if len(parts) == 1:
                return ["*"], (list(self._columns) if self._columns is not None else [None])
            struct = self._structs.get(".".join(parts[:-1]).lower())
            return [c._item(ctx)], (list(struct) if struct is not None else [None])
        return [c._item(ctx)], [c._output_name()]

    # -- projections ------------------------------------------------------------------------------
    def _composable(self):
        """Whether a projection can be rewritten into this SELECT's (output names replaced by what
        they stand for) instead of reading it as a subquery."""
        return (self._union is None and not self._order and self._limit is None and not self._sel.distinct
                and self._sel.distinct_on is None and self._sel.items is not None and self._sel.outputs is not None)

    def select(self, *cols) -> "DataFrame":
        cols = [to_column(c) for c in _flatten(cols)]
        if not cols:
            raise ValueError("DataFrame.select() needs at least one column")
        if self._pushes_into_union():
            return self._per_branch("select", lambda b: b.select(*cols), cols)
        stars = any(c._ref is not None and c._alias is None and split_name(c._ref)[-1] == "*" for c in cols)
        if self._sel.aggregated and self._union is None:
            return self._reproject("select", cols)
        if self._composable() and not stars and self._composes(cols, in_where=False):
            return self._reproject("select", cols)
        df = self._projectable("select")
        items, names, structs = [], [], {}
        for c in cols:
            if c._order is not None:
                raise UnsupportedError(f"DataFrame.select({c!r}): a sort order belongs in orderBy")
            i, n = df._expand(c)
            items += i
            names += n
            if c._fields is not None and c._output_name():
                structs[c._output_name().lower()] = c._fields
            elif c._ref is not None and c._alias is None and c._output_name():
                known = df._structs.get(c._ref.lower())
                if known is not None:
                    structs[c._output_name().lower()] = known
        df._sel.items = items
        df._columns = None if any(n is None for n in names) else names
        df._structs = structs
        if df._columns is not None and not stars:
            df._sel.outputs = {n.lower(): c._sql(df._ctx()) for n, c in zip(names, cols)}
        return df

    def selectExpr(self, *expr) -> "DataFrame":  # noqa: N802
        from .functions import expr as sql_expr
        return self.select(*[sql_expr(e) for e in _flatten(expr)])

    def _composes(self, cols, in_where):
        """Whether rewriting these Columns over this SELECT's outputs keeps its cost: no opaque SQL
        text (F.expr), and no costly output (a JSON decode, a regular expression) computed twice
        (used twice, or in WHERE and again in the projection)."""
        if any(c._opaque for c in cols):
            return False
        ctx = RenderContext(self._sel.ctx.frames, self._sel.outputs, fields=True)
        for c in cols:
            c._render(ctx)
        for name, n in ctx.uses.items():
            if _COSTLY.search(self._sel.outputs[name]) and (in_where or n > 1):
                return False
        return True

    def _reproject(self, method, cols):
        """A projection of this SELECT's outputs, in the same SELECT: each output name stands for the
        expression it names. After an aggregation this is the only way (sluice's SQL cannot read an
        aggregating subquery); after a projection it saves a level of subquery."""
        if self._order or self._limit is not None or self._sel.distinct or self._sel.distinct_on is not None:
            self._refuse_after(method)
        if self._sel.outputs is None:
            self._known_columns(f"{method} after groupBy().agg()")
        ctx = RenderContext(self._sel.ctx.frames, self._sel.outputs, fields=not self._sel.aggregated)
        items, names, outputs, structs = [], [], {}, {}
        for c in cols:
            if c._ref is not None and c._alias is None and split_name(c._ref)[-1] == "*":
                raise UnsupportedError(f"DataFrame.{method}('{c._ref}') after groupBy().agg(): name the columns")
            if c._order is not None:
                raise UnsupportedError(f"DataFrame.{method}({c!r}): a sort order belongs in orderBy")
            name = c._output_name()
            text = c._sql(ctx)
            items.append(f"{text} AS {quote_identifier(name)}" if name and text != quote_identifier(name)
                         else c._item(ctx))
            names.append(name)
            if name:
                outputs[name.lower()] = text
                if c._fields is not None:
                    structs[name.lower()] = c._fields
                elif c._ref is not None and c._alias is None and c._ref.lower() in self._structs:
                    structs[name.lower()] = self._structs[c._ref.lower()]
                elif c._ref is not None and c._ref.lower() in self._structs:
                    structs[name.lower()] = self._structs[c._ref.lower()]
        df = self._new()
        df._sel.items = items
        df._sel.outputs = outputs if all(n is not None for n in names) else None
        df._columns = None if any(n is None for n in names) else names
        df._structs = structs
        return df

    def withColumns(self, *colsMap) -> "DataFrame":  # noqa: N802, N803
        if len(colsMap) != 1 or not isinstance(colsMap[0], dict):
            raise TypeError("withColumns takes one dict of column name -> Column")
        mapping = colsMap[0]
        for name, c in mapping.items():
            if not isinstance(c, Column):
                raise TypeError(f"withColumns: the value for {name!r} must be a Column, not {c!r}")
        if self._columns is not None:
            cols = []
            for name in self._columns:
                replaced = _find(mapping, name)
                cols.append(mapping[replaced].alias(name) if replaced is not None else name_ref(name))
            cols += [c.alias(n) for n, c in mapping.items() if not _has(self._columns, n)]
            return self.select(*cols)
        if self._sel.aggregated and self._union is None:
            self._known_columns("withColumn after groupBy().agg()")
        df = self._projectable("withColumn")
        # Unknown columns: `*, expr AS name` appends; were `name` already a column, sluice refuses the
        # duplicate name when it plans the dataset (never a silent second column).
        df._sel.items = ["*"] + [c.alias(n)._item(df._ctx()) for n, c in mapping.items()]
        structs = {k: v for k, v in df._structs.items() if _find(mapping, k) is None}
        for name, c in mapping.items():
            if c._fields is not None:
                structs[name.lower()] = c._fields
        df._structs = structs
        return df

    def withColumn(self, colName: str, col: Column) -> "DataFrame":  # noqa: N802, N803
        if not isinstance(colName, str):
            raise TypeError(f"withColumn: the name must be a str, not {colName!r}")
        return self.withColumns({colName: col})

    def withColumnsRenamed(self, colsMap: dict) -> "DataFrame":  # noqa: N802, N803
        if not isinstance(colsMap, dict):
            raise TypeError("withColumnsRenamed takes a dict of existing name -> new name")
        current = self._known_columns("withColumnRenamed")
        if not any(_has(current, k) for k in colsMap):
            return self  # Spark: renaming a column that does not exist is a no-op
        cols = []
        for name in current:
            new = next((colsMap[k] for k in colsMap if k.lower() == name.lower()), None)
            cols.append(name_ref(name).alias(new) if new is not None else name_ref(name))
        return self.select(*cols)

    def withColumnRenamed(self, existing: str, new: str) -> "DataFrame":  # noqa: N802
        return self.withColumnsRenamed({existing: new})

    def toDF(self, *cols) -> "DataFrame":  # noqa: N802
        current = self._known_columns("toDF")
        if len(cols) != len(current):
            raise ValueError(f"toDF: {len(cols)} names for {len(current)} columns {current}")
        return self.select(*[name_ref(old).alias(new) for old, new in zip(current, cols)])

    def drop(self, *cols) -> "DataFrame":
        cols = _flatten(cols)
        sides = self._sides()
        if any(isinstance(c, Column) and c._frame is not None and c._frame in sides for c in cols):
            return self._drop_qualified(cols, sides)
        names = [column_name(c, sides, "drop") for c in cols]
        if self._columns is not None:
            keep = [c for c in self._columns if not _has(names, c)]
            if len(keep) == len(self._columns):
                return self  # Spark: dropping a column that does not exist is a no-op
            if not keep:
                raise UnsupportedError("DataFrame.drop of every column: a dataset needs at least one column")
            return self.select(*[name_ref(c) for c in keep])
        if self._sel.aggregated and self._union is None:
            self._known_columns("drop after groupBy().agg()")
        df = self._projectable("drop")
        # Unknown columns: * EXCEPT (...) — sluice refuses a name that is not a column (Spark ignores it).
        df._sel.items = ["* EXCEPT (" + ", ".join(quote_identifier(n) for n in names) + ")"]
        df._structs = {k: v for k, v in df._structs.items() if not _has(names, k)}
        return df

    def _sides(self):
        """The DataFrames whose columns this one's join holds side by side (empty without a join)."""
        return set(self._sel.ctx.frames) if self._union is None and self._sel.is_join else set()

    def _drop_qualified(self, cols, sides):
        """drop(r.id) after l.join(r, l.id == r.id): the join's columns by side, without r's id (Spark
        keeps l.id). Needs both sides' columns and the join as it is (no projection yet)."""
        origins = self._sel.origins
        known = {fid for fid, _ in origins} if origins is not None else set()
        if self._sel.items is not None or self._blocker() is not None or \
                any(isinstance(c, Column) and c._frame in sides and c._frame not in known for c in cols):
            for c in cols:
                column_name(c, sides, "drop")  # raises: which column of which side is not known here
        dropped = set()
        for c in cols:
            if isinstance(c, Column) and c._frame is not None and c._frame in sides:
                if c._alias is not None or c._ref is None:
                    raise UnsupportedError(f"DataFrame.drop({c!r}): not a column of a side of this join")
                dropped.add((c._frame, c._ref.lower()))
            else:
                dropped.add((None, column_name(c, sides, "drop").lower()))
        keep = [name_ref(n, frame=fid) for fid, names in origins for n in names
                if (fid, n.lower()) not in dropped and (None, n.lower()) not in dropped]
        if not keep:
            raise UnsupportedError("DataFrame.drop of every column: a dataset needs at least one column")
        return self.select(*keep)

    def _known_columns(self, method):
        if self._columns is None:
            raise UnsupportedError(
                f"DataFrame.{method} needs the DataFrame's columns, which are not known while the pipeline is "
                "defined (it reads a dataset, or an expression without an alias); select the columns by name "
                "first, e.g. df.select('a', F.col('b').alias('c'))")
        return self._columns

    @property
    def columns(self) -> list[str]:
        return list(self._known_columns("columns"))

    def alias(self, alias: str) -> "DataFrame":
        if not isinstance(alias, str) or not alias:
            raise TypeError(f"DataFrame.alias takes a name, not {alias!r}")
        if (self._union is None and self._sel.items is None and not self._sel.where and not self._sel.is_join
                and self._blocker() is None):
            df = self._new()
        else:
            df = self._wrapped("alias")
        df._sel.alias = alias
        return df

    # -- rows -------------------------------------------------------------------------------------
    def filter(self, condition) -> "DataFrame":
        if isinstance(condition, str) and self._sel.aggregated and self._union is None and \
                self._sel.outputs is not None and not (self._order or self._limit is not None or self._sel.distinct):
            # SQL text after groupBy().agg(): its names are the aggregation's outputs (Spark filters
            # the aggregated DataFrame); the HAVING says them as the aggregates they name.
            df = self._new()
            df._sel.having.append("(" + replace_names(user_sql(condition), self._sel.outputs) + ")")
            return df
        if isinstance(condition, str):
            condition = Column.sql("(" + condition + ")")
        elif not isinstance(condition, Column):
            raise TypeError(f"filter takes a Column or SQL text, not {condition!r}")
        if self._pushes_into_union():
            return self._per_branch("filter", lambda b: b.filter(condition), [condition])
        if self._sel.aggregated and self._union is None:
            if self._order or self._limit is not None or self._sel.distinct:
                self._refuse_after("filter")
            if condition._opaque:
                raise UnsupportedError(
                    "DataFrame.filter(F.expr(...)) after groupBy().agg(): the condition becomes the HAVING of the "
                    "aggregation, where output names inside F.expr text cannot be replaced by the aggregates "
                    "they name; write it as SQL text, filter('n > 1'), or with Columns, filter(F.col('n') > 1)")
            df = self._new()
            df._sel.having.append(condition._sql(RenderContext(self._sel.ctx.frames, self._sel.outputs or {})))
            return df
        if self._composable() and not self._sel.aggregated and self._composes([condition], in_where=True):
            # WHERE runs before the projection: output names become what they stand for.
            df = self._new()
            df._sel.where.append(condition._sql(RenderContext(self._sel.ctx.frames, self._sel.outputs, fields=True)))
            return df
        if self._union is None and self._sel.items is None and self._blocker() is None:
            df = self._new()
        else:
            df = self._wrapped("filter")
        df._sel.where.append(condition._sql(df._ctx()))
        return df

    where = filter

    def withWatermark(self, eventTime: str, delayThreshold: str) -> "DataFrame":  # noqa: N802, N803
        name = column_name(eventTime, self._sides(), "withWatermark")
        interval = interval_sql(delayThreshold, "withWatermark(delayThreshold)")
        if not self._streaming:
            raise UnsupportedError("DataFrame.withWatermark on a batch DataFrame: a watermark belongs to a stream "
                                   "(dlt.read_stream / spark.readStream)")
        if self._columns is not None and not _has(self._columns, name):
            raise ValueError(f"withWatermark: '{name}' is not a column of {self._columns}")
        if (self._union is None and self._sel.items is None and not self._sel.is_join and self._blocker() is None
                and self._sel.watermark is None):
            df = self._new()
        else:
            df = self._wrapped("withWatermark")
            if df._sel.watermark is not None:
                raise UnsupportedError("DataFrame.withWatermark twice on one stream: sluice keeps one watermark "
                                       "per stream (the first is on column "
                                       f"'{df._sel.watermark[0]}')")
        df._sel.watermark = (name, interval)
        return df

    def _distinct_select(self, method):
        if self._blocker() is not None:
            self._refuse_after(method)
        return self._wrapped(method) if self._union is not None else self._new()

    def distinct(self) -> "DataFrame":
        df = self._distinct_select("distinct")
        df._sel.distinct = True
        return df

    def dropDuplicates(self, subset=None) -> "DataFrame":  # noqa: N802
        if subset is None or (self._columns is not None and all(_has(subset, c) for c in self._columns)):
            return self.distinct()
        subset = [column_name(c, self._sides(), "dropDuplicates") for c in subset]
        if not self._streaming:
            # A materialized view's DISTINCT ON keeps the first row read of each key, whole (Spark
            # keeps one row per key, which one unspecified).
            return self._distinct_on("dropDuplicates", subset)
        wm = self._watermark_of("dropDuplicates")
        if not _has(subset, wm):
            raise UnsupportedError(
                f"DataFrame.dropDuplicates({subset}) on a stream: sluice drops duplicates of a stream within its "
                f"watermark, so the event-time column '{wm}' must be among the subset (Spark would keep every "
                "key forever otherwise); or use dropDuplicatesWithinWatermark")
        return self._distinct_on("dropDuplicates", subset)

    drop_duplicates = dropDuplicates

    def dropDuplicatesWithinWatermark(self, subset=None) -> "DataFrame":  # noqa: N802
        if not self._streaming:
            return self.dropDuplicates(subset)  # Spark: on a batch DataFrame the same as dropDuplicates
        self._watermark_of("dropDuplicatesWithinWatermark")
        if subset is None:
            subset = self._known_columns("dropDuplicatesWithinWatermark() without a subset")
        names = [column_name(c, self._sides(), "dropDuplicatesWithinWatermark") for c in subset]
        return self._distinct_on("dropDuplicatesWithinWatermark", names)

    def _watermark_of(self, method):
        if self._union is None and self._sel.watermark is not None:
            return self._sel.watermark[0]
        raise UnsupportedError(f"DataFrame.{method} on a stream needs withWatermark(...) right before it "
                               "(sluice keeps the seen keys only within the watermark)")

    def _distinct_on(self, method, subset):
        df = self._distinct_select(method)
        if df._sel.items is not None and df._columns is None:
            df = df._wrapped(method)
        df._sel.distinct_on = [quote_identifier(c) for c in subset]
        return df

    def orderBy(self, *cols, ascending=True) -> "DataFrame":  # noqa: N802
        cols = [to_column(c) for c in _flatten(cols)]
        if not cols:
            raise ValueError("orderBy needs at least one column")
        self._refuse_on_stream("orderBy/sort")
        if self._limit is not None:
            raise UnsupportedError("DataFrame.orderBy after limit: sluice's SQL does not sort a limited subquery "
                                   "yet; sort before limit")
        orders = ascending if isinstance(ascending, (list, tuple)) else [ascending] * len(cols)
        if len(orders) != len(cols):
            raise ValueError("orderBy: ascending has a different length than the columns")
        ctx = self._ctx() if self._union is None else RenderContext()
        items = []
        for c, asc in zip(cols, orders):
            if c._order is None and not asc:
                c = c.desc()
            items.append(c._sort_item(ctx))
        return self._new(order=items)

    sort = orderBy

    def _refuse_on_stream(self, method):
        if self._streaming:
            raise UnsupportedError(
                f"DataFrame.{method} on a streaming DataFrame: a streaming table appends rows as they arrive, "
                "never sorted or cut (Spark refuses sorting a stream too); sort or limit where the table is read, "
                "in a materialized view (dlt.read) over it")

    def limit(self, num: int) -> "DataFrame":
        if not isinstance(num, int) or isinstance(num, bool) or num < 0:
            raise ValueError(f"limit takes a non-negative int, not {num!r}")
        self._refuse_on_stream("limit")
        return self._new(limit=num if self._limit is None else min(num, self._limit))

    # -- combining --------------------------------------------------------------------------------
    def union(self, other: "DataFrame") -> "DataFrame":
        if not isinstance(other, DataFrame):
            raise TypeError(f"union takes a DataFrame, not {other!r}")
        if self._streaming != other._streaming:
            raise UnsupportedError(
                "DataFrame.union of a stream and a batch DataFrame: a streaming table's flows each read a "
                "stream, and a materialized view reads snapshots; read both as streams (dlt.read_stream) or "
                "both as batch (dlt.read)")
        for side in (self, other):
            if side._order or side._limit is not None:
                raise UnsupportedError("DataFrame.union of a sorted or limited DataFrame: sluice's SQL does not "
                                       "order or limit inside UNION ALL yet")
        return _union_of(self._union_branches() + other._union_branches())

    def _union_branches(self):
        return list(self._branches) if self._union is not None and self._branches is not None else [self]

    unionAll = union

    def unionByName(self, other: "DataFrame", allowMissingColumns: bool = False) -> "DataFrame":  # noqa: N802, N803
        mine = self._known_columns("unionByName")
        theirs = other._known_columns("unionByName")
        missing_there = [c for c in mine if not _has(theirs, c)]
        missing_here = [c for c in theirs if not _has(mine, c)]
        if (missing_here or missing_there) and not allowMissingColumns:
            raise ValueError(f"unionByName: columns {missing_there or missing_here} are not in both DataFrames "
                             "(allowMissingColumns=True fills them with nulls)")
        from .functions import lit
        if missing_here:
            if missing_there:
                raise UnsupportedError(
                    f"unionByName(allowMissingColumns=True) where each side lacks columns ({missing_here} here, "
                    f"{missing_there} there): sluice's UNION ALL types each column by its first side, where one of "
                    "them would be a NULL of no type; add the columns to one side first, e.g. "
                    "withColumn(name, F.lit(None).cast('double'))")
            # This side lacks columns the other has: the other goes first, so every column is typed by a
            # side that has it (rows do not depend on the order of a UNION ALL's sides). The columns keep
            # Spark's order: this side's, then the other's that this one lacks.
            order = mine + missing_here
            first = other.select(*[name_ref(_find_name(theirs, c)) if _find_name(theirs, c) == c
                                   else name_ref(_find_name(theirs, c)).alias(c) for c in order])
            second = self.select(*[name_ref(c) for c in mine] + [lit(None).alias(c) for c in missing_here])
            return first.union(second)
        left = self
        order = mine
        right = other.select(*[(name_ref(_find_name(theirs, c)) if _find_name(theirs, c) == c
                                else name_ref(_find_name(theirs, c)).alias(c)) if _has(theirs, c)
                               else lit(None).alias(c) for c in order])
        return left.union(right)

    def join(self, other: "DataFrame", on=None, how: str | None = None) -> "DataFrame":
        if not isinstance(other, DataFrame):
            raise TypeError(f"join takes a DataFrame, not {other!r}")
        kind = (how or "inner").lower().replace(" ", "")
        if kind == "cross" or (on is None and kind == "inner"):
            return self.crossJoin(other)
        if on is None:
            raise UnsupportedError(f"DataFrame.join(how={how!r}) without a condition: only an inner join may go "
                                   "without one (a cross join); give the join's columns or condition")
        if kind not in _JOIN_TYPES:
            raise ValueError(f"join: unknown join type {how!r} (inner, left, right, full, left_semi, left_anti)")
        keyword = _JOIN_TYPES[kind]
        if isinstance(on, (str, Column)):
            on = [on]
        on = list(on)
        if not on:
            raise UnsupportedError("DataFrame.join(other, []): no join condition; name the key columns, give a "
                                   "condition, or write a cross join as crossJoin(other)")
        by_name = all(isinstance(o, str) for o in on)
        if not by_name and not all(isinstance(o, Column) for o in on):
            raise TypeError("join: on is column name(s) or Column condition(s), not a mix")

        left_text, frames = self._join_operand("_l", set(), chain=not by_name)
        right_text, right_frames = other._join_operand("_r", {a for a in frames.values() if a}, chain=False)
        la = frames.get(self._id)
        ra = right_frames[other._id]
        frames = dict(frames)
        frames.update(right_frames)
        ctx = RenderContext(frames)
        sel = _Select(f"{left_text} {keyword} {right_text}")
        sel.is_join = True
        sel.ctx = ctx
        columns = None
        if by_name:
            keys = on
            sel.source += " ON " + " AND ".join(f"{la}.{quote_identifier(k)} = {ra}.{quote_identifier(k)}"
                                                for k in keys)
            if keyword in ("LEFT SEMI JOIN", "LEFT ANTI JOIN"):
                columns = self._columns
            else:
                except_ = " EXCEPT (" + ", ".join(quote_identifier(k) for k in keys) + ")"
                items = []
                for k in keys:
                    q = quote_identifier(k)
                    if keyword == "FULL JOIN":
                        items.append(f"coalesce({la}.{q}, {ra}.{q}) AS {q}")
                    else:
                        items.append(f"{ra if keyword == 'RIGHT JOIN' else la}.{q}")
                sel.items = items + [f"{la}.*{except_}", f"{ra}.*{except_}"]
                if self._columns is not None and other._columns is not None:
                    columns = list(keys) + [c for c in self._columns if not _has(keys, c)] + \
                        [c for c in other._columns if not _has(keys, c)]
        else:
            sel.source += " ON " + " AND ".join(o._sql(ctx) for o in on)
            if keyword in ("LEFT SEMI JOIN", "LEFT ANTI JOIN"):
                columns = self._columns
            elif self._columns is not None and other._columns is not None:
                columns = self._columns + other._columns
        if not by_name and keyword not in ("LEFT SEMI JOIN", "LEFT ANTI JOIN") and other._columns is not None:
            chained = self._id in frames and frames[self._id] is None
            left_origins = self._sel.origins if chained else (
                [(self._id, list(self._columns))] if self._columns is not None else None)
            if left_origins is not None:
                sel.origins = left_origins + [(other._id, list(other._columns))]
        structs = dict(other._structs) if keyword not in ("LEFT SEMI JOIN", "LEFT ANTI JOIN") else {}
        structs.update(self._structs)
        return DataFrame(sel, streaming=self._streaming or other._streaming, columns=columns, structs=structs)

    def crossJoin(self, other: "DataFrame") -> "DataFrame":  # noqa: N802
        """Every row of this DataFrame with every row of the other. sluice's joins are hash joins on
        at least one equality, so each side gets the same constant key, joined on and not selected."""
        if not isinstance(other, DataFrame):
            raise TypeError(f"crossJoin takes a DataFrame, not {other!r}")
        if self._streaming and other._streaming:
            raise UnsupportedError("DataFrame.crossJoin of two streams: a stream-stream join needs an equality "
                                   "and a time bound between the sides; join on columns")
        if other._streaming and not self._streaming:
            # sluice's stream-static join reads the stream on the left (its rows probe the static
            # side). A cross join is symmetric, so the stream goes first and the columns are put back
            # in Spark's order, this side's then the other's.
            swapped = other.crossJoin(self)
            stream_items, static_items = swapped._sel.items
            swapped._sel.items = [static_items, stream_items]
            swapped._columns = (list(self._columns) + list(other._columns)
                                if self._columns is not None and other._columns is not None else None)
            return swapped
        from .functions import lit
        key = "_sluice_cross"
        for side in (self, other):
            if side._columns is not None and _has(side._columns, key):
                raise UnsupportedError(f"DataFrame.crossJoin: a side has a column named {key}, the name sluice "
                                       "uses for the join's key")
        joined = self.withColumn(key, lit(1)).join(other.withColumn(key, lit(1)), key)
        joined._sel.items = joined._sel.items[1:]  # the key, once: not part of the result
        if joined._columns is not None:
            joined._columns = joined._columns[1:]
        return joined

    def _join_operand(self, default_alias, taken, chain):
        """(FROM text with its WATERMARK and alias, frames: DataFrame id -> alias) for a side of a join.
        A left side that is itself a join without projection continues that join (a JOIN b JOIN c)."""
        if chain and self._union is None and self._sel.is_join and self._sel.items is None \
                and not self._sel.where and self._blocker() is None and self._sel.alias is None:
            frames = dict(self._sel.ctx.frames)
            frames[self._id] = None
            return self._sel.source, frames
        if self._union is None and self._sel.items is None and not self._sel.where and not self._sel.is_join \
                and self._blocker() is None:
            text, watermark, alias = self._sel.source, self._sel.watermark, self._sel.alias
        else:
            w = self._wrapped("join")
            text, watermark, alias = w._sel.source, w._sel.watermark, w._sel.alias
        if alias is None:
            alias, n = default_alias, 1
            while alias in taken:
                n += 1
                alias = f"{default_alias}{n}"
        if watermark is not None:
            text += f" WATERMARK {quote_path(watermark[0])} DELAY OF {watermark[1]}"
        text += " AS " + quote_identifier(alias)
        return text, {self._id: quote_identifier(alias)}

    # -- grouping ---------------------------------------------------------------------------------
    def groupBy(self, *cols) -> "GroupedData":  # noqa: N802
        return GroupedData(self, [to_column(c) for c in _flatten(cols)])

    groupby = groupBy

    def agg(self, *exprs) -> "DataFrame":
        return self.groupBy().agg(*exprs)

    # -- access -----------------------------------------------------------------------------------
    def __getitem__(self, item):
        if isinstance(item, str):
            return Column.ref(item, frame=self._id)
        if isinstance(item, Column):
            return self.filter(item)
        if isinstance(item, (list, tuple)):
            return self.select(*item)
        raise TypeError(f"DataFrame[{item!r}]: a column name, a condition or a list of columns")

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _REFUSED:
            raise UnsupportedError(f"DataFrame.{name}: {_REFUSED[name]}")
        return Column.ref(name, frame=self._id)

    def col(self, name):
        return Column.ref(name, frame=self._id)

    def hint(self, name, *parameters):
        if str(name).lower() in ("broadcast", "broadcastjoin", "mapjoin"):
            return self  # sluice's stream-static join already holds the static side in memory
        raise UnsupportedError(f"DataFrame.hint({name!r}): sluice knows no such hint")

    def transform(self, func, *args, **kwargs) -> "DataFrame":
        result = func(self, *args, **kwargs)
        if not isinstance(result, DataFrame):
            raise TypeError(f"transform: {func!r} returned {type(result).__name__}, not a DataFrame")
        return result

    def __repr__(self):
        return f"DataFrame<{self._to_sql()}>"


class GroupedData:
    """df.groupBy(...): keys, then agg(...) or a shortcut (count, sum, avg, mean, min, max)."""

    def __init__(self, df: DataFrame, keys: list[Column]):
        self._df = df
        self._keys = keys

    def agg(self, *exprs) -> DataFrame:
        if len(exprs) == 1 and isinstance(exprs[0], dict):
            from . import functions as F
            cols = []
            for name, fn in exprs[0].items():
                fname = {"mean": "avg"}.get(fn, fn)
                if fname not in ("count", "sum", "avg", "min", "max", "first", "last", "stddev",
                                 "approx_count_distinct"):
                    raise UnsupportedError(f"agg({{{name!r}: {fn!r}}}): sluice has no aggregate {fn!r}")
                cols.append(getattr(F, fname)(name))
            exprs = cols
        cols = [c for c in _flatten(exprs)]
        if not cols:
            raise ValueError("agg needs at least one aggregate")
        for c in cols:
            if not isinstance(c, Column):
                raise TypeError(f"agg takes Columns (F.sum('x'), ...) or a dict, not {c!r}")
            if not c._aggregate:
                raise UnsupportedError(f"agg({c!r}): not an aggregate (count, sum, avg, min, max, first, last, "
                                       "stddev, approx_count_distinct)")
        df = self._df
        if df._union is not None or df._sel.items is not None or df._blocker() is not None:
            df = df._wrapped("groupBy")
        else:
            df = df._new()
        ctx = df._ctx()
        items, names, outputs = [], [], {}
        group_by = []
        for k in self._keys:
            if k._aggregate:
                raise UnsupportedError(f"groupBy({k!r}): a key cannot be an aggregate")
            group_by.append(k._sql(ctx))
            items.append(k._item(ctx))
            names.append(k._output_name())
        for c in cols:
            items.append(c._item(ctx))
            names.append(c._output_name())
        for k, n in zip(self._keys + cols, names):
            if n is not None:
                outputs[n.lower()] = k._sql(ctx)
        df._sel.items = items
        df._sel.group_by = group_by
        df._sel.aggregated = True
        df._sel.outputs = outputs
        df._columns = None if any(n is None for n in names) else names
        df._structs = {}
        return df

    def count(self) -> DataFrame:
        return self.agg(Column.sql("count(*)", aggregate=True, opaque=False).alias("count"))

    def _shortcut(self, fn, cols):
        if not cols:
            raise UnsupportedError(f"groupBy().{fn}() without columns: name the columns (sluice does not know "
                                   "which are numeric while the pipeline is defined)")
        from . import functions as F
        return self.agg(*[getattr(F, fn)(c) for c in cols])

    def sum(self, *cols): return self._shortcut("sum", cols)  # noqa: E704
    def avg(self, *cols): return self._shortcut("avg", cols)  # noqa: E704
    def mean(self, *cols): return self._shortcut("avg", cols)  # noqa: E704
    def min(self, *cols): return self._shortcut("min", cols)  # noqa: E704
    def max(self, *cols): return self._shortcut("max", cols)  # noqa: E704

    def pivot(self, *args):
        raise UnsupportedError("GroupedData.pivot: sluice's SQL has no PIVOT")

    def applyInPandas(self, *args, **kwargs):  # noqa: N802
        raise UnsupportedError("GroupedData.applyInPandas: no Python in the per-record path")

    def applyInPandasWithState(self, *args, **kwargs):  # noqa: N802
        raise UnsupportedError("GroupedData.applyInPandasWithState: no Python in the per-record path")


def _union_of(branches):
    """A UNION ALL of DataFrames (each a union side; a union of unions is flattened by the caller).
    Batch: the text A UNION ALL B. Streams: the definer makes each side a flow into the table (a
    streaming table takes one source per flow), so the text is only rendered for batch."""
    text = " UNION ALL ".join(b._render(True) for b in branches)
    return DataFrame(_Select("(" + text + ")"), streaming=branches[0]._streaming, columns=branches[0]._columns,
                     union=text, branches=list(branches))


def _has(names, name) -> bool:
    low = name.lower()
    return any(n.lower() == low for n in names)


def _find(mapping, name):
    low = name.lower()
    return next((k for k in mapping if k.lower() == low), None)


def _find_name(names, name):
    low = name.lower()
    return next(n for n in names if n.lower() == low)


def _named_refusals(cls, prefix):
    """Each public method of cls names itself in a TooDeepError raised below it (an expression too deep
    to render), instead of Python's bare RecursionError; the outermost, the program's call, wins."""
    def wrap(name, method):
        def named(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except (TooDeepError, RecursionError):  # the outermost call (the program's) names itself
                raise TooDeepError(f"{prefix}.{name}") from None
        named.__name__ = named.__qualname__ = name
        named.__doc__ = method.__doc__
        return named

    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_") and not isinstance(value, (staticmethod, classmethod, type)):
            setattr(cls, name, wrap(name, value))


_named_refusals(DataFrame, "DataFrame")
_named_refusals(GroupedData, "GroupedData")
