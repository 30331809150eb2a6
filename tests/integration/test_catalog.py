"""Comments, table properties and column tags as the pipeline's definitions change: the next run
commits Spark's ALTER TABLE shapes (SET/UNSET TBLPROPERTIES, CHANGE COLUMN, the protocol raised
for the features a property turns on) or refuses what cannot change in place; tags follow column
lineage; `sluice catalog` agrees with deltalake's view of the same tables. Checked with deltalake
and Spark."""
import json
import os

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest import run_sluice
from spark_support import spark_session
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

pytestmark = pytest.mark.slow  # one JVM for the module

USERS = """
CREATE STREAMING TABLE users (id BIGINT, email STRING {email_extra}, country STRING)
{users_extra}
AS SELECT value.* FROM STREAM read_kafka(topic => '{topic}', value_format => 'json',
                                         value_schema => 'id BIGINT, email STRING, country STRING');
"""

CONTACTS = """
CREATE MATERIALIZED VIEW contacts
AS SELECT id, email AS contact, upper(email) AS shout, sha2(email, 256) AS email_hash,
          country FROM users;
CREATE MATERIALIZED VIEW per_country
AS SELECT country, count(email) AS emails, max(email) AS last_email FROM users GROUP BY country;
"""


@pytest.fixture(scope="module")
def spark():
    return spark_session()


def write_sql(pipe, topic, email_extra="", users_extra="", rest=""):
    (pipe / "p.sql").write_text(USERS.format(topic=topic, email_extra=email_extra, users_extra=users_extra) + rest)


def run_once(pipe):
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    return result


def operations(path):
    return [(h["version"], h["operation"]) for h in sorted(DeltaTable(str(path)).history(), key=lambda h: h["version"])]


def field_metadata(path, column):
    return next(f for f in DeltaTable(str(path)).schema().fields if f.name == column).metadata


def test_changed_definitions_are_committed_as_spark_alters_tables(tmp_path, spark, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "alter", bootstrap)
    users = pipe / "data" / "tables" / "users"
    produce_values(bootstrap, topic, [{"id": 1, "email": "a@x.org", "country": "FR"}])
    write_sql(pipe, topic)
    run_once(pipe)
    # The keys the definition set are recorded, so a later run unsets only those.
    assert DeltaTable(str(users)).metadata().configuration == {"sluice.definedProperties": "[]"}
    created = DeltaTable(str(users)).version()

    # Comment, a column comment, and two properties that need table features.
    write_sql(pipe, topic, email_extra="COMMENT 'where to write'",
              users_extra="COMMENT 'people' TBLPROPERTIES ('delta.enableChangeDataFeed' = 'true', "
                          "'delta.enableDeletionVectors' = 'true')")
    result = run_once(pipe)
    dt = DeltaTable(str(users))
    assert dt.metadata().description == "people"
    assert dt.metadata().configuration == {
        "delta.enableChangeDataFeed": "true", "delta.enableDeletionVectors": "true",
        "sluice.definedProperties": '["delta.enableChangeDataFeed","delta.enableDeletionVectors"]'}
    assert field_metadata(users, "email") == {"comment": "where to write"}
    protocol = dt.protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (3, 7)
    assert "deletionVectors" in protocol.reader_features
    assert {"deletionVectors", "changeDataFeed"} <= set(protocol.writer_features)
    ops = operations(users)
    assert ops[created + 1:created + 3] == [(created + 1, "SET TBLPROPERTIES"), (created + 2, "CHANGE COLUMN")]
    # Nothing else was committed by that run: the topic had no new records.
    assert ops[-1][0] == created + 2
    # Spark reads the result as it would have written it.
    path = str(users)
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{path}`").collect()[0]
    assert detail["description"] == "people"
    assert detail["properties"]["delta.enableDeletionVectors"] == "true"
    comments = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE delta.`{path}`").collect()}
    assert comments["email"] == "where to write"
    assert [r["id"] for r in spark.read.format("delta").load(path).collect()] == [1]
    events = run_sluice("events", pipe, "--type", "table_definition_change", "--format", "json")
    assert events.returncode == 0, events.stderr
    assert "delta.enableChangeDataFeed=true" in events.stdout

    # The same definition again: no commit.
    run_once(pipe)
    assert DeltaTable(str(users)).version() == created + 2

    # A property and the comment removed: Spark's UNSET TBLPROPERTIES (the features stay).
    write_sql(pipe, topic, email_extra="COMMENT 'where to write'",
              users_extra="TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    run_once(pipe)
    dt = DeltaTable(str(users))
    assert operations(users)[-1] == (created + 3, "UNSET TBLPROPERTIES")
    assert dt.metadata().configuration == {"delta.enableDeletionVectors": "true",
                                           "sluice.definedProperties": '["delta.enableDeletionVectors"]'}
    assert dt.metadata().description is None
    assert "changeDataFeed" in dt.protocol().writer_features

    # A property an admin set with Spark outside the definition stays (no commit); a delta.*
    # property sluice does not honour is refused, naming the table and the key.
    spark.sql(f"ALTER TABLE delta.`{users}` SET TBLPROPERTIES ('delta.logRetentionDuration' = 'interval 60 days')")
    altered = DeltaTable(str(users)).version()
    run_once(pipe)
    assert DeltaTable(str(users)).version() == altered
    assert DeltaTable(str(users)).metadata().configuration["delta.logRetentionDuration"] == "interval 60 days"
    write_sql(pipe, topic, email_extra="COMMENT 'where to write'",
              users_extra="TBLPROPERTIES ('delta.enableDeletionVectors' = 'true', "
                          "'delta.enableInCommitTimestamps' = 'true')")
    refused = run_sluice("run", pipe, "--once")
    assert refused.returncode != 0
    assert ("table 'users': table property 'delta.enableInCommitTimestamps' is not supported by sluice"
            in refused.stderr), refused.stderr
    assert DeltaTable(str(users)).version() == altered

    # Partitioning cannot change in place: refused, naming the table, nothing committed.
    write_sql(pipe, topic, users_extra="PARTITIONED BY (country)")
    refused = run_sluice("run", pipe, "--once")
    assert refused.returncode != 0
    assert "table 'users' is partitioned by () but its definition says PARTITIONED BY (country)" in refused.stderr
    assert DeltaTable(str(users)).version() == altered


def test_tags_follow_column_lineage_and_the_catalog_matches_deltalake(tmp_path, spark, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "tags", bootstrap)
    produce_values(bootstrap, topic, [{"id": i, "email": f"u{i}@x.org", "country": "FR" if i % 2 else "DE"}
                                      for i in range(1, 6)])
    write_sql(pipe, topic, email_extra="COMMENT 'login' TAGS ('pii' = 'email', 'gdpr')", rest=CONTACTS)
    run_once(pipe)
    tables = pipe / "data" / "tables"
    assert field_metadata(tables / "users", "email") == {"comment": "login", "sluice.tag.pii": "email",
                                                         "sluice.tag.gdpr": ""}
    renamed = {"sluice.tag.pii": "email", "sluice.tag.pii.derivation": "renamed", "sluice.tag.pii.from": "users.email",
               "sluice.tag.gdpr": "", "sluice.tag.gdpr.derivation": "renamed", "sluice.tag.gdpr.from": "users.email"}
    assert field_metadata(tables / "contacts", "contact") == renamed
    derived = {k: v.replace("renamed", "derived") for k, v in renamed.items()}
    assert field_metadata(tables / "contacts", "shout") == derived
    assert field_metadata(tables / "per_country", "last_email") == derived
    # A digest or a count keeps nothing of the address: no tag.
    assert field_metadata(tables / "contacts", "email_hash") == {}
    assert field_metadata(tables / "per_country", "emails") == {}
    assert field_metadata(tables / "contacts", "country") == {}
    # Spark reads the tagged table (its metadata is opaque to Spark, and kept).
    assert spark.read.format("delta").load(str(tables / "contacts")).count() == 5

    result = run_sluice("catalog", pipe, "--format", "json")
    assert result.returncode == 0, result.stderr
    catalog = {d["name"]: d for d in json.loads(result.stdout)["datasets"]}
    assert set(catalog) == {"users", "contacts", "per_country"}
    for name in catalog:
        dt = DeltaTable(str(tables / name))
        entry = catalog[name]
        actions = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
        assert entry["version"] == dt.version()
        assert entry["num_files"] == len(actions)
        assert entry["num_rows"] == sum(a["num_records"] for a in actions)
        assert entry["size_bytes"] == sum(a["size_bytes"] for a in actions)
        assert [c["name"] for c in entry["columns"]] == [f.name for f in dt.schema().fields]
        # Delta's commit timestamp: the commit file's modification time (no in-commit timestamps).
        commit = tables / name / "_delta_log" / f"{dt.version():020d}.json"
        assert entry["last_update_ms"] == int(os.stat(commit).st_mtime_ns // 1_000_000)
        assert 0 <= entry["freshness_seconds"] < 600
    assert catalog["users"]["comment"] is None
    assert catalog["contacts"]["inputs"] == ["users"]
    assert catalog["users"]["inputs"] == [f"kafka:{topic}"]
    contact = next(c for c in catalog["contacts"]["columns"] if c["name"] == "contact")
    assert contact["tags"] == {"pii": {"value": "email", "derivation": "renamed", "from": ["users.email"]},
                               "gdpr": {"value": "", "derivation": "renamed", "from": ["users.email"]}}
    assert contact["lineage"] == ["users.email"] and contact["type"] == "string"
    email = next(c for c in catalog["users"]["columns"] if c["name"] == "email")
    assert email["comment"] == "login" and email["tags"] == {"pii": {"value": "email"}, "gdpr": {"value": ""}}
    text = run_sluice("catalog", pipe)
    assert text.returncode == 0, text.stderr
    assert "- contact string [gdpr, renamed] [pii=email, renamed] <- users.email" in text.stdout

    # A tag added later reaches the existing tables downstream by CHANGE COLUMN commits.
    (pipe / "p.sql").write_text((pipe / "p.sql").read_text().replace(
        "country STRING)", "country STRING TAGS ('pii' = 'location'))", 1))
    run_once(pipe)
    assert field_metadata(tables / "users", "country") == {"sluice.tag.pii": "location"}
    assert ("CHANGE COLUMN" in [op for _, op in operations(tables / "users")])
    assert field_metadata(tables / "per_country", "country")["sluice.tag.pii.derivation"] == "identity"


def test_tags_on_a_view_column_are_refused_at_their_line(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = kafka_pipeline(tmp_path, "viewtags", bootstrap)
    write_sql(pipe, topic, rest="CREATE VIEW v (e STRING TAGS ('pii')) AS SELECT email AS e FROM users;\n")
    result = run_sluice("validate", pipe)
    assert result.returncode != 0
    assert "p.sql:6:" in result.stderr and "TAGS on column 'e' of view 'v'" in result.stderr, result.stderr
