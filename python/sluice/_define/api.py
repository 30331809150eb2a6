"""DLT's Python API (`import dlt`) and Spark Declarative Pipelines' (`from pyspark import
pipelines as dp`), each call mapped onto the SQL sluice already has: CREATE OR REFRESH
STREAMING TABLE / MATERIALIZED VIEW / TEMPORARY VIEW, CONSTRAINT ... EXPECT, CREATE FLOW ...
INSERT INTO, AUTO CDC, CREATE SINK. What sluice cannot honour is refused, naming the .py line."""
import inspect
import re

from . import sqltext as q
from .errors import DefinitionError, caller_location, function_location
from .registry import REGISTRY

_EXPECTATIONS = "__sluice_expectations__"
_ACTIONS = {"warn": "", "drop": " ON VIOLATION DROP ROW", "fail": " ON VIOLATION FAIL UPDATE"}


def _dataframe_class():
    try:
        from .dataframe import DataFrame
    except ImportError as e:  # pragma: no cover - only when the package is incomplete
        raise DefinitionError("sluice's DataFrame layer (sluice._define.dataframe) is missing: " + str(e))
    return DataFrame


def column_sql(value, what, where):
    """A column argument (a name, or a Column of the DataFrame layer) as SQL."""
    if isinstance(value, str):
        return q.ident(value)
    for attr in ("_to_sql", "_sql"):
        got = getattr(value, attr, None)
        if callable(got):
            return got()
        if isinstance(got, str):
            return got
    raise DefinitionError("{} must be a column name or a Column, not {}".format(what, type(value).__name__), *where)


def expression_sql(value, what, where):
    """An SQL condition argument (a string of SQL, as DLT takes it, or a Column)."""
    if isinstance(value, str):
        return q.user_sql(value)
    return column_sql(value, what, where)


def _names(value, what, where):
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise DefinitionError("{} must be a list of column names".format(what), *where)


def _refuse_unsupported(at, what, **options):
    """Refuses each option set to something sluice cannot honour (None/False/empty: unset)."""
    reasons = {
        "spark_conf": "Spark settings do not apply to sluice's engine; remove spark_conf (pipeline.yaml "
                      "configuration reaches the code through spark.conf.get)",
        "path": "tables live under the pipeline's storage (<storage>/tables/<name>); remove path",
        "row_filter": "row filters are not supported",
        "cluster_by_auto": "automatic liquid clustering is not supported; name the columns with cluster_by",
        "once": "once=True (a flow that runs a single time) is not supported",
        "format": "only Delta tables are written; remove format",
        "where": "where= is not supported; filter the source in a view first",
        "ignore_null_updates_column_list": "ignore_null_updates_column_list is not supported; "
                                           "use ignore_null_updates=True",
        "ignore_null_updates_except_column_list": "ignore_null_updates_except_column_list is not supported; "
                                                  "use ignore_null_updates=True",
        "refresh_policy": "refresh_policy is not supported (materialized views are refreshed incrementally "
                          "where they can be, else in full)",
    }
    for key, value in options.items():
        if value is None or value is False or value == {} or value == [] or value == "":
            continue
        shown = "{...}" if isinstance(value, dict) else repr(value)  # values may be secrets
        raise DefinitionError("{}: {}={}: {}".format(what, key, shown, reasons[key]), *at)


def _schema_elements(schema, where, what):
    if schema is None:
        return []
    if isinstance(schema, str):
        return [schema.strip()] if schema.strip() else []
    fields = getattr(schema, "fields", None)
    if fields is None:
        raise DefinitionError("{}: schema must be a DDL string ('id INT, name STRING') or a StructType, not {}"
                              .format(what, type(schema).__name__), *where)
    out = []
    for f in fields:
        text = "{} {}".format(q.ident(f.name), _type_sql(f.dataType, f.name, where, what))
        if not getattr(f, "nullable", True):
            text += " NOT NULL"
        comment = (getattr(f, "metadata", None) or {}).get("comment")
        if comment:
            text += " COMMENT " + q.string(comment)
        out.append(text)
    return out


def _type_sql(data_type, path, where, what):
    """A DataType as sluice's SQL type: nested field names quoted when not plain words, a nested
    field's nullable=False as NOT NULL; containsNull / valueContainsNull=False, which sluice's
    types cannot say, refused rather than dropped."""
    fields = getattr(data_type, "fields", None)
    if fields is not None:
        parts = []
        for f in fields:
            text = "{}: {}".format(q.ident(f.name), _type_sql(f.dataType, path + "." + f.name, where, what))
            if not getattr(f, "nullable", True):
                text += " NOT NULL"
            parts.append(text)
        return "STRUCT<" + ", ".join(parts) + ">"
    if hasattr(data_type, "elementType"):
        if getattr(data_type, "containsNull", True) is False:
            raise DefinitionError("{}: schema column {}: ArrayType(containsNull=False) is not supported (sluice's "
                                  "arrays always allow null elements); leave containsNull at True".format(what, path),
                                  *where)
        return "ARRAY<" + _type_sql(data_type.elementType, path + "[]", where, what) + ">"
    if hasattr(data_type, "keyType"):
        if getattr(data_type, "valueContainsNull", True) is False:
            raise DefinitionError("{}: schema column {}: MapType(valueContainsNull=False) is not supported (sluice's "
                                  "maps always allow null values); leave valueContainsNull at True".format(what, path),
                                  *where)
        return "MAP<{}, {}>".format(_type_sql(data_type.keyType, path + "{key}", where, what),
                                    _type_sql(data_type.valueType, path + "{value}", where, what))
    return data_type.simpleString()


def _property_value(key, value, where, what):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise DefinitionError("{}: table property {!r} must be a string, number or bool, not {}"
                          .format(what, key, type(value).__name__), *where)


def _expectation_constraints(expectations):
    return ["CONSTRAINT {} EXPECT ({}){}".format(q.ident(name), expr, _ACTIONS[action])
            for name, expr, action in expectations]


def _dataset_head(kind_word, name, *, comment=None, table_properties=None, partition_cols=None,
                  cluster_by=None, schema=None, expectations=(), where, what):
    head = "CREATE OR REFRESH {} {}".format(kind_word, q.ident(name))
    elements = _schema_elements(schema, where, what) + _expectation_constraints(expectations)
    if elements:
        head += " (" + ", ".join(elements) + ")"
    partitions = _names(partition_cols, "partition_cols", where)
    if partitions:
        head += " PARTITIONED BY (" + q.name_list(partitions) + ")"
    clusters = _names(cluster_by, "cluster_by", where)
    if clusters:
        head += " CLUSTER BY (" + q.name_list(clusters) + ")"
    if comment is not None:
        if not isinstance(comment, str):
            raise DefinitionError("{}: comment must be a string".format(what), *where)
        head += " COMMENT " + q.string(comment)
    if table_properties:
        if not isinstance(table_properties, dict):
            raise DefinitionError("{}: table_properties must be a dict".format(what), *where)
        head += " TBLPROPERTIES (" + ", ".join(
            "{} = {}".format(q.string(str(k)), q.string(_property_value(k, v, where, what)))
            for k, v in table_properties.items()) + ")"
    return head


def _expectations_of(func):
    return list(getattr(func, _EXPECTATIONS, []))


def _call_query(func, what, where):
    try:
        required = [p.name for p in inspect.signature(func).parameters.values()
                    if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        required = []
    if required:
        raise DefinitionError("{}: a dataset's function takes no arguments (it has {})".format(
            what, ", ".join(required)), *where)
    result = func()
    DataFrame = _dataframe_class()
    if not isinstance(result, DataFrame):
        raise DefinitionError("{} returned {}, not a DataFrame: return the dataset's query (e.g. "
                              "dlt.read_stream('x').select(...))".format(what, type(result).__name__), *where)
    return result


def _query_sql(df):
    """The dataset's query: spark.sql's own text when the function returned it untouched."""
    text = getattr(df, "_sluice_sql_text", None)
    return text if isinstance(text, str) else df._to_sql()


def _stream_union_sides(df, what):
    """The sides of a union of streams (None when df is not one). sluice's streaming table takes one
    source per flow, so, as DLT's @dlt.append_flow does, each side after the first becomes a flow of
    its own into the same table, inserting by name (the sides renamed to the first's columns)."""
    if not df.isStreaming or getattr(df, "_union", None) is None or getattr(df, "_branches", None) is None:
        return None
    return df._aligned_branches("{}: a union of streams".format(what))


_SIDE_TOPIC = re.compile(r"\b(?:topic|subscribe|subscribepattern)\s*=>\s*'((?:[^']|'')*)'", re.IGNORECASE)
_SIDE_TABLE = re.compile(r"\bSTREAM\s*\(\s*([^()\s]+)\s*\)", re.IGNORECASE)


def _side_source(sql):
    """What a union side reads, for its flow's name: the Kafka topic, else the table; None if neither."""
    m = _SIDE_TOPIC.search(sql) or _SIDE_TABLE.search(sql)
    if not m:
        return None
    return re.sub(r"[^A-Za-z0-9_]+", "_", m.group(1).replace("`", "")).strip("_").lower() or None


def _union_flows(target, first_flow, sides, what):
    """CREATE FLOW statements for the sides after the first of a union of streams. Each is named
    after what it reads (`<flow>_from_<topic or table>`), not its position, so that adding or
    reordering sides keeps each flow's name and so its progress (ids include the flow name); sides
    reading the same source are numbered in the order written (`..._2`)."""
    out = []
    seen = {}
    for i, side in enumerate(sides[1:], start=2):
        source = _side_source(side._to_sql())
        base = "{}_from_{}".format(first_flow, source) if source else "{}_union_{}".format(first_flow, i)
        seen[base] = seen.get(base, 0) + 1
        flow = base if seen[base] == 1 else "{}_{}".format(base, seen[base])
        out.append(("{} (union side {}: flow {})".format(what, i, flow),
                    "CREATE FLOW {} AS INSERT INTO {} BY NAME {}".format(q.ident(flow), q.ident(target),
                                                                       side._to_sql())))
    return out


def _check_name(name, what, where):
    if not isinstance(name, str) or not name:
        raise DefinitionError("{}: name must be a non-empty string".format(what), *where)
    return name


def _register_dataset(func, kind, api, name, comment, table_properties, partition_cols, cluster_by, schema,
                      unsupported, temporary=()):
    where = function_location(func)
    name = _check_name(name or func.__name__, api, where)
    what = "{} {}".format(api, name)
    _refuse_unsupported(where, what, **unsupported)
    for key, value in temporary:
        if not isinstance(value, bool) and value is not None:
            raise DefinitionError("{}: {} must be True or False, not {}".format(what, key, type(value).__name__),
                                  *where)
    # temporary=True / private=True: stored, not published (CREATE TEMPORARY ..., sluice catalog --all)
    temporary = any(value for _, value in temporary)
    if kind == "view":
        for key, value in (("table_properties", table_properties), ("partition_cols", partition_cols),
                           ("cluster_by", cluster_by), ("schema", schema)):
            if value:
                raise DefinitionError("{}: a view is not stored, so {} does not apply".format(what, key), *where)
    REGISTRY.names[name] = kind

    def build():
        if kind == "view":
            expectations = _expectations_of(func)
            if expectations:
                # A view is inlined where it is read, without its constraints: they would never
                # be checked (the SQL parser refuses CONSTRAINT on a view too).
                raise DefinitionError("{}: expectation {!r} on a view is not supported: a view is inlined where "
                                      "it is read and its expectations would never be checked; put the "
                                      "expectation on the table that reads the view".format(
                                          what, expectations[0][0]), *where)
        df = _call_query(func, what, where)
        sides = _stream_union_sides(df, what)
        if sides is not None and kind == "view":
            raise DefinitionError("{}: a view of a union of streams is not supported (a view is one query, and "
                                  "sluice reads a union of streams as one flow per stream into a table); define "
                                  "a table (@dlt.table) instead".format(what), *where)
        if kind == "view":
            kind_word = "TEMPORARY VIEW"
        elif kind == "materialized_view":
            if df.isStreaming:
                raise DefinitionError("{}: a materialized view's query must not read a stream (dlt.read / "
                                      "spark.read.table instead of read_stream / readStream), or define a "
                                      "table".format(what), *where)
            kind_word = "MATERIALIZED VIEW"
        else:  # as DLT decides: a streaming DataFrame makes a streaming table
            kind_word = "STREAMING TABLE" if df.isStreaming else "MATERIALIZED VIEW"
        if temporary:
            kind_word = "TEMPORARY " + kind_word
        head = _dataset_head(kind_word, name, comment=comment, table_properties=table_properties,
                             partition_cols=partition_cols, cluster_by=cluster_by, schema=schema,
                             expectations=_expectations_of(func), where=where, what=what)
        if kind == "view":
            head = head.replace("CREATE OR REFRESH TEMPORARY VIEW", "CREATE TEMPORARY VIEW", 1)
        if sides is not None:
            return [(what, head + " AS " + sides[0]._to_sql())] + _union_flows(name, name, sides, what)
        return head + " AS " + _query_sql(df)

    REGISTRY.add(where[0], where[1], what, build)
    return func


def _decorator(query_function, register):
    if query_function is not None:
        if not callable(query_function):
            raise DefinitionError("the decorator's first argument must be the query function")
        return register(query_function)
    return register


def table(query_function=None, *, name=None, comment=None, spark_conf=None, table_properties=None, path=None,
          partition_cols=None, cluster_by=None, cluster_by_auto=None, schema=None, temporary=False,
          row_filter=None, private=None, format=None, _api="@dlt.table", _kind="auto"):
    """@dlt.table: a streaming table when the function returns a streaming DataFrame, else a
    materialized view."""
    return _decorator(query_function, lambda f: _register_dataset(
        f, _kind, _api, name, comment, table_properties, partition_cols, cluster_by, schema,
        dict(spark_conf=spark_conf, path=path, row_filter=row_filter, cluster_by_auto=cluster_by_auto, format=format),
        temporary=(("temporary", temporary), ("private", private))))


def view(query_function=None, *, name=None, comment=None, spark_conf=None, _api="@dlt.view"):
    """@dlt.view: a view (inlined where it is read, never stored)."""
    return _decorator(query_function, lambda f: _register_dataset(
        f, "view", _api, name, comment, None, None, None, None, dict(spark_conf=spark_conf), temporary=()))


def _expect(api, action, constraints):
    def register(func):
        if not callable(func):
            raise DefinitionError("{} decorates a dataset's function".format(api))
        where = function_location(func)
        added = []
        for name, expr in constraints:
            if not isinstance(name, str) or not name:
                raise DefinitionError("{}: an expectation's name must be a non-empty string".format(api), *where)
            added.append((name, expression_sql(expr, "{} {}".format(api, name), where), action))
        # Decorators apply bottom-up: put these first, so the constraints read in source order.
        setattr(func, _EXPECTATIONS, added + list(getattr(func, _EXPECTATIONS, [])))
        return func
    return register


def expect(name, constraint):
    return _expect("@dlt.expect", "warn", [(name, constraint)])


def expect_or_drop(name, constraint):
    return _expect("@dlt.expect_or_drop", "drop", [(name, constraint)])


def expect_or_fail(name, constraint):
    return _expect("@dlt.expect_or_fail", "fail", [(name, constraint)])


def _expect_all(api, action, expectations):
    if not isinstance(expectations, dict):
        raise DefinitionError("{} takes a dict of name -> SQL condition".format(api))
    return _expect(api, action, list(expectations.items()))


def expect_all(expectations):
    return _expect_all("@dlt.expect_all", "warn", expectations)


def expect_all_or_drop(expectations):
    return _expect_all("@dlt.expect_all_or_drop", "drop", expectations)


def expect_all_or_fail(expectations):
    return _expect_all("@dlt.expect_all_or_fail", "fail", expectations)


def read(name):
    """dlt.read: the dataset's current rows (a batch DataFrame)."""
    if not isinstance(name, str) or not name:
        raise DefinitionError("dlt.read takes a dataset name")
    return _dataframe_class()._from_relation(q.ident(_strip_live(name)), streaming=False)


def read_stream(name):
    """dlt.read_stream: the dataset's rows as they are appended (a streaming DataFrame)."""
    if not isinstance(name, str) or not name:
        raise DefinitionError("dlt.read_stream takes a dataset name")
    return _dataframe_class()._from_relation("STREAM({})".format(q.ident(_strip_live(name))), streaming=True)


def _strip_live(name):
    return name[5:] if name.upper().startswith("LIVE.") else name


def create_streaming_table(name, comment=None, spark_conf=None, table_properties=None, partition_cols=None,
                           cluster_by=None, path=None, schema=None, expect_all=None, expect_all_or_drop=None,
                           expect_all_or_fail=None, row_filter=None, cluster_by_auto=None, _api="dlt.create_streaming_table"):
    """A streaming table that flows (append_flow, apply_changes / create_auto_cdc_flow) write."""
    where = caller_location()
    name = _check_name(name, _api, where)
    what = "{} {}".format(_api, name)
    _refuse_unsupported(where, what, spark_conf=spark_conf, path=path, row_filter=row_filter,
                        cluster_by_auto=cluster_by_auto)
    expectations = []
    for action, given in (("warn", expect_all), ("drop", expect_all_or_drop), ("fail", expect_all_or_fail)):
        if given is None:
            continue
        if not isinstance(given, dict):
            raise DefinitionError("{}: expect_all* take a dict of name -> SQL condition".format(what), *where)
        expectations += [(k, expression_sql(v, "{} {}".format(what, k), where), action) for k, v in given.items()]
    REGISTRY.names[name] = "streaming_table"
    REGISTRY.add(where[0], where[1], what, lambda: _dataset_head(
        "STREAMING TABLE", name, comment=comment, table_properties=table_properties, partition_cols=partition_cols,
        cluster_by=cluster_by, schema=schema, expectations=expectations, where=where, what=what))


def append_flow(target, name=None, comment=None, spark_conf=None, once=False, _api="@dlt.append_flow"):
    """@dlt.append_flow(target=...): one more flow appending into a streaming table or a sink."""
    def register(func):
        where = function_location(func)
        flow = _check_name(name or func.__name__, _api, where)
        what = "{} {}".format(_api, flow)
        _refuse_unsupported(where, what, spark_conf=spark_conf, once=once)
        if not isinstance(target, str) or not target:
            raise DefinitionError("{}: target must be a streaming table's or sink's name".format(what), *where)

        def build():
            df = _call_query(func, what, where)
            if not df.isStreaming:
                raise DefinitionError("{}: an append flow reads a stream (dlt.read_stream / spark.readStream); "
                                      "this query is a batch one".format(what), *where)
            into = "" if REGISTRY.names.get(target) == "sink" else " BY NAME"
            head = "CREATE FLOW " + q.ident(flow)
            if comment is not None:
                head += " COMMENT " + q.string(str(comment))
            sides = _stream_union_sides(df, what)
            if sides is not None:
                if into == "":
                    raise DefinitionError("{}: a union of streams into a sink is not supported; write one "
                                          "@dlt.append_flow per stream".format(what), *where)
                return [(what, "{} AS INSERT INTO {}{} {}".format(head, q.ident(_strip_live(target)), into,
                                                                 sides[0]._to_sql()))] + \
                    _union_flows(_strip_live(target), flow, sides, what)
            return "{} AS INSERT INTO {}{} {}".format(head, q.ident(_strip_live(target)), into, _query_sql(df))

        REGISTRY.add(where[0], where[1], what, build)
        return func
    return register


def create_auto_cdc_flow(target, source, keys, sequence_by, where=None, ignore_null_updates=False,
                         apply_as_deletes=None, apply_as_truncates=None, column_list=None, except_column_list=None,
                         stored_as_scd_type=1, track_history_column_list=None, track_history_except_column_list=None,
                         name=None, once=False, ignore_null_updates_column_list=None,
                         ignore_null_updates_except_column_list=None, flow_name=None,
                         _api="dlt.create_auto_cdc_flow"):
    """AUTO CDC (APPLY CHANGES) from a streaming source into a streaming table."""
    at = caller_location()
    flow = name or flow_name
    what = "{} into {}".format(_api, target)
    _refuse_unsupported(at, what, where=where, once=once,
                        ignore_null_updates_column_list=ignore_null_updates_column_list,
                        ignore_null_updates_except_column_list=ignore_null_updates_except_column_list)
    for arg, value in (("target", target), ("source", source)):
        if not isinstance(value, str) or not value:
            raise DefinitionError("{}: {} must be a dataset's name".format(what, arg), *at)
    if column_list is not None and except_column_list is not None:
        raise DefinitionError("{}: give column_list or except_column_list, not both".format(what), *at)
    if track_history_column_list is not None and track_history_except_column_list is not None:
        raise DefinitionError("{}: give track_history_column_list or track_history_except_column_list, not both"
                              .format(what), *at)
    scd = str(stored_as_scd_type)
    if scd not in ("1", "2"):
        raise DefinitionError("{}: stored_as_scd_type must be 1 or 2, not {!r}".format(what, stored_as_scd_type), *at)
    if not isinstance(keys, (list, tuple)) or not keys:
        raise DefinitionError("{}: keys must be a non-empty list of columns".format(what), *at)

    def columns(values, arg):
        if not isinstance(values, (list, tuple)):
            raise DefinitionError("{}: {} must be a list of columns".format(what, arg), *at)
        return ", ".join(column_sql(v, arg, at) for v in values)

    def build():
        text = ("CREATE FLOW {} AS AUTO CDC".format(q.ident(flow)) if flow else "APPLY CHANGES")
        text += " INTO {} FROM STREAM({}) KEYS ({})".format(q.ident(_strip_live(target)),
                                                          q.ident(_strip_live(source)), columns(keys, "keys"))
        if ignore_null_updates:
            text += " IGNORE NULL UPDATES"
        if apply_as_deletes is not None:
            text += " APPLY AS DELETE WHEN " + expression_sql(apply_as_deletes, "apply_as_deletes", at)
        if apply_as_truncates is not None:
            text += " APPLY AS TRUNCATE WHEN " + expression_sql(apply_as_truncates, "apply_as_truncates", at)
        text += " SEQUENCE BY " + column_sql(sequence_by, "sequence_by", at)
        if column_list is not None:
            text += " COLUMNS (" + columns(column_list, "column_list") + ")"
        elif except_column_list is not None:
            text += " COLUMNS * EXCEPT (" + columns(except_column_list, "except_column_list") + ")"
        text += " STORED AS SCD TYPE " + scd
        if track_history_column_list is not None:
            text += " TRACK HISTORY ON (" + columns(track_history_column_list, "track_history_column_list") + ")"
        elif track_history_except_column_list is not None:
            text += " TRACK HISTORY ON * EXCEPT (" + columns(track_history_except_column_list,
                                                            "track_history_except_column_list") + ")"
        return text

    REGISTRY.add(at[0], at[1], what, build)


def apply_changes(target, source, keys, sequence_by, where=None, ignore_null_updates=False, apply_as_deletes=None,
                  apply_as_truncates=None, column_list=None, except_column_list=None, stored_as_scd_type=1,
                  track_history_column_list=None, track_history_except_column_list=None, flow_name=None,
                  once=False, ignore_null_updates_column_list=None, ignore_null_updates_except_column_list=None):
    """dlt.apply_changes: DLT's older name of create_auto_cdc_flow."""
    return create_auto_cdc_flow(target, source, keys, sequence_by, where=where,
                                ignore_null_updates=ignore_null_updates, apply_as_deletes=apply_as_deletes,
                                apply_as_truncates=apply_as_truncates, column_list=column_list,
                                except_column_list=except_column_list, stored_as_scd_type=stored_as_scd_type,
                                track_history_column_list=track_history_column_list,
                                track_history_except_column_list=track_history_except_column_list,
                                flow_name=flow_name, once=once,
                                ignore_null_updates_column_list=ignore_null_updates_column_list,
                                ignore_null_updates_except_column_list=ignore_null_updates_except_column_list,
                                _api="dlt.apply_changes")


def create_sink(name, format, options=None, _api="dlt.create_sink"):
    """A sink (a Kafka topic or an external Delta table) that append flows write into."""
    from .spark import kafka_cluster_option  # the sink's kafka.bootstrap.servers as a pipeline cluster
    at = caller_location()
    name = _check_name(name, _api, at)
    what = "{} {}".format(_api, name)
    if format not in ("kafka", "delta"):
        raise DefinitionError("{}: format {!r} is not supported (sinks: 'kafka', 'delta')".format(what, format), *at)
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise DefinitionError("{}: options must be a dict".format(what), *at)
    rendered = [("format", format)]
    for key, value in options.items():
        value = _property_value(key, value, at, what)
        if format == "kafka" and key.lower() == "kafka.bootstrap.servers":
            rendered.append(kafka_cluster_option(value, what, at))
        else:
            rendered.append((str(key), value))
    REGISTRY.names[name] = "sink"
    text = "CREATE SINK {} OPTIONS ({})".format(
        q.ident(name), ", ".join("{} => {}".format(q.string(k), q.string(v)) for k, v in rendered))
    REGISTRY.add(at[0], at[1], what, lambda: text)
