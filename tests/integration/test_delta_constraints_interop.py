"""Tables Spark and delta-rs made with CHECK constraints, NOT NULL columns, append-only and
table features sluice does not implement: sluice enforces what it can on every write, refuses
the rest by name, and a refused write leaves the table exactly as the other engine reads it."""
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import run_sluice
from readers import read_deltalake, sluice, sluice_append
from spark_support import read_delta_with_spark, spark_session
from test_sql_pipeline_e2e import kafka_pipeline, produce_values


def ids_by_spark(path):
    return sorted(read_delta_with_spark(path).column("id").to_pylist())


def test_spark_check_and_not_null_constraints_are_enforced_on_append(tmp_path):
    spark = spark_session()
    path = tmp_path / "c"
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT NOT NULL, name STRING) USING delta")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1, 'a')")
    spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT id_positive CHECK (id > 0)")
    spark.sql(f"ALTER TABLE delta.`{path}` ADD CONSTRAINT name_short CHECK (length(name) < 5)")
    version = DeltaTable(str(path)).version()

    sluice_append(path, pa.table({"id": pa.array([2], pa.int64()), "name": ["b"]}))
    bad_check = sluice_append(path, pa.table({"id": pa.array([3, -4], pa.int64()),
                                              "name": ["c", "d"]}), check=False)
    assert bad_check.returncode != 0
    assert "CHECK constraint id_positive (id > 0) violated by row with values:\n - id : -4" \
        in bad_check.stderr, bad_check.stderr
    # NULL is a violation, as Spark has it (its own insert of a NULL name fails the same way).
    null_check = sluice_append(path, pa.table({"id": pa.array([5], pa.int64()),
                                               "name": pa.array([None], pa.string())}), check=False)
    # (the expression as Spark stored it: "length ( name ) < 5")
    assert "CHECK constraint name_short (length" in null_check.stderr, null_check.stderr
    assert "violated by row with values:\n - name : null" in null_check.stderr, null_check.stderr
    not_null = sluice_append(path, pa.table({"id": pa.array([None, 6], pa.int64()),
                                             "name": ["e", "f"]}), check=False)
    assert "NOT NULL constraint violated for column: id. 1 of 2 row(s)" in not_null.stderr, \
        not_null.stderr
    # Only the good append landed; Spark and delta-rs agree.
    assert DeltaTable(str(path)).version() == version + 1
    assert ids_by_spark(path) == [1, 2]
    assert sorted(read_deltalake(path).column("id").to_pylist()) == [1, 2]


def test_spark_table_with_a_writer_feature_sluice_lacks_is_read_but_not_written(tmp_path):
    spark = spark_session()
    path = tmp_path / "rt"
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT) USING delta "
              "TBLPROPERTIES ('delta.enableRowTracking' = 'true')")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1)")
    describe = sluice("table", "describe", path)
    assert describe.returncode == 0, describe.stderr
    refused = sluice_append(path, pa.table({"id": pa.array([2], pa.int64())}), check=False)
    assert refused.returncode != 0
    assert "requires Delta writer table feature(s) that sluice does not implement: " in refused.stderr
    assert "rowTracking" in refused.stderr, refused.stderr
    assert ids_by_spark(path) == [1]


def test_spark_generated_column_is_refused_by_name(tmp_path):
    spark = spark_session()
    path = tmp_path / "gen"
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT, twice BIGINT GENERATED ALWAYS AS (id * 2)) "
              "USING delta")
    spark.sql(f"INSERT INTO delta.`{path}` (id) VALUES (1)")
    refused = sluice_append(path, pa.table({"id": pa.array([2], pa.int64()),
                                            "twice": pa.array([5], pa.int64())}), check=False)
    assert refused.returncode != 0
    assert "generatedColumns (twice uses generatedColumns)" in refused.stderr, refused.stderr
    assert ids_by_spark(path) == [1]


def test_spark_deletion_vectors_table_is_read_and_appended_to(tmp_path):
    spark = spark_session()
    path = tmp_path / "dv"
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT) USING delta "
              "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1), (2)")
    describe = sluice("table", "describe", path)
    assert describe.returncode == 0, describe.stderr
    sluice_append(path, pa.table({"id": pa.array([3], pa.int64())}))
    assert ids_by_spark(path) == [1, 2, 3]


def test_spark_append_only_table_takes_appends_and_refuses_overwrite(tmp_path):
    spark = spark_session()
    path = tmp_path / "ao"
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT) USING delta "
              "TBLPROPERTIES ('delta.appendOnly' = 'true')")
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (1)")
    sluice_append(path, pa.table({"id": pa.array([2], pa.int64())}))
    refused = sluice_append(path, pa.table({"id": pa.array([3], pa.int64())}), "--mode",
                            "overwrite", check=False)
    assert refused.returncode != 0
    assert "only allows appends (delta.appendOnly = true)" in refused.stderr, refused.stderr
    assert ids_by_spark(path) == [1, 2]


def test_deltalake_check_constraint_is_enforced(tmp_path):
    path = tmp_path / "dl"
    write_deltalake(str(path), pa.table({"id": pa.array([1], pa.int64()), "v": [1.5]}))
    DeltaTable(str(path)).alter.add_constraint({"v_small": "v < 10"})
    sluice_append(path, pa.table({"id": pa.array([2], pa.int64()), "v": [2.5]}))
    refused = sluice_append(path, pa.table({"id": pa.array([3], pa.int64()), "v": [99.0]}),
                            check=False)
    assert refused.returncode != 0
    assert "CHECK constraint v_small (v < 10) violated by row with values:\n - v : 99" \
        in refused.stderr, refused.stderr
    assert sorted(read_deltalake(path).column("id").to_pylist()) == [1, 2]


def test_sluice_table_with_a_check_constraint_is_writer_version_3_for_spark_and_deltalake(
        tmp_path, bootstrap, new_topic):
    """PROTOCOL.md "CHECK Constraints": a table with delta.constraints.* needs writer version 3;
    then Spark and delta-rs, writing to the table sluice made, enforce the constraint."""
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "checks", bootstrap)
    (pipe / "t.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE amounts "
        "TBLPROPERTIES ('delta.constraints.amount_positive' = 'amount > 0') AS "
        "SELECT CAST(get_json_object(CAST(value AS STRING), '$.amount') AS BIGINT) AS amount "
        f"FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    produce_values(bootstrap, topic, [{"amount": 5}])
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    path = pipe / "data" / "tables" / "amounts"
    protocol = DeltaTable(str(path)).protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 3)
    spark = spark_session()
    spark.sql(f"INSERT INTO delta.`{path}` VALUES (7)")
    with pytest.raises(Exception, match="amount > 0"):
        spark.sql(f"INSERT INTO delta.`{path}` VALUES (-1)")
    with pytest.raises(Exception, match="failed validation check"):
        write_deltalake(str(path), pa.table({"amount": pa.array([-2], pa.int64())}), mode="append")
    assert sorted(read_deltalake(path).column("amount").to_pylist()) == [5, 7]
