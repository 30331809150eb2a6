"""The JSON the definer emits for DLT's and pyspark.pipelines' Python API: one SQL statement
per declaration, at the .py line of its decorator or call; refusals and Python errors located
at their .py line."""
import os
import subprocess
import sys

import pytest


def test_multi_hop_tables_become_streaming_tables_and_a_view(definer):
    [stmts] = definer.statements({"p.py": '''
        import dlt

        @dlt.table(comment="raw events", table_properties={"pipelines.reset.allowed": False})
        def bronze():
            return spark.readStream.format("kafka").option("subscribe", "events").option("startingOffsets", "earliest").load()

        @dlt.table(partition_cols=["day"])
        @dlt.expect("known type", "kind IN ('a', 'b')")
        @dlt.expect_or_drop("has_user", "user_id IS NOT NULL")
        @dlt.expect_or_fail("has_ts", "ts IS NOT NULL")
        def silver():
            return dlt.read_stream("bronze")

        @dlt.table(name="gold_counts")
        def gold():
            return dlt.read("silver")
    '''})
    assert stmts == [
        (4, "@dlt.table bronze",
         "CREATE OR REFRESH STREAMING TABLE bronze COMMENT 'raw events' TBLPROPERTIES "
         "('pipelines.reset.allowed' = 'false') AS SELECT * FROM STREAM read_kafka(topic => 'events', "
         "starting_offsets => 'earliest')"),
        (8, "@dlt.table silver",
         "CREATE OR REFRESH STREAMING TABLE silver (CONSTRAINT `known type` EXPECT (kind IN ('a', 'b')), "
         "CONSTRAINT has_user EXPECT (user_id IS NOT NULL) ON VIOLATION DROP ROW, CONSTRAINT has_ts EXPECT "
         "(ts IS NOT NULL) ON VIOLATION FAIL UPDATE) PARTITIONED BY (day) AS SELECT * FROM STREAM(bronze)"),
        (15, "@dlt.table gold_counts", "CREATE OR REFRESH MATERIALIZED VIEW gold_counts AS SELECT * FROM silver"),
    ]


def test_kafka_options_map_onto_read_kafka_and_a_pipeline_cluster(definer):
    files = {"k.py": '''
        import dlt

        @dlt.table
        def raw():
            return (spark.readStream.format("kafka")
                    .option("kafka.bootstrap.servers", "b2:9092,b1:9092")
                    .option("subscribePattern", "ev.*").option("maxOffsetsPerTrigger", 10)
                    .option("failOnDataLoss", False).option("kafka.client.id", "me")
                    .load())
    '''}
    clusters = {"default": "x:1", "secure": "b1:9092, b2:9092"}
    [stmts] = definer.statements(files, kafka_clusters=clusters)
    # No startingOffsets: Spark's stream starts at the end, so the SQL says so (read_kafka's own
    # default is the beginning).
    assert stmts[0][2] == ("CREATE OR REFRESH STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka("
                           "cluster => 'secure', topic_pattern => 'ev.*', max_offsets_per_trigger => '10', "
                           "fail_on_data_loss => 'false', `kafka.client.id` => 'me', "
                           "starting_offsets => 'latest')")
    # The real parser and planner take it (a dotted option key unquoted did not parse).
    assert "raw (streaming table) <- kafka:ev.* (stream)" in definer.validate(files, kafka_clusters=clusters)


def test_kafka_servers_of_no_cluster_are_refused_at_their_line(definer):
    e = definer.error({"k.py": '''
        import dlt

        @dlt.table
        def raw():
            return spark.readStream.format("kafka").option("subscribe", "t") \\
                .option("kafka.bootstrap.servers", "elsewhere:9092").load()
    '''})
    assert e["file"] == 0 and e["line"] == 7  # the line of the call that failed (.load())
    assert "kafka.bootstrap.servers 'elsewhere:9092' is not the bootstrap.servers of any cluster" in e["message"]
    assert "default: 127.0.0.1:9092" in e["message"]


def test_unknown_kafka_option_is_refused(definer):
    e = definer.error({"k.py": '''
        import dlt
        @dlt.table
        def raw():
            return spark.readStream.format("kafka").option("subscribe", "t").option("minPartitions", 4).load()
    '''})
    assert e["line"] == 5 and "option('minPartitions') is not supported" in e["message"]


def test_change_feed_reads_become_table_changes(definer):
    [stmts] = definer.statements({"c.py": '''
        import dlt

        @dlt.table
        def changes():
            return spark.readStream.format("delta").option("readChangeFeed", "true").option("startingVersion", 3).table("orders")

        @dlt.table
        def since():
            return spark.readStream.option("readChangeFeed", True).option("startingTimestamp", "2024-05-01").table("LIVE.orders")

        @dlt.table
        def closed_range():
            return (spark.read.format("delta").option("readChangeFeed", "true")
                    .option("startingVersion", 1).option("endingVersion", 4).table("orders"))
    '''})
    assert [s[2].split(" AS ", 1)[1] for s in stmts] == [
        "SELECT * FROM STREAM table_changes('orders', 3)",
        "SELECT * FROM STREAM table_changes('orders', '2024-05-01')",
        "SELECT * FROM table_changes('orders', 1, 4)",
    ]
    assert [s[2].split(" ")[3] for s in stmts] == ["STREAMING", "STREAMING", "MATERIALIZED"]


@pytest.mark.parametrize("reader", ["spark.readStream", "spark.read"])
def test_a_change_feed_read_without_a_start_is_refused(definer, reader):
    # Spark starts it with the current snapshot as inserts; sluice's SQL cannot say that, and
    # version 0 gives other rows (or fails after log clean-up).
    e = definer.error({"c.py": '''
        import dlt

        @dlt.table
        def changes():
            return {}.option("readChangeFeed", "true").table("orders")
    '''.format(reader)})
    assert e["line"] == 6 and "needs .option('startingVersion', n) or .option('startingTimestamp'" in e["message"]


def test_time_travel_without_the_change_feed_is_refused(definer):
    e = definer.error({"c.py": '''
        import dlt
        @dlt.table
        def t():
            return spark.read.option("startingVersion", 2).table("orders")
    '''})
    assert e["line"] == 5 and "time travel is not supported" in e["message"]


def test_cdc_flows_and_streaming_tables(definer):
    [stmts] = definer.statements({"cdc.py": '''
        import dlt

        dlt.create_streaming_table("customers", comment="current", table_properties={"delta.enableChangeDataFeed": "true"})
        dlt.apply_changes(target="customers", source="cdc_raw", keys=["id"], sequence_by="lsn",
                          apply_as_deletes="op = 'd'", except_column_list=["op", "lsn"], stored_as_scd_type=1)
        dlt.create_streaming_table("history", schema="id BIGINT, name STRING", expect_all_or_drop={"named": "name IS NOT NULL"})
        dlt.create_auto_cdc_flow(target="history", source="cdc_raw", keys=["id"], sequence_by="lsn",
                                 stored_as_scd_type="2", track_history_column_list=["name"], name="history_flow",
                                 ignore_null_updates=True)
    '''})
    assert stmts == [
        (4, "dlt.create_streaming_table customers",
         "CREATE OR REFRESH STREAMING TABLE customers COMMENT 'current' TBLPROPERTIES "
         "('delta.enableChangeDataFeed' = 'true')"),
        (5, "dlt.apply_changes into customers",
         "APPLY CHANGES INTO customers FROM STREAM(cdc_raw) KEYS (id) APPLY AS DELETE WHEN op = 'd' SEQUENCE BY "
         "lsn COLUMNS * EXCEPT (op, lsn) STORED AS SCD TYPE 1"),
        (7, "dlt.create_streaming_table history",
         "CREATE OR REFRESH STREAMING TABLE history (id BIGINT, name STRING, CONSTRAINT named EXPECT "
         "(name IS NOT NULL) ON VIOLATION DROP ROW)"),
        (8, "dlt.create_auto_cdc_flow into history",
         "CREATE FLOW history_flow AS AUTO CDC INTO history FROM STREAM(cdc_raw) KEYS (id) IGNORE NULL UPDATES "
         "SEQUENCE BY lsn STORED AS SCD TYPE 2 TRACK HISTORY ON (name)"),
    ]


def test_append_flows_into_a_table_and_a_sink(definer):
    [stmts] = definer.statements({"f.py": '''
        import dlt

        dlt.create_streaming_table("all_events")

        @dlt.append_flow(target="all_events", comment="from a")
        def from_a():
            return dlt.read_stream("a")

        dlt.create_sink("alerts_out", "kafka", {"topic": "alerts", "kafka.bootstrap.servers": "127.0.0.1:9092"})

        @dlt.append_flow(target="alerts_out", name="to_kafka")
        def alerts():
            return dlt.read_stream("all_events")
    '''})
    assert [s[2] for s in stmts] == [
        "CREATE OR REFRESH STREAMING TABLE all_events",
        "CREATE FLOW from_a COMMENT 'from a' AS INSERT INTO all_events BY NAME SELECT * FROM STREAM(a)",
        "CREATE SINK alerts_out OPTIONS ('format' => 'kafka', 'topic' => 'alerts', 'cluster' => 'default')",
        "CREATE FLOW to_kafka AS INSERT INTO alerts_out SELECT * FROM STREAM(all_events)",
    ]


def test_an_append_flow_reading_a_batch_is_refused(definer):
    e = definer.error({"f.py": '''
        import dlt
        dlt.create_streaming_table("t")
        @dlt.append_flow(target="t")
        def once():
            return dlt.read("a")
    '''})
    assert e["line"] == 4 and "an append flow reads a stream" in e["message"]


def test_pyspark_pipelines_spelling(definer):
    [stmts] = definer.statements({"dp.py": '''
        from pyspark import pipelines as dp

        @dp.temporary_view
        def clean():
            return spark.readStream.table("raw")

        @dp.table(cluster_by=["id"])
        def st():
            return spark.readStream.table("clean")

        @dp.materialized_view(comment="batch")
        def mv():
            return spark.read.table("st")

        dp.create_streaming_table("target")

        @dp.append_flow(target="target")
        def feed():
            return spark.readStream.table("st")
    '''})
    assert [s[1:] for s in stmts] == [
        ("@dp.temporary_view clean", "CREATE TEMPORARY VIEW clean AS SELECT * FROM STREAM(raw)"),
        ("@dp.table st", "CREATE OR REFRESH STREAMING TABLE st CLUSTER BY (id) AS SELECT * FROM STREAM(clean)"),
        ("@dp.materialized_view mv", "CREATE OR REFRESH MATERIALIZED VIEW mv COMMENT 'batch' AS SELECT * FROM st"),
        ("dp.create_streaming_table target", "CREATE OR REFRESH STREAMING TABLE target"),
        ("@dp.append_flow feed", "CREATE FLOW feed AS INSERT INTO target BY NAME SELECT * FROM STREAM(st)"),
    ]


def test_a_materialized_view_reading_a_stream_is_refused(definer):
    e = definer.error({"dp.py": '''
        from pyspark import pipelines as dp

        @dp.materialized_view
        def mv():
            return spark.readStream.table("st")
    '''})
    assert e["line"] == 4 and "a materialized view's query must not read a stream" in e["message"]


@pytest.mark.parametrize("option, says", [
    ("spark_conf={'spark.sql.shuffle.partitions': '4'}", "Spark settings do not apply"),
    ("path='/tmp/x'", "tables live under the pipeline's storage"),
    ("row_filter='ROW FILTER f ON (a)'", "row filters are not supported"),
])
def test_settings_sluice_cannot_honour_are_refused_at_the_decorator(definer, option, says):
    e = definer.error({"t.py": '''
        import dlt

        @dlt.table({})
        def t():
            return dlt.read("a")
    '''.format(option)})
    assert e["line"] == 4 and says in e["message"] and e["message"].startswith("@dlt.table t: ")
    assert "'4'" not in e["message"]  # spark_conf values are not echoed


def test_temporary_and_private_tables_become_temporary_datasets(definer):
    [stmts] = definer.statements({"t.py": '''
        import dlt
        from pyspark import pipelines as dp

        @dlt.table(temporary=True, comment="staging")
        def staged():
            return dlt.read_stream("raw")

        @dlt.table(private=True)
        def lookup():
            return dlt.read("dim")

        @dp.materialized_view(private=True)
        def dp_lookup():
            return spark.read.table("dim")

        @dlt.table(temporary=False)
        def published():
            return dlt.read("dim")
    '''})
    assert [s[2] for s in stmts] == [
        "CREATE OR REFRESH TEMPORARY STREAMING TABLE staged COMMENT 'staging' AS SELECT * FROM STREAM(raw)",
        "CREATE OR REFRESH TEMPORARY MATERIALIZED VIEW lookup AS SELECT * FROM dim",
        "CREATE OR REFRESH TEMPORARY MATERIALIZED VIEW dp_lookup AS SELECT * FROM dim",
        "CREATE OR REFRESH MATERIALIZED VIEW published AS SELECT * FROM dim",
    ]


def test_temporary_must_be_a_bool(definer):
    e = definer.error({"t.py": '''
        import dlt

        @dlt.table(temporary="yes")
        def t():
            return dlt.read("a")
    '''})
    assert e["line"] == 4 and "temporary must be True or False, not str" in e["message"]


def test_an_unknown_keyword_is_a_python_error_at_its_line(definer):
    e = definer.error({"t.py": '''
        import dlt

        @dlt.table(refresh_every="1 hour")
        def t():
            return dlt.read("a")
    '''})
    assert e["line"] == 4 and "unexpected keyword argument 'refresh_every'" in e["message"]


def test_schema_as_ddl_and_as_struct_type(definer):
    [stmts] = definer.statements({"s.py": '''
        import dlt
        from pyspark.sql.types import StructType, StructField, LongType, StringType, ArrayType

        @dlt.table(schema="id BIGINT NOT NULL, name STRING COMMENT 'who'")
        def a():
            return dlt.read("x")

        @dlt.table(schema=StructType([StructField("id", LongType(), False),
                                      StructField("tags", ArrayType(StringType()), metadata={"comment": "it's"})]))
        def b():
            return dlt.read("x")
    '''})
    assert stmts[0][2].startswith("CREATE OR REFRESH MATERIALIZED VIEW a (id BIGINT NOT NULL, name STRING COMMENT 'who') AS")
    assert stmts[1][2].startswith("CREATE OR REFRESH MATERIALIZED VIEW b (id bigint NOT NULL, tags ARRAY<string> "
                                  "COMMENT 'it\\'s') AS")


def test_nested_struct_fields_are_quoted_and_keep_not_null_through_the_real_parser(definer):
    files = {"n.py": '''
        import dlt
        from pyspark.sql.types import StructType, StructField, IntegerType, StringType, ArrayType, BinaryType

        @dlt.table(schema=StructType([
            StructField("s", StructType([StructField("a b", IntegerType(), False),
                                         StructField("c", StructType([StructField("x-y", StringType())]))])),
            StructField("value", BinaryType())]))
        def m():
            return spark.sql("SELECT named_struct('a b', 1, 'c', named_struct('x-y', 'x')) AS s, "
                             "value FROM STREAM read_kafka(topic => 't')")
    '''}
    [stmts] = definer.statements(files)
    assert stmts[0][2].startswith("CREATE OR REFRESH STREAMING TABLE m (s STRUCT<`a b`: int NOT NULL, c: STRUCT<`x-y`: string>>, "
                                  "value binary) AS"), stmts
    assert "m (streaming table)" in definer.validate(files)


@pytest.mark.parametrize("column, says", [
    ("ArrayType(IntegerType(), containsNull=False)", "ArrayType(containsNull=False) is not supported"),
    ("MapType(StringType(), IntegerType(), False)", "MapType(valueContainsNull=False) is not supported"),
])
def test_non_null_elements_sluice_cannot_say_are_refused(definer, column, says):
    e = definer.error({"n.py": '''
        import dlt
        from pyspark.sql.types import *

        @dlt.table(schema=StructType([StructField("c", {})]))
        def m():
            return dlt.read("x")
    '''.format(column)})
    assert e["line"] == 5 and says in e["message"] and "schema column c" in e["message"]


def test_configuration_reaches_spark_conf_get(definer):
    [stmts] = definer.statements({"c.py": '''
        import dlt
        topic = spark.conf.get("source_topic")
        start = spark.conf.get("start", "earliest")

        @dlt.table(name=spark.conf.get("prefix") + "_raw")
        def raw():
            return spark.readStream.format("kafka").option("subscribe", topic).option("startingOffsets", start).load()
    '''}, configuration={"source_topic": "o'rders", "prefix": "shop"})
    assert stmts[0][2] == ("CREATE OR REFRESH STREAMING TABLE shop_raw AS SELECT * FROM STREAM read_kafka("
                           "topic => 'o\\'rders', starting_offsets => 'earliest')")


def test_a_missing_configuration_key_is_located(definer):
    e = definer.error({"c.py": '''
        import dlt

        x = spark.conf.get("nope")
    '''})
    assert e["line"] == 4 and "spark.conf.get('nope'): no such key" in e["message"]


def test_python_exceptions_point_at_the_innermost_pipeline_line(definer):
    e = definer.error({"a.py": "import dlt\n", "b.py": '''
        import dlt

        def helper():
            return undefined_name

        @dlt.table
        def t():
            x = 1
            return helper()
    '''})
    assert (e["file"], e["line"]) == (1, 5)
    assert e["message"] == "NameError: name 'undefined_name' is not defined"


def test_a_syntax_error_is_located(definer):
    e = definer.error({"s.py": "import dlt\n\n@dlt.table\ndef t(:\n    pass\n"})
    assert e["line"] == 4 and e["message"].startswith("SyntaxError")


def test_a_function_returning_no_dataframe_is_refused(definer):
    e = definer.error({"t.py": '''
        import dlt

        @dlt.table
        def t():
            return "SELECT 1"
    '''})
    assert e["line"] == 4 and "returned str, not a DataFrame" in e["message"]


def test_print_goes_to_stderr_and_files_see_each_other(definer):
    code, answer, err = definer.run({"a.py": '''
        import dlt
        print("defining a")
        @dlt.table
        def a():
            return dlt.read_stream("b")
    ''', "b.py": '''
        from pyspark import pipelines as dp
        @dp.table
        def b():
            return spark.readStream.format("kafka").option("subscribe", "t").load()
    '''})
    assert code == 0 and "defining a" in err
    assert [len(f["statements"]) for f in answer["files"]] == [1, 1]
    assert answer["files"][1]["statements"][0]["what"] == "@dp.table b"


def test_odd_names_are_quoted(definer):
    [stmts] = definer.statements({"q.py": '''
        import dlt
        @dlt.table(name="order")
        @dlt.expect("a`b", "x > 0")
        def t():
            return dlt.read_stream("select")
    '''})
    assert stmts[0][2] == ("CREATE OR REFRESH STREAMING TABLE `order` (CONSTRAINT `a``b` EXPECT (x > 0)) "
                           "AS SELECT * FROM STREAM(`select`)")


def test_shims_are_not_importable_outside_a_pipeline_run(package_root):
    # The package folder on sys.path does not make `dlt` or sluice's `pyspark` importable:
    # the real packages on PyPI stay what `import dlt` / `import pyspark` mean elsewhere.
    code = ("import importlib.util, sys\n"
            "spec = importlib.util.find_spec('dlt')\n"
            "assert spec is None or '_shims' not in (spec.origin or ''), spec\n"
            "spec = importlib.util.find_spec('pyspark')\n"
            "assert spec is None or '_shims' not in (spec.origin or ''), spec\n")
    env = dict(os.environ, PYTHONPATH=str(package_root))
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_sql_mode_prints_the_generated_statements(definer, package_root, tmp_path):
    (tmp_path / "v.py").write_text("import dlt\n\n@dlt.view\ndef v():\n    return dlt.read('a')\n")
    env = dict(os.environ, PYTHONPATH=str(package_root))
    done = subprocess.run([sys.executable, "-m", "sluice._define", "--sql", str(tmp_path / "v.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "-- {}:3 @dlt.view v\nCREATE TEMPORARY VIEW v AS SELECT * FROM a;\n\n".format(
        tmp_path / "v.py")


def test_names_sluice_does_not_have_are_refused_by_name(definer):
    e = definer.error({"n.py": "import dlt\n\n\n@dlt.on_event_hook\ndef hook(event):\n    pass\n"})
    assert (e["line"], e["message"]) == (4, "dlt.on_event_hook is not supported by sluice")
    e = definer.error({"n.py": "from dlt import table, read, nosuch\n"})
    assert (e["line"], e["message"]) == (1, "dlt.nosuch is not supported by sluice")
    e = definer.error({"n.py": "from pyspark import pipelines as dp\n\ndp.apply_changes_from_snapshot()\n"})
    assert (e["line"], e["message"]) == (3, "pyspark.pipelines.apply_changes_from_snapshot is not supported by sluice")


def test_a_dataset_function_with_arguments_is_refused_at_its_decorator(definer):
    e = definer.error({"a.py": "import dlt\n\n@dlt.table\ndef t(spark_session):\n    return dlt.read('x')\n"})
    assert (e["line"], e["message"]) == (3, "@dlt.table t: a dataset's function takes no arguments (it has spark_session)")


def test_a_sink_option_of_the_wrong_type_is_refused_at_its_call(definer):
    e = definer.error({"a.py": "import dlt\n\n\ndlt.create_sink('s', 'kafka', {'topic': ['a', 'b']})\n"})
    assert e["line"] == 4 and "must be a string, number or bool" in e["message"]


def test_expect_all_and_an_expectation_above_the_table_decorator(definer):
    [stmts] = definer.statements({"e.py": '''
        import dlt

        @dlt.expect_or_drop("above", "a > 0")
        @dlt.table
        @dlt.expect_all({"b_set": "b IS NOT NULL", "c_set": "c IS NOT NULL"})
        @dlt.expect_all_or_fail({"d_set": "d IS NOT NULL"})
        def t():
            return dlt.read_stream("s")
    '''})
    assert stmts == [(4, "@dlt.table t",
                      "CREATE OR REFRESH STREAMING TABLE t (CONSTRAINT above EXPECT (a > 0) ON VIOLATION DROP ROW, "
                      "CONSTRAINT b_set EXPECT (b IS NOT NULL), CONSTRAINT c_set EXPECT (c IS NOT NULL), "
                      "CONSTRAINT d_set EXPECT (d IS NOT NULL) ON VIOLATION FAIL UPDATE) AS SELECT * FROM STREAM(s)")]


@pytest.mark.parametrize("decorators", [
    ("@dlt.view", "@dlt.expect_or_drop('positive', 'a > 0')"),
    ("@dlt.expect('positive', 'a > 0')", "@dlt.view"),
    ("@dp.temporary_view", "@dp.expect_all_or_fail({'positive': 'a > 0'})"),
])
def test_expectations_on_a_view_are_refused_at_its_decorator(definer, decorators):
    # A view is inlined where it is read, without its constraints: they would never be checked.
    e = definer.error({"v.py": "import dlt\nfrom pyspark import pipelines as dp\n\n{}\n{}\ndef v():\n"
                               "    return dlt.read('a')\n".format(*decorators)})
    assert e["line"] == 4
    assert "expectation 'positive' on a view is not supported" in e["message"]


def _gone(pid):
    """True once `pid` has ended (no process, or a zombie awaiting its reaper)."""
    try:
        with open("/proc/{}/stat".format(pid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_for(condition, what, bound=60):
    """Polls `condition` (a state change sluice causes) with a generous bound, for a failure
    message instead of a hang; nothing here depends on timing."""
    import time
    end = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < end, what
        time.sleep(0.05)


def test_a_background_child_holding_the_pipes_neither_survives_nor_stalls_validate(definer, tmp_path):
    # The child inherits the definer's stdout/stderr and runs far longer than the definer: sluice
    # must answer once the definer exited (not at the timeout) and end the child with the group.
    pid_file = tmp_path / "child.pid"
    files = {"p.py": '''
        import dlt, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        open({!r}, "w").write(str(child.pid))

        @dlt.table
        def raw():
            return spark.readStream.format("kafka").option("subscribe", "t").load()
    '''.format(str(pid_file))}
    # Before the fix: "did not finish defining the pipeline within 120000 ms" after two minutes.
    assert "raw (streaming table)" in definer.validate(files, env={"SLUICE_PYTHON_TIMEOUT_MS": "120000"})
    pid = int(pid_file.read_text())
    _wait_for(lambda: _gone(pid), "the definer's background child outlived sluice validate")


def test_the_definer_ends_when_sluice_is_killed(definer, tmp_path):
    binary = definer.binary()
    pid_file = tmp_path / "definer.pid"
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: t\nstorage: ./data\n")
    (pipe / "p.py").write_text("import dlt, os\nopen({!r}, 'w').write(str(os.getpid()))\nwhile True:\n    pass\n"
                               .format(str(pid_file)))
    env = dict(os.environ, SLUICE_PYTHONPATH=str(definer.root), SLUICE_PYTHON_TIMEOUT_MS="600000")
    sluice = subprocess.Popen([str(binary), "validate", str(pipe)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the definer did not start")
        pid = int(pid_file.read_text())
        sluice.kill()
        sluice.wait()
        _wait_for(lambda: _gone(pid), "the looping definer outlived a killed sluice")
    finally:
        if sluice.poll() is None:
            sluice.kill()
            sluice.wait()


def test_writes_to_fd_1_and_sys_exit_do_not_break_the_answer(definer):
    [stmts] = definer.statements({"w.py": '''
        import dlt, os, subprocess, sys
        os.write(1, b"raw fd 1\\n")
        subprocess.run([sys.executable, "-c", "print('child output')"])
        sys.stdout.write("stdout\\n")

        @dlt.view
        def v():
            return dlt.read("a")
    '''})
    assert [s[1] for s in stmts] == ["@dlt.view v"]
    e = definer.error({"x.py": "import dlt, sys\n\nsys.exit(0)\n"})
    assert e["line"] == 3 and "sys.exit(0)" in e["message"], e


def test_sql_comments_and_stream_words_in_user_sql_go_through_the_real_parser(definer):
    files = {"s.py": '''
        import dlt

        @dlt.table
        def raw():
            return spark.readStream.format("kafka").option("subscribe", "t").load()

        @dlt.table
        @dlt.expect_or_drop("has_value", "value IS NOT NULL -- a comment in the expectation")
        def streamed():
            return spark.sql("SELECT * FROM STREAM raw -- no parentheses")

        @dlt.table
        def batch():
            return spark.sql("SELECT 'STREAM(' AS s, `stream` FROM (SELECT topic AS `stream` FROM raw) /* STREAM x */")
    '''}
    [stmts] = definer.statements(files)
    assert [s[2].split(" ")[3] for s in stmts] == ["STREAMING", "STREAMING", "MATERIALIZED"]
    out = definer.validate(files)
    assert "streamed (streaming table)" in out and "batch (materialized view)" in out, out


def test_getattr_and_hasattr_on_the_shims_answer_as_python_does(definer):
    # Feature probes (getattr with a default, hasattr) must not fail the pipeline; a use does.
    [stmts] = definer.statements({"g.py": '''
        import dlt
        from pyspark import pipelines as dp
        assert getattr(dlt, "on_event_hook", None) is None and not hasattr(dp, "nosuch")
        try:
            dlt.nosuch
        except AttributeError as e:
            assert "dlt.nosuch is not supported by sluice" in str(e)
        else:
            raise AssertionError("no error")

        @dlt.view
        def v():
            return dlt.read("a")
    '''})
    assert [s[1] for s in stmts] == ["@dlt.view v"]


def test_the_api_surface_goes_through_the_real_parser_and_planner(definer):
    # String comparisons alone let unparseable SQL through once (kafka.* keys): every kind of
    # statement the API generates is given to `sluice validate` here.
    out = definer.validate({"a.py": '''
        import dlt
        from pyspark import pipelines as dp

        @dlt.table(comment="raw -- not a comment", table_properties={"delta.enableChangeDataFeed": "true"},
                   cluster_by=["topic"])
        @dlt.expect("has_value", "value IS NOT NULL")
        @dlt.expect_or_drop("`odd` name", "offset >= 0 -- a comment")
        def raw():
            return (spark.readStream.format("kafka").option("subscribe", "t").option("startingOffsets", "earliest")
                    .option("kafka.client.id", "c").load())

        @dp.materialized_view(name="per_topic")
        def per_topic():
            return spark.sql("SELECT topic, count(*) AS n FROM raw WHERE topic <> 'STREAM(' GROUP BY topic -- no stream")

        dlt.create_streaming_table("latest")
        dlt.apply_changes(target="latest", source="raw", keys=["topic", "partition"], sequence_by="offset",
                          except_column_list=["headers"])

        dlt.create_streaming_table("merged", expect_all_or_fail={"has_topic": "topic IS NOT NULL"})

        @dlt.append_flow(target="merged")
        def from_raw():
            return dlt.read_stream("raw")

        @dlt.table
        def changes():
            return spark.readStream.option("readChangeFeed", "true").option("startingVersion", 0).table("raw")
    '''})
    for dataset in ("raw (streaming table)", "per_topic (materialized view)", "latest (streaming table)",
                    "merged (streaming table)", "changes (streaming table)"):
        assert dataset in out, out


def test_a_union_of_streams_becomes_one_flow_per_stream(definer):
    [stmts] = definer.statements({"u.py": '''
        import dlt

        @dlt.table
        def both():
            a = dlt.read_stream("orders_eu").select("id", "amount")
            b = dlt.read_stream("orders_us").select("order_id", "amount")
            return a.union(b)

        dlt.create_streaming_table("all_orders")

        @dlt.append_flow(target="all_orders")
        def feed():
            a = dlt.read_stream("orders_eu").select("id", "amount")
            return a.unionByName(dlt.read_stream("orders_us").select("amount", "id")).filter("amount > 0")
    '''})
    assert [(line, what, sql) for line, what, sql in stmts] == [
        (4, "@dlt.table both", "CREATE OR REFRESH STREAMING TABLE both AS SELECT id, amount FROM STREAM(orders_eu)"),
        (4, "@dlt.table both (union side 2: flow both_from_orders_us)",
         "CREATE FLOW both_from_orders_us AS INSERT INTO both BY NAME SELECT order_id AS id, amount FROM STREAM(orders_us)"),
        (10, "dlt.create_streaming_table all_orders", "CREATE OR REFRESH STREAMING TABLE all_orders"),
        (12, "@dlt.append_flow feed",
         "CREATE FLOW feed AS INSERT INTO all_orders BY NAME SELECT * FROM (SELECT id, amount FROM "
         "STREAM(orders_eu)) WHERE (amount > 0)"),
        (12, "@dlt.append_flow feed (union side 2: flow feed_from_orders_us)",
         "CREATE FLOW feed_from_orders_us AS INSERT INTO all_orders BY NAME SELECT * FROM (SELECT id, amount FROM "
         "STREAM(orders_us)) WHERE (amount > 0)"),
    ]


def test_union_side_flows_are_named_by_their_source_not_their_position(definer):
    # Progress ids include the flow name: a side keeps its flow when sides are added or reordered.
    def flows(order):
        [stmts] = definer.statements({"u.py": '''
        import dlt

        @dlt.table
        def both():
            s = {"eu": dlt.read_stream("orders_eu"), "us": dlt.read_stream("orders_us"),
                 "k": spark.readStream.format("kafka").option("subscribe", "ev.raw").load()}
            sides = [s[n].selectExpr("CAST(1 AS BIGINT) AS id") for n in %r]
            out = sides[0]
            for x in sides[1:]:
                out = out.union(x)
            return out
        ''' % (order,)})
        return [what.split("flow ")[-1].rstrip(")") for _, what, _ in stmts[1:]]

    assert flows(["eu", "us", "k"]) == ["both_from_orders_us", "both_from_ev_raw"]
    assert flows(["eu", "k", "us"]) == ["both_from_ev_raw", "both_from_orders_us"]
    assert flows(["eu", "us", "us"]) == ["both_from_orders_us", "both_from_orders_us_2"]


def test_a_union_of_streams_whose_columns_are_unknown_is_refused(definer):
    e = definer.error({"u.py": '''
        import dlt

        @dlt.table
        def both():
            return dlt.read_stream("a").union(dlt.read_stream("b"))
    '''})
    assert e["line"] == 4 and "a union of streams needs the columns of every side" in e["message"]
