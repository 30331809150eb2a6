"""DataFrame: the SELECT each method renders, and the methods and arguments it refuses."""
import pytest

from sluice._define import functions as F
from sluice._define.column import UnsupportedError
from sluice._define.dataframe import DataFrame

COLS = ["id", "k", "x", "ts"]


def stream(columns=None):
    return DataFrame._from_relation("STREAM(events)", streaming=True, columns=columns)


def table(name="events", columns=None):
    return DataFrame._from_relation(name, streaming=False, columns=columns)


def test_from_relation_is_select_star_and_knows_if_it_streams():
    assert stream()._to_sql() == "SELECT * FROM STREAM(events)"
    assert stream().isStreaming and not table().isStreaming
    kafka = DataFrame._from_relation("STREAM read_kafka(topic => 't')", streaming=True)
    assert kafka._to_sql() == "SELECT * FROM STREAM read_kafka(topic => 't')"


def test_select_and_filter_fill_one_select():
    df = table().filter(F.col("x") > 1).select("id", (F.col("x") * 2).alias("x2"))
    assert df._to_sql() == "SELECT id, (x * 2) AS x2 FROM events WHERE (x > 1)"
    assert df.columns == ["id", "x2"]


def test_a_filter_on_a_computed_column_is_rewritten_over_the_input():
    df = table().select("id", (F.col("x") * 2).alias("x2")).filter(F.col("x2") > 10)
    assert df._to_sql() == "SELECT id, (x * 2) AS x2 FROM events WHERE ((x * 2) > 10)"


def test_select_expr_keeps_names_it_can_read():
    df = table().selectExpr("*", "x * 2 AS x2")
    assert df._to_sql() == "SELECT *, (x * 2) AS x2 FROM events"
    assert table(columns=COLS).selectExpr("id", "e.k", "upper(k) AS ku").columns == ["id", "k", "ku"]


def test_a_sql_text_filter_on_a_computed_column_reads_a_subquery():
    df = table().select("id", (F.col("x") * 2).alias("x2")).where("x2 > 10")
    assert df._to_sql() == "SELECT * FROM (SELECT id, (x * 2) AS x2 FROM events) WHERE (x2 > 10)"


def test_a_json_decode_is_not_computed_twice():
    decoded = stream().select(F.from_json("value", "a INT, b STRING").alias("e"))
    df = decoded.filter(F.col("e.a") > 1).select("e.a", "e.b")
    assert df._to_sql() == ("SELECT e.a, e.b FROM (SELECT from_json(value, 'a INT, b STRING') AS e FROM STREAM(events)) "
                            "WHERE (e.a > 1)")
    assert decoded.select("e.*").columns == ["a", "b"]


def test_with_column_replaces_a_known_column_in_place():
    df = table(columns=COLS).withColumn("x", F.coalesce("x", F.lit(0))).withColumn("y", F.lit(1))
    assert df._to_sql() == "SELECT id, k, coalesce(x, 0) AS x, ts, 1 AS y FROM events"
    assert df.columns == ["id", "k", "x", "ts", "y"]


def test_with_column_on_unknown_columns_appends_to_star():
    assert stream().withColumn("y", F.col("x") + 1)._to_sql() == "SELECT *, (x + 1) AS y FROM STREAM(events)"


def test_with_columns_evaluates_every_expression_against_the_input():
    df = table(columns=["a", "b"]).withColumns({"a": F.col("b"), "b": F.col("a")})
    assert df._to_sql() == "SELECT b AS a, a AS b FROM events"


def test_rename_and_drop_need_or_use_the_columns():
    df = table(columns=COLS).withColumnRenamed("k", "key").drop("ts", "missing")
    assert df._to_sql() == "SELECT id, k AS key, x FROM events"
    assert table(columns=COLS).withColumnRenamed("nope", "x") is not None
    assert table().drop("ts")._to_sql() == "SELECT * EXCEPT (ts) FROM events"
    with pytest.raises(UnsupportedError, match="withColumnRenamed needs the DataFrame's columns"):
        table().withColumnRenamed("k", "key")


def test_watermark_window_and_aggregate_in_one_select():
    df = (stream().withWatermark("ts", "10 minutes")
          .groupBy("k", F.window("ts", "5 minutes"))
          .agg(F.count("*").alias("n"), F.sum("x").alias("total"))
          .filter(F.col("n") > 10)
          .select("k", F.col("window.start").alias("start"), "n", (F.col("total") / F.col("n")).alias("mean")))
    assert df._to_sql() == (
        "SELECT k, window.start AS start, count(*) AS n, (sum(x) / count(*)) AS mean FROM STREAM(events) "
        "WATERMARK ts DELAY OF INTERVAL 10 MINUTES GROUP BY k, window(ts, '5 minutes') HAVING (count(*) > 10)")


def test_a_watermark_moves_out_of_a_projection_it_survives():
    df = stream().withWatermark("ts", "1 hour 30 seconds").withColumn("y", F.lit(1)).groupBy(
        F.window("ts", "1 minute")).count()
    assert df._to_sql() == ("SELECT window(ts, '1 minute') AS window, count(*) AS count FROM "
                            "(SELECT *, 1 AS y FROM STREAM(events)) WATERMARK ts DELAY OF INTERVAL 1 HOURS 30 SECONDS "
                            "GROUP BY window(ts, '1 minute')")


@pytest.mark.parametrize("call, message", [
    (lambda: table().withWatermark("ts", "1 minute"), "watermark belongs to a stream"),
    (lambda: stream().withWatermark("ts", "a while"), "cannot read 'a while' as a duration"),
    (lambda: stream(COLS).withWatermark("nope", "1 minute"), "'nope' is not a column"),
    (lambda: stream().withWatermark("ts", "1 minute").withWatermark("ts", "2 minutes").select("id"),
     "withWatermark twice"),
])
def test_watermark_refusals(call, message):
    with pytest.raises((UnsupportedError, ValueError), match=message):
        call()


def test_grouped_data_shortcuts_and_dict_agg():
    assert table().groupBy("k").count()._to_sql() == "SELECT k, count(*) AS count FROM events GROUP BY k"
    assert table().groupBy("k").max("x", "id")._to_sql() == "SELECT k, max(x), max(id) FROM events GROUP BY k"
    assert table().groupBy("k").agg({"x": "mean"})._to_sql() == "SELECT k, avg(x) FROM events GROUP BY k"
    assert table().agg(F.max("x").alias("m"))._to_sql() == "SELECT max(x) AS m FROM events"
    with pytest.raises(UnsupportedError, match="not an aggregate"):
        table().groupBy("k").agg(F.col("x"))
    with pytest.raises(UnsupportedError, match="name the columns"):
        table().groupBy("k").sum()


def test_join_on_names_keeps_one_key_column_as_spark_does():
    left, right = table("orders"), table("customers")
    assert left.join(right, "cid")._to_sql() == (
        "SELECT _l.cid, _l.* EXCEPT (cid), _r.* EXCEPT (cid) FROM orders AS _l JOIN customers AS _r ON _l.cid = _r.cid")
    assert left.join(right, ["cid"], "right")._to_sql().startswith("SELECT _r.cid, ")
    assert left.join(right, "cid", "outer")._to_sql().startswith("SELECT coalesce(_l.cid, _r.cid) AS cid, ")
    assert left.join(right, "cid", "left_semi")._to_sql() == (
        "SELECT * FROM orders AS _l LEFT SEMI JOIN customers AS _r ON _l.cid = _r.cid")
    known = table("o", ["cid", "amount"]).join(table("c", ["cid", "name"]), "cid", "left")
    assert known.columns == ["cid", "amount", "name"]


def test_join_on_a_condition_qualifies_each_dataframes_columns():
    orders, customers = stream(), table("customers")
    df = orders.join(customers, orders["cid"] == customers.cid, "left").select(orders.id, customers["name"])
    assert df._to_sql() == ("SELECT _l.id, _r.name FROM STREAM(events) AS _l LEFT JOIN customers AS _r "
                            "ON (_l.cid = _r.cid)")
    aliased = orders.alias("o").join(customers.alias("c"), F.col("o.cid") == F.col("c.cid"))
    assert aliased._to_sql() == "SELECT * FROM STREAM(events) AS o JOIN customers AS c ON (o.cid = c.cid)"


def test_stream_stream_join_keeps_each_sides_watermark():
    a = DataFrame._from_relation("STREAM(a)", streaming=True).withWatermark("ts", "1 minute")
    b = DataFrame._from_relation("STREAM(b)", streaming=True).withWatermark("ts", "1 minute")
    df = a.join(b, (a.id == b.id) & b.ts.between(a.ts, a.ts + F.expr("INTERVAL 10 MINUTES")))
    assert df._to_sql() == (
        "SELECT * FROM STREAM(a) WATERMARK ts DELAY OF INTERVAL 1 MINUTES AS _l JOIN STREAM(b) WATERMARK ts DELAY OF "
        "INTERVAL 1 MINUTES AS _r ON ((_l.id = _r.id) AND (_r.ts BETWEEN _l.ts AND (_l.ts + (INTERVAL 10 MINUTES))))")


def test_cross_joins_join_on_a_constant_key_not_selected():
    want = ("SELECT _l.* EXCEPT (_sluice_cross), _r.* EXCEPT (_sluice_cross) FROM (SELECT *, 1 AS _sluice_cross "
            "FROM events) AS _l JOIN (SELECT id, 1 AS _sluice_cross FROM b) AS _r ON _l._sluice_cross = "
            "_r._sluice_cross")
    assert table().crossJoin(table("b", ["id"]))._to_sql() == want
    assert table().join(table("b", ["id"]), how="cross")._to_sql() == want
    assert table().join(table("b", ["id"]))._to_sql() == want  # Spark: an inner join without a condition
    assert table(columns=["k"]).crossJoin(table("b", ["id"])).columns == ["k", "id"]
    with pytest.raises(UnsupportedError, match="without a condition"):
        table().join(table("b"), how="left")
    with pytest.raises(UnsupportedError, match="crossJoin of two streams"):
        stream().crossJoin(stream())
    with pytest.raises(UnsupportedError, match="_sluice_cross"):
        table(columns=["_sluice_cross"]).crossJoin(table("b"))


def test_joins_sluice_lacks_are_refused():
    with pytest.raises(ValueError, match="unknown join type 'sideways'"):
        table().join(table("b"), "id", "sideways")


def test_dedup_of_streams_maps_to_distinct_and_distinct_on():
    w = stream(COLS).withWatermark("ts", "10 minutes")
    assert w.dropDuplicates()._to_sql() == "SELECT DISTINCT * FROM STREAM(events) WATERMARK ts DELAY OF INTERVAL 10 MINUTES"
    assert w.dropDuplicates(["id", "ts"])._to_sql() == (
        "SELECT DISTINCT ON (id, ts) * FROM STREAM(events) WATERMARK ts DELAY OF INTERVAL 10 MINUTES")
    assert w.dropDuplicatesWithinWatermark(["id"])._to_sql() == (
        "SELECT DISTINCT ON (id) * FROM STREAM(events) WATERMARK ts DELAY OF INTERVAL 10 MINUTES")
    with pytest.raises(UnsupportedError, match="'ts' must be among the subset"):
        w.dropDuplicates(["id"])
    with pytest.raises(UnsupportedError, match="needs withWatermark"):
        stream().dropDuplicates(["id"])
    # A batch DataFrame: a materialized view's DISTINCT ON, the first row read of each key.
    assert table().dropDuplicates(["id"])._to_sql() == "SELECT DISTINCT ON (id) * FROM events"
    assert table().distinct()._to_sql() == "SELECT DISTINCT * FROM events"


def test_order_and_limit_end_the_query():
    df = table().orderBy("k", F.col("x").desc_nulls_last()).limit(10).limit(5)
    assert df._to_sql() == "SELECT * FROM events ORDER BY k, x DESC NULLS LAST LIMIT 5"
    assert table().sort("k", "x", ascending=[False, True])._to_sql() == "SELECT * FROM events ORDER BY k DESC, x"
    with pytest.raises(UnsupportedError, match="DataFrame.select after orderBy/sort"):
        table().orderBy("k").select("k")
    with pytest.raises(UnsupportedError, match="orderBy after limit"):
        table().limit(3).orderBy("k")
    with pytest.raises(UnsupportedError, match="distinct after groupBy"):
        table().groupBy("k").count().distinct()


def test_unions():
    a, b = table("a", ["k", "v"]), table("b", ["v", "k", "extra"])
    assert a.union(table("c"))._to_sql() == "SELECT * FROM a UNION ALL SELECT * FROM c"
    assert a.unionByName(b.drop("extra"))._to_sql() == "SELECT * FROM a UNION ALL SELECT k, v FROM b"
    with pytest.raises(ValueError, match="not in both"):
        a.unionByName(b)
    assert a.withColumn("extra", F.lit(None).cast("int")).unionByName(b)._to_sql().endswith("SELECT k, v, extra FROM b")
    with pytest.raises(UnsupportedError, match="stream and a batch"):
        stream().union(table())


def test_union_by_name_where_the_first_side_lacks_columns_puts_the_other_first():
    a, b = table("a", ["k", "v"]), table("b", ["v", "k", "extra"])
    # Every column is typed by a side that has it; Spark's column order (a's, then b's extra).
    assert a.unionByName(b, allowMissingColumns=True)._to_sql() == \
        "SELECT k, v, extra FROM b UNION ALL SELECT k, v, NULL AS extra FROM a"
    assert a.unionByName(b, allowMissingColumns=True).columns == ["k", "v", "extra"]
    with pytest.raises(UnsupportedError, match="each side lacks columns"):
        table("c", ["k", "w"]).unionByName(b, allowMissingColumns=True)


def test_a_row_step_after_a_union_goes_into_each_side():
    a, c = table("a", ["k", "v"]), table("c", ["kk", "vv"])
    df = a.union(c).filter(F.col("k") > 1).withColumn("w", F.col("v") * 2)
    # A union is by position: c's columns are renamed to a's before the step reads them.
    assert df._to_sql() == ("SELECT k, v, (v * 2) AS w FROM a WHERE (k > 1) UNION ALL "
                            "SELECT kk AS k, vv AS v, (vv * 2) AS w FROM c WHERE (kk > 1)")
    assert df.columns == ["k", "v", "w"]
    three = a.union(c).union(table("d", ["k", "v"])).select("v").drop("nothing")
    assert three._to_sql() == "SELECT v FROM a UNION ALL SELECT vv AS v FROM c UNION ALL SELECT v FROM d"
    assert a.union(c).where("k > 1").orderBy("k")._to_sql().endswith("ORDER BY k")
    with pytest.raises(UnsupportedError, match="columns of every side"):
        a.union(table("u")).filter(F.col("k") > 1)
    with pytest.raises(UnsupportedError, match="groupBy after union"):
        a.union(c).groupBy("k").count()
    with pytest.raises(UnsupportedError, match="distinct after union"):
        a.union(c).distinct()


def test_a_step_after_a_union_that_is_not_row_wise_is_refused():
    # pyspark: a.union(b).select(F.sum("v")) is one row, the sum over both sides; taken into each
    # side it would be a row per side (review finding: {6},{6} for {12}).
    a, c = table("a", ["k", "v"]), table("c", ["k", "v"])
    for step in (lambda u: u.select(F.sum("v")), lambda u: u.select(F.count("*").alias("n")),
                 lambda u: u.select(F.expr("max(v) AS m")), lambda u: u.withColumn("s", F.sum("v")),
                 lambda u: u.select(F.expr("row_number() OVER (ORDER BY v) AS r")),
                 lambda u: u.select(F.expr("count(DISTINCT v) AS d")),
                 lambda u: u.filter("v > 1 AND k IN (SELECT DISTINCT k FROM z)")):
        with pytest.raises(UnsupportedError, match="not row-wise"):
            step(a.union(c))
    assert a.union(c).select((F.col("v") + 1).alias("w"))._to_sql() == \
        "SELECT (v + 1) AS w FROM a UNION ALL SELECT (v + 1) AS w FROM c"


def test_a_union_of_streams_keeps_its_sides_for_the_definer():
    s1 = stream(["k", "ts"])
    s2 = DataFrame._from_relation("STREAM(other)", streaming=True, columns=["key", "ts"])
    u = s1.union(s2)
    assert u.isStreaming
    assert [b._to_sql() for b in u._aligned_branches("x")] == [
        "SELECT * FROM STREAM(events)", "SELECT key AS k, ts FROM STREAM(other)"]
    with pytest.raises(UnsupportedError, match="columns of every side"):
        stream().union(stream())._aligned_branches("a union of streams")


def test_a_sql_text_filter_after_an_aggregation_is_its_having():
    df = table().groupBy("k").agg(F.count("*").alias("n"), F.sum("x").alias("total"))
    got = df.filter("n > 1 AND `total` < 10 AND k <> 'n' AND count(*) > 0")._to_sql()
    assert got == ("SELECT k, count(*) AS n, sum(x) AS total FROM events GROUP BY k "
                   "HAVING ((count(*)) > 1 AND (sum(x)) < 10 AND (k) <> 'n' AND count(*) > 0)")
    with pytest.raises(UnsupportedError, match="F.expr"):
        df.filter(F.expr("n > 1"))


def test_having_text_replaces_only_column_references_to_outputs_named_like_keywords():
    """Outputs named date, hour and interval: the words of a typed literal, an interval, a CAST's type
    and EXTRACT's field are not the outputs, nor is a name inside a string literal (st)."""
    df = table().groupBy("k").agg(F.max("d").alias("date"), F.count("*").alias("hour"), F.sum("x").alias("interval"))
    having = df.filter("date > DATE '2024-01-01' AND hour > 1 AND date < TIMESTAMP '2024-02-01 00:00:00' "
                       "- INTERVAL 1 HOUR AND `interval` > INTERVAL '2' HOUR AND k <> 'date hour' "
                       "AND CAST(hour AS DATE) IS NOT NULL AND EXTRACT(HOUR FROM date) = hour "
                       "AND date + INTERVAL 1 DAY 2 HOURS > date AND hour::date IS NULL")._to_sql()
    assert having == (
        "SELECT k, max(d) AS `date`, count(*) AS hour, sum(x) AS `interval` FROM events GROUP BY k HAVING ("
        "(max(d)) > DATE '2024-01-01' AND (count(*)) > 1 AND (max(d)) < TIMESTAMP '2024-02-01 00:00:00' "
        "- INTERVAL 1 HOUR AND (sum(x)) > INTERVAL '2' HOUR AND (k) <> 'date hour' "
        "AND CAST((count(*)) AS DATE) IS NOT NULL AND EXTRACT(HOUR FROM (max(d))) = (count(*)) "
        "AND (max(d)) + INTERVAL 1 DAY 2 HOURS > (max(d)) AND (count(*))::date IS NULL)")


def test_having_text_after_a_cast_type_reads_a_comparison_as_a_comparison():
    """After `::` only ARRAY/MAP/STRUCT take `<...>` and only DECIMAL/CHAR/VARCHAR-style types take
    `(...)`: `hour::bigint < 10` is a comparison, so the outputs after it are still replaced (st)."""
    df = table().groupBy("k").agg(F.max("d").alias("date"), F.count("*").alias("hour"))
    assert df.filter("hour::bigint < 10 AND date > DATE '2024-01-01'")._to_sql().endswith(
        "HAVING ((count(*))::bigint < 10 AND (max(d)) > DATE '2024-01-01')")
    assert df.filter("hour::ARRAY<STRUCT<date: DECIMAL(10, 2)>> IS NULL AND hour::decimal(5, 1) > date")._to_sql(
        ).endswith("HAVING ((count(*))::ARRAY<STRUCT<date: DECIMAL(10, 2)>> IS NULL AND (count(*))::decimal(5, 1) > (max(d)))")


def test_having_text_leaves_a_json_path_field_and_a_parameter_alone():
    """`p:n` reads field n of JSON text p (a word after a single `:` is not a column), and `${n}` is
    one parameter token, as src/sluice/sql/lexer.cc reads them (st)."""
    from sluice._define.sqltext import _tokens
    df = table().groupBy("k").agg(F.first("p").alias("p"), F.count("*").alias("n"))
    assert df.filter("p:n = '1' AND n > ${n}")._to_sql().endswith("HAVING ((first(p)):n = '1' AND (count(*)) > ${n})")
    assert [t[0] for t in _tokens("${a b}x")] == ["param", "word"]


def test_having_text_tokens_follow_sluices_lexer():
    from sluice._define.sqltext import _tokens
    text = "a1.b >= 1.5e3L -- c\n AND `x``y` = 'it''s' /* d */ OR \"q\" <=> 'a\\'b'"
    tokens = _tokens(text)
    assert "".join(t[1] for t in tokens) == text
    assert [(k, v) for k, _, v in tokens if k != "space"] == [
        ("word", "a1"), ("op", "."), ("word", "b"), ("op", ">="), ("number", None), ("word", "AND"),
        ("quoted", "x`y"), ("op", "="), ("string", "it's"), ("word", "OR"), ("string", "q"), ("op", "<=>"),
        ("string", "a'b")]


def test_a_batch_cross_join_with_a_stream_puts_the_stream_first_and_keeps_sparks_column_order():
    s = stream(["id", "x"])
    d = table("dims", ["k"])
    joined = d.crossJoin(s)
    assert joined._to_sql() == (
        "SELECT _r.* EXCEPT (_sluice_cross), _l.* EXCEPT (_sluice_cross) FROM (SELECT id, x, 1 AS _sluice_cross "
        "FROM STREAM(events)) AS _l JOIN (SELECT k, 1 AS _sluice_cross FROM dims) AS _r ON _l._sluice_cross = "
        "_r._sluice_cross")
    assert joined.columns == ["k", "id", "x"] and joined.isStreaming
    assert d.join(s)._to_sql() == joined._to_sql() == d.join(s, how="cross")._to_sql()
    assert table("dims").crossJoin(stream())._columns is None


@pytest.mark.parametrize("method", ["collect", "count", "fillna", "repartition", "schema", "write", "toPandas"])
def test_methods_that_do_not_define_a_dataset_are_refused_by_name(method):
    with pytest.raises(UnsupportedError, match=f"DataFrame.{method}:"):
        getattr(table(), method)


def test_dataframe_attribute_and_item_access():
    df = table(columns=COLS)
    assert df.columns == COLS
    assert df[F.col("x") > 1]._to_sql() == "SELECT * FROM events WHERE (x > 1)"
    assert df[["id", "k"]]._to_sql() == "SELECT id, k FROM events"
    assert df.transform(lambda d, n: d.limit(n), 2)._to_sql() == "SELECT * FROM events LIMIT 2"
    with pytest.raises(UnsupportedError, match="columns, which are not known"):
        _ = table().columns


def test_select_expr_aliases_compose_as_one_operand():
    df = table(columns=COLS).selectExpr("id + 1 AS s").select((F.col("s") * 10).alias("t"))
    assert df._to_sql() == "SELECT ((id + 1) * 10) AS t FROM events"
    df = table(columns=COLS).selectExpr("id > 2 OR id < 2 AS f").filter(~F.col("f"))
    assert df._to_sql() == "SELECT (id > 2 OR id < 2) AS f FROM events WHERE (NOT (id > 2 OR id < 2))"
    assert "((id > 2 OR id < 2))" not in table().filter("id > 2 OR id < 2").filter(~F.col("x"))._to_sql()
    assert table().filter("id > 2 OR id < 2")._to_sql() == "SELECT * FROM events WHERE (id > 2 OR id < 2)"


def test_drop_of_a_join_sides_column_keeps_the_other_sides():
    left = table("l", columns=["id", "a"])
    right = table("r", columns=["id", "b"])
    joined = left.join(right, left.id == right.id)
    df = joined.drop(right.id)
    assert df._to_sql() == "SELECT _l.id, _l.a, _r.b FROM l AS _l JOIN r AS _r ON (_l.id = _r.id)"
    assert df.columns == ["id", "a", "b"]
    assert joined.drop(left["id"])._to_sql().startswith("SELECT _l.a, _r.id, _r.b FROM")
    # Where the sides' columns are not known, a qualified column is refused, never read as a bare name.
    unknown = table("l").join(table("r"), F.col("l.id") == F.col("r.id"))
    other = table("r")
    with pytest.raises(UnsupportedError, match="of one side of the join"):
        table("l").join(other, F.col("l.id") == other.id).drop(other.id)
    with pytest.raises(UnsupportedError, match="of one side of the join"):
        left.join(right, "id").drop(right.id)  # by name: one id, held as a projection already
    assert "EXCEPT (id)" in unknown.drop("id")._to_sql()
    # Qualified by a DataFrame this one derives from (no join): the name, as in Spark.
    base = table(columns=COLS)
    assert base.filter(F.col("x") > 1).drop(base.x).columns == ["id", "k", "ts"]


def test_order_and_limit_are_refused_on_streams():
    with pytest.raises(UnsupportedError, match="orderBy/sort on a streaming DataFrame"):
        stream(COLS).orderBy("ts")
    with pytest.raises(UnsupportedError, match="orderBy/sort on a streaming DataFrame"):
        stream(COLS).sort(F.col("ts").desc())
    with pytest.raises(UnsupportedError, match="limit on a streaming DataFrame"):
        stream(COLS).limit(5)
    assert table(columns=COLS).orderBy("ts").limit(5)._to_sql() == "SELECT * FROM events ORDER BY ts LIMIT 5"


def test_carried_names_with_dots_stay_one_column():
    df = table(columns=["id"]).withColumn("a.b", F.lit(1)).withColumn("c", F.lit(2))
    assert df._to_sql() == "SELECT id, 1 AS `a.b`, 2 AS c FROM events"
    assert df.columns == ["id", "a.b", "c"]
    assert table(columns=["id"]).withColumn("a.b", F.lit(1)).withColumnRenamed("a.b", "ab")._to_sql() == \
        "SELECT id, 1 AS ab FROM events"


def test_an_f_expr_filter_after_an_aggregation_is_refused():
    grouped = table(columns=COLS).groupBy("k").agg(F.count("*").alias("n"))
    with pytest.raises(UnsupportedError, match="after groupBy\\(\\).agg\\(\\).*filter\\('n > 1'\\)"):
        grouped.filter(F.expr("n > 1"))
    assert grouped.filter(F.col("n") > 1)._to_sql() == \
        "SELECT k, count(*) AS n FROM events GROUP BY k HAVING (count(*) > 1)"


def test_a_join_on_no_columns_is_refused():
    with pytest.raises(UnsupportedError, match="no join condition"):
        table("l").join(table("r"), [])


def test_an_expression_too_deep_to_render_is_refused_naming_the_call():
    total = F.col("c0")
    for i in range(1, 3000):
        total = total + F.col(f"c{i}")
    with pytest.raises(UnsupportedError, match="DataFrame.select: an expression nested more deeply"):
        table().select(total.alias("s"))
    with pytest.raises(UnsupportedError, match="DataFrame.withColumn: an expression nested more deeply"):
        table().withColumn("s", total)
    with pytest.raises(UnsupportedError, match="GroupedData.agg: an expression nested more deeply"):
        table().groupBy("k").agg(F.sum(total).alias("s"))
