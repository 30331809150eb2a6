"""Liquid clustering (CLUSTER BY, issue 15): a pipeline's CLUSTER BY table has the protocol and
delta.clustering domain metadata Spark gives the same DDL; Spark's DESCRIBE DETAIL shows its
clustering columns; Spark appends to it and OPTIMIZEs it; sluice's OPTIMIZE clusters the files
not clustered yet along a Hilbert curve (clusteringProvider "liquid") and a point query on a
clustering column then admits fewer files by their stats; sluice continues and optimizes a table
Spark made clustered; deltalake, DuckDB, Spark and sluice read the same rows throughout; a changed
CLUSTER BY commits a new domain as Spark's ALTER TABLE ... CLUSTER BY; `validate` refuses bad
clustering columns at file:line:col. One Spark session for the module."""
import json
import random

import pyarrow as pa
import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import run_sluice, write_pipeline
from readers import read_deltalake, read_duckdb, read_sluice, sluice, sluice_append
from spark_support import spark_session


@pytest.fixture(scope="module")
def spark():
    return spark_session()


def log_actions(path, version):
    return [json.loads(line) for line in
            (path / "_delta_log" / f"{version:020}.json").read_text().splitlines()]


def action(actions, kind):
    found = [a[kind] for a in actions if kind in a]
    assert len(found) == 1, (kind, actions)
    return found[0]


def newest_domain(path, name="delta.clustering"):
    """The domainMetadata of `name` the newest commit that wrote one carries (what is in force
    without a checkpoint in between)."""
    found = None
    for version in sorted(int(f.stem) for f in (path / "_delta_log").glob("*.json")):
        for a in log_actions(path, version):
            if "domainMetadata" in a and a["domainMetadata"]["domain"] == name:
                found = a["domainMetadata"]
    assert found is not None, f"no {name} domain in {path}"
    return found


def protocol_shape(p):
    return (p["minReaderVersion"], p["minWriterVersion"], sorted(p.get("readerFeatures") or []),
            sorted(p.get("writerFeatures") or []))


def rows(table, key="id"):
    return sorted(table.select(sorted(table.column_names)).to_pylist(), key=lambda r: r[key])


def spark_rows(spark, path, key="id"):
    df = spark.read.format("delta").load(str(path))
    return sorted((r.asDict() for r in df.select(sorted(df.columns)).collect()), key=lambda r: r[key])


def files_admitting(path, column, value):
    """The live files whose min/max stats of `column` admit `value` (what a skipping reader
    opens, read from the log by deltalake), and all live files."""
    adds = pa.table(DeltaTable(str(path)).get_add_actions(flatten=True)).to_pylist()
    hit = [a for a in adds if a[f"min.{column}"] is None or a[f"min.{column}"] <= value <= a[f"max.{column}"]]
    return len(hit), len(adds)


def produce(bootstrap, topic, values):
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for v in values:
        producer.produce(topic, value=json.dumps(v).encode())
    assert producer.flush(60) == 0


SILVER = """CREATE OR REFRESH STREAMING TABLE events
CLUSTER BY ({cluster})
AS SELECT e.id, e.user_id, e.amount
   FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, user_id STRING, amount DOUBLE') AS e
         FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest'));
"""


def pipeline(tmp_path, bootstrap, topic, cluster):
    pipe = write_pipeline(tmp_path / "pipe", f"name: clustered\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "events.sql").write_text(SILVER.format(cluster=cluster, topic=topic))
    return pipe


def run_once(pipe):
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    return result


def test_validate_refuses_bad_clustering_columns_at_file_line_col(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: bad\nstorage: ./data\n"
                                             "kafka:\n  default: {bootstrap.servers: '127.0.0.1:1'}\n")
    (pipe / "t.sql").write_text(
        "CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => 't');\n"
        "CREATE STREAMING TABLE a CLUSTER BY (topic, nope) AS SELECT * FROM STREAM(raw);\n"
        "CREATE STREAMING TABLE b CLUSTER BY (value) AS SELECT * FROM STREAM(raw);\n")
    result = run_sluice("validate", pipe)
    assert result.returncode == 1
    assert "t.sql:2:45: error: table 'a': CLUSTER BY names 'nope', which is not a column" in result.stderr, \
        result.stderr
    assert "t.sql:3:38: error: table 'b': CLUSTER BY is not supported for column 'value' of type binary" \
        in result.stderr, result.stderr
    (pipe / "t.sql").write_text(
        "CREATE STREAMING TABLE raw PARTITIONED BY (topic) CLUSTER BY (partition)\n"
        "AS SELECT * FROM STREAM read_kafka(topic => 't');\n")
    result = run_sluice("validate", pipe)
    assert result.returncode == 1
    assert "t.sql:1:63: error: CLUSTER BY and PARTITIONED BY cannot be used together" in result.stderr, \
        result.stderr
    # Nothing was created.
    assert not (pipe / "data" / "tables").exists()


def test_optimize_cuts_a_clustered_table_into_files_of_the_target_size(tmp_path):
    """sluice's clustering OPTIMIZE with a small target: several files of about the target, the
    Hilbert order (over one column: its sort order) running on across files, so each file holds
    its own range of user_id, a point query's scan opens one or two of them, and deltalake and
    DuckDB read the same rows."""
    rng = random.Random(15)
    n, users, target = 20_000, 400, 32 * 1024
    data = [{"id": i, "user_id": f"u{rng.randrange(users):04}", "amount": round(rng.uniform(0, 1000), 2)}
            for i in range(n)]
    table = tmp_path / "t"
    for part in range(4):  # four files, each with (nearly) every user
        chunk = pa.Table.from_pylist(data[part::4], pa.schema([("id", pa.int64()), ("user_id", pa.string()),
                                                               ("amount", pa.float64())]))
        sluice_append(table, chunk, *(["--cluster-by", "user_id"] if part == 0 else []))
    value = data[n // 3]["user_id"]
    assert files_admitting(table, "user_id", value) == (4, 4)

    out = json.loads(sluice("table", "optimize", table, "--format", "json",
                            "--target-file-size", target).stdout)
    assert out["committed"] and out["clusterBy"] == ["user_id"], out
    adds = [a["add"] for a in log_actions(table, out["version"]) if "add" in a]
    sizes = sorted(a["size"] for a in adds)
    assert len(adds) >= 4, sizes
    # About the target: none past 1.5 times it, and at most one (the curve's end) below half of it.
    assert sizes[-1] <= target * 3 // 2 and sum(s < target // 2 for s in sizes) <= 1, sizes
    # Each file its own range of the clustering key (touching where one user's rows straddle two).
    ranges = sorted((json.loads(a["stats"])["minValues"]["user_id"], json.loads(a["stats"])["maxValues"]["user_id"])
                    for a in adds)
    assert all(ranges[i - 1][1] <= ranges[i][0] for i in range(1, len(ranges))), ranges
    admitted, total = files_admitting(table, "user_id", value)
    assert total == len(adds) and admitted <= 2, (admitted, total)
    # sluice's own scan skips the rest.
    query = sluice("sql", table, f"SELECT count(*) AS n FROM t WHERE user_id = '{value}'", "--format", "json",
                   "--scan-report")
    assert query.returncode == 0, query.stderr
    scan = json.loads(query.stderr.strip().splitlines()[-1])
    assert scan["filesTotal"] == len(adds) and scan["filesScanned"] <= 2, scan
    assert int(json.loads(query.stdout)["n"]) == sum(r["user_id"] == value for r in data)
    # The same rows, to every reader.
    for read in (read_deltalake, read_duckdb):
        assert rows(read(table)) == sorted(data, key=lambda r: r["id"])


@pytest.mark.slow  # Spark
def test_pipeline_clustered_table_is_sparks_shape_and_clusters(spark, tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, bootstrap, topic, "user_id, amount")
    rng = random.Random(7)
    # Four runs, each one file with every user in it (random order): no file can be skipped.
    for run in range(4):
        produce(bootstrap, topic, [{"id": run * 200 + i, "user_id": f"u{rng.randrange(50):02}",
                                    "amount": round(rng.uniform(0, 100), 2)} for i in range(200)])
        run_once(pipe)
    table = pipe / "data" / "tables" / "events"

    # The log, against a table Spark creates with the same DDL.
    theirs = tmp_path / "spark_events"
    spark.sql(f"CREATE TABLE delta.`{theirs}` (id BIGINT, user_id STRING, amount DOUBLE) USING delta "
              f"CLUSTER BY (user_id, amount)")
    ours_0, theirs_0 = log_actions(table, 0), log_actions(theirs, 0)
    assert protocol_shape(action(ours_0, "protocol")) == protocol_shape(action(theirs_0, "protocol"))
    ours_domain, theirs_domain = action(ours_0, "domainMetadata"), action(theirs_0, "domainMetadata")
    assert ours_domain == theirs_domain
    assert json.loads(ours_domain["configuration"]) == {
        "clusteringColumns": [["user_id"], ["amount"]], "domainName": "delta.clustering"}
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{table}`").collect()[0]
    assert detail["clusteringColumns"] == ["user_id", "amount"]
    assert {"clustering", "domainMetadata"} <= set(detail["tableFeatures"])

    expected = rows(read_duckdb(table))
    assert len(expected) == 800
    before = files_admitting(table, "user_id", "u17")
    assert before[0] == before[1] >= 4, before  # every file holds every user

    # sluice's OPTIMIZE: small output files, so the clustered rows spread over several.
    out = json.loads(sluice("table", "optimize", table, "--format", "json", "--target-file-size", "4096").stdout)
    assert out["committed"] and out["clusterBy"] == ["user_id", "amount"], out
    info = action(log_actions(table, out["version"]), "commitInfo")
    assert info["operation"] == "OPTIMIZE"
    assert info["operationParameters"]["clusterBy"] == '["user_id","amount"]'
    adds = [a["add"] for a in log_actions(table, out["version"]) if "add" in a]
    assert len(adds) > 1 and all(a["clusteringProvider"] == "liquid" and a["dataChange"] is False for a in adds)
    after = files_admitting(table, "user_id", "u17")
    assert 0 < after[0] < after[1], (before, after)  # some clustered files are skipped
    for read in (read_deltalake, read_duckdb, read_sluice):
        assert rows(read(table)) == expected
    assert spark_rows(spark, table) == expected

    # Spark appends to sluice's table and clusters it with its own OPTIMIZE; sluice reads it.
    spark.sql(f"INSERT INTO delta.`{table}` VALUES (1000, 'u99', 1.5), (1001, 'u00', 2.5)")
    spark.sql(f"OPTIMIZE delta.`{table}`")
    expected += [{"amount": 1.5, "id": 1000, "user_id": "u99"}, {"amount": 2.5, "id": 1001, "user_id": "u00"}]
    expected.sort(key=lambda r: r["id"])
    assert rows(read_sluice(table)) == expected == rows(read_deltalake(table))
    assert all(a.get("clusteringProvider") == "liquid" for a in
               (x["add"] for x in log_actions(table, DeltaTable(str(table)).version()) if "add" in x))

    # A new CLUSTER BY in the definition: Spark's ALTER TABLE ... CLUSTER BY commit, data kept.
    (pipe / "events.sql").write_text(SILVER.format(cluster="id", topic=topic))
    run_once(pipe)
    version = DeltaTable(str(table)).version()
    changed = log_actions(table, version)
    assert action(changed, "commitInfo")["operation"] == "CLUSTER BY"
    assert action(changed, "commitInfo")["operationParameters"] == {
        "oldClusteringColumns": "user_id,amount", "newClusteringColumns": "id"}
    assert spark.sql(f"DESCRIBE DETAIL delta.`{table}`").collect()[0]["clusteringColumns"] == ["id"]
    assert rows(read_duckdb(table)) == expected


@pytest.mark.slow  # Spark
def test_sluice_continues_and_optimizes_a_spark_clustered_table(spark, tmp_path):
    path = tmp_path / "t"
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT, k STRING) USING delta CLUSTER BY (k)")
    for i in range(3):
        spark.createDataFrame([(i * 10 + j, f"k{(i * 7 + j) % 5}") for j in range(10)], "id long, k string") \
            .write.format("delta").mode("append").save(str(path))
    domain = action(log_actions(path, 0), "domainMetadata")
    # sluice appends: the domain and protocol stay as Spark wrote them.
    sluice_append(path, pa.table({"id": pa.array([100, 101], pa.int64()), "k": ["k9", "k0"]}))
    snapshot = DeltaTable(str(path))
    assert {"clustering", "domainMetadata"} <= set(snapshot.protocol().writer_features)
    info = json.loads(sluice("table", "describe", path, "--format", "json").stdout)
    assert info["clusteringColumns"] == ["k"]
    files_before = len(DeltaTable(str(path)).file_uris())
    out = json.loads(sluice("table", "optimize", path, "--format", "json").stdout)
    assert out["committed"] and out["numFilesRemoved"] == files_before, out
    adds = [a["add"] for a in log_actions(path, out["version"]) if "add" in a]
    assert adds and all(a["clusteringProvider"] == "liquid" for a in adds)
    assert json.loads(adds[0]["tags"]["ZCUBE_ZORDER_BY"]) == ["k"]
    expected = spark_rows(spark, path)
    assert len(expected) == 32
    assert rows(read_deltalake(path)) == expected == rows(read_duckdb(path))
    # Spark's DESCRIBE DETAIL and its own OPTIMIZE after sluice's: nothing left to cluster.
    assert spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]["clusteringColumns"] == ["k"]
    spark.sql(f"OPTIMIZE delta.`{path}`")
    assert spark_rows(spark, path) == expected
    # --zorder-by is refused on a clustered table, as Spark refuses it.
    refused = sluice("table", "optimize", path, "--zorder-by", "id")
    assert refused.returncode == 1 and "clustered table" in refused.stderr, refused.stderr
    # The domain Spark wrote is the one in force after everything sluice committed: the newest
    # delta.clustering domain in the log is Spark's, unchanged.
    assert json.loads(domain["configuration"])["clusteringColumns"] == [["k"]]
    assert newest_domain(path) == domain
    assert json.loads(sluice("table", "describe", path, "--format", "json").stdout)["clusteringColumns"] == ["k"]
