"""Deletion vectors (delta.enableDeletionVectors) between sluice and delta-spark: sluice reads
tables whose DELETE / UPDATE / MERGE Spark recorded in deletion vectors (through a checkpoint
too) as Spark and deltalake read them; sluice's own DELETE / UPDATE / MERGE on such a table mark
rows in vectors (no file rewritten) with Spark's metrics, read back identically by Spark and
deltalake, and Spark's DML continues on top of sluice's vectors."""
import json
import shutil

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from readers import read_sluice, sluice
from spark_support import spark_session

STATEMENTS = [
    "DELETE FROM {t} WHERE v % 3 = 0 AND part = 'a'",
    "UPDATE {t} SET v = v + 1000, name = upper(name) WHERE id % 4 = 1",
    "MERGE INTO {t} AS t USING {src} AS s ON t.id = s.id"
    " WHEN MATCHED AND s.v < 0 THEN DELETE"
    " WHEN MATCHED THEN UPDATE SET *"
    " WHEN NOT MATCHED THEN INSERT *",
]
# Metrics both engines must agree on (row counts, and vectors per file: both start from the
# same files).
METRICS = {
    "DELETE": ["numDeletedRows", "numCopiedRows", "numRemovedFiles", "numAddedFiles",
               "numDeletionVectorsAdded", "numDeletionVectorsRemoved",
               "numDeletionVectorsUpdated"],
    "UPDATE": ["numUpdatedRows", "numCopiedRows", "numRemovedFiles",
               "numDeletionVectorsAdded", "numDeletionVectorsRemoved",
               "numDeletionVectorsUpdated"],
    "MERGE": ["numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted",
              "numTargetRowsCopied", "numTargetFilesRemoved",
              "numTargetDeletionVectorsAdded", "numTargetDeletionVectorsRemoved",
              "numTargetDeletionVectorsUpdated"],
}


def model_rows(rows, statement_index):
    """The Python model of STATEMENTS[statement_index] applied to `rows` (dicts)."""
    if statement_index == 0:
        return [r for r in rows if not (r["v"] % 3 == 0 and r["part"] == "a")]
    if statement_index == 1:
        return [dict(r, v=r["v"] + 1000, name=r["name"].upper()) if r["id"] % 4 == 1 else r
                for r in rows]
    source = {2: ("a", -2, "m2"), 7: ("b", 77, "m7"), 99: ("b", 99, "m99")}
    out = []
    for r in rows:
        if r["id"] in source:
            part, v, name = source[r["id"]]
            if v >= 0:
                out.append({"id": r["id"], "part": part, "v": v, "name": name})
        else:
            out.append(r)
    present = {r["id"] for r in rows}
    for k, (part, v, name) in source.items():
        if k not in present:
            out.append({"id": k, "part": part, "v": v, "name": name})
    return out


def read_deltalake(path):
    """deltalake's DataFusion scan (to_pyarrow_table() refuses the deletionVectors feature)."""
    from deltalake import QueryBuilder
    reader = QueryBuilder().register("t", DeltaTable(str(path))).execute("SELECT * FROM t")
    return pa.table(reader.read_all())


def ordered(rows):
    return sorted(rows, key=lambda r: r["id"])


def spark_rows(spark, path):
    return ordered(r.asDict() for r in spark.read.format("delta").load(str(path)).collect())


def last_commit(path):
    entry = DeltaTable(str(path)).history(1)[0]
    return entry["operation"], {k: str(v) for k, v in entry.get("operationMetrics", {}).items()}


def log_actions(path, version):
    text = (path / "_delta_log" / f"{version:020d}.json").read_text()
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def spark():
    return spark_session()


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory):
    """A partitioned table with deletion vectors, written by Spark (two files per partition,
    a checkpoint every 3 commits), copied: sluice changes one copy, Spark the other."""
    root = tmp_path_factory.mktemp("dv")
    base = root / "base"
    spark.sql(f"CREATE TABLE delta.`{base}` (id BIGINT, part STRING, v BIGINT, name STRING) "
              "USING delta PARTITIONED BY (part) TBLPROPERTIES "
              "('delta.enableDeletionVectors' = 'true', 'delta.checkpointInterval' = '3')")
    rows = [(i, "a" if i % 2 else "b", i * 10 + i % 7, f"n{i}") for i in range(1, 41)]
    df = spark.createDataFrame(rows, "id BIGINT, part STRING, v BIGINT, name STRING")
    df.repartition(2).write.format("delta").mode("append").save(str(base))
    ours, theirs = root / "sluice", root / "spark"
    shutil.copytree(base, ours)
    shutil.copytree(base, theirs)
    model = [{"id": i, "part": p, "v": v, "name": n} for i, p, v, n in rows]
    source = root / "src"  # the MERGE source (sluice has no FROM VALUES)
    write_deltalake(str(source), pa.table({"id": [2, 7, 99], "part": ["a", "b", "b"],
                                           "v": [-2, 77, 99], "name": ["m2", "m7", "m99"]}))
    return ours, theirs, model, source


@pytest.mark.slow
def test_dml_marks_rows_in_deletion_vectors_as_spark_does(spark, tables):
    ours, theirs, model, source = tables
    for i, statement in enumerate(STATEMENTS):
        statement = statement.replace("{src}", f"delta.`{source}`")
        version = DeltaTable(str(ours)).version()
        result = sluice("sql", ours, statement.replace("{t}", f"delta.`{ours}`"))
        assert result.returncode == 0, (statement, result.stderr)
        spark.sql(statement.replace("{t}", f"delta.`{theirs}`"))
        model = model_rows(model, i)
        assert ordered(read_deltalake(ours).to_pylist()) == ordered(model), statement
        assert spark_rows(spark, ours) == ordered(model), statement
        op, metrics = last_commit(ours)
        spark_op, spark_metrics = last_commit(theirs)
        assert op == spark_op, statement
        for name in METRICS[op]:
            assert metrics.get(name) == spark_metrics.get(name), (statement, name, metrics,
                                                                  spark_metrics)
        # No data file was rewritten: every file removed comes back with a vector.
        actions = log_actions(ours, version + 1)
        re_added = {a["add"]["path"] for a in actions if "add" in a and "deletionVector" in a["add"]}
        removed = {a["remove"]["path"] for a in actions if "remove" in a}
        assert re_added and removed == re_added, (statement, actions)
    # Spark's own DML on top of sluice's vectors (it merges them into new ones).
    spark.sql(f"DELETE FROM delta.`{ours}` WHERE id IN (3, 5, 10)")
    model = [r for r in model if r["id"] not in (3, 5, 10)]
    assert spark_rows(spark, ours) == ordered(model)
    assert ordered(read_deltalake(ours).to_pylist()) == ordered(model)
    assert ordered(read_sluice(ours).to_pylist()) == ordered(model)


@pytest.mark.slow
def test_reads_what_spark_deleted_with_deletion_vectors(spark, tables):
    ours, theirs, model, source = tables
    for i, statement in enumerate(STATEMENTS):
        statement = statement.replace("{src}", f"delta.`{source}`")
        if DeltaTable(str(theirs)).version() < 2 + i:  # the other test ran them already
            spark.sql(statement.replace("{t}", f"delta.`{theirs}`"))
        model = model_rows(model, i)
    assert any("deletionVector" in a.get("add", {}) for a in log_actions(theirs, 2))
    assert list(theirs.glob("_delta_log/*.checkpoint.parquet")), "Spark wrote no checkpoint"
    expected = ordered(model)
    assert spark_rows(spark, theirs) == expected
    assert ordered(read_deltalake(theirs).to_pylist()) == expected
    assert ordered(read_sluice(theirs).to_pylist()) == expected
    # `sluice sql` SELECT, and sluice's DML reading the table (a DELETE whose rows come from
    # Spark's vectors) agree with the model.
    result = sluice("sql", theirs, f"SELECT count(*) AS n, sum(v) AS s FROM delta.`{theirs}`",
                    "--format", "json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.splitlines()[0])
    assert (int(got["n"]), int(got["s"])) == (len(model), sum(r["v"] for r in model))
    result = sluice("sql", theirs, f"DELETE FROM delta.`{theirs}` WHERE part = 'b' AND id < 20")
    assert result.returncode == 0, result.stderr
    expected = ordered(r for r in model if not (r["part"] == "b" and r["id"] < 20))
    assert spark_rows(spark, theirs) == expected
    assert ordered(read_sluice(theirs).to_pylist()) == expected
