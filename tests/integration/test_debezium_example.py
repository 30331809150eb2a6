"""examples/debezium run as a user would: its generator produces Debezium change events (snapshot
reads, creates, updates, deletes with their tombstones, re-inserts, duplicates, reordering) to
a topic, `sluice run --once` applies them, twice. Oracle: the records read back from the topic
(a confluent_kafka consumer), fed to the Python SCD1/SCD2 models of test_apply_changes.py,
against both targets as deltalake and DuckDB read them."""
import json
import shutil
import subprocess
import sys

from deltalake import DeltaTable

from conftest import ROOT, run_sluice
from readers import read_topic_to_end
from test_apply_changes import history_rows, scd1_model, scd2_model, target_rows


def read_records(bootstrap, topic):
    """Every record of the topic as (key dict, value dict or None for a tombstone)."""
    return [(json.loads(m.key()), None if m.value() is None else json.loads(m.value()))
            for m in read_topic_to_end(bootstrap, topic)]


def model_changes(records):
    """Debezium records as the models' changes: the key from `after` or `before`, values from
    `after`, the lsn as the sequence; tombstones carry no change."""
    out = []
    for _, value in records:
        if value is None:
            continue
        row = value["after"] or value["before"]
        out.append({"id": row["id"], "name": (value["after"] or {}).get("name"),
                    "city": (value["after"] or {}).get("city"),
                    "op": "d" if value["op"] == "d" else "u", "seq": value["source"]["lsn"]})
    return out


def test_debezium_example_targets_equal_the_models(tmp_path, bootstrap, new_topic):
    topic = new_topic(3)
    pipe = tmp_path / "debezium"
    shutil.copytree(ROOT / "examples" / "debezium", pipe, ignore=shutil.ignore_patterns("data"))
    yaml = (pipe / "pipeline.yaml").read_text()
    assert "cdc_topic: dbserver1.public.customers" in yaml
    (pipe / "pipeline.yaml").write_text(yaml.replace("cdc_topic: dbserver1.public.customers", f"cdc_topic: {topic}"))

    for run, seed in enumerate((5, 6)):
        gen = subprocess.run([sys.executable, str(pipe / "generate_changes.py"), "--bootstrap", bootstrap,
                              "--topic", topic, "--keys", "30", "--count", "150", "--seed", str(seed)],
                             capture_output=True, text=True, timeout=60)
        assert gen.returncode == 0, gen.stderr
        assert f"records to topic '{topic}'" in gen.stdout, gen.stdout
        result = run_sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap)
        assert result.returncode == 0, result.stderr

        records = read_records(bootstrap, topic)
        values = [v for _, v in records if v is not None]
        ops = {v["op"] for v in values}
        assert ops == {"r", "c", "u", "d"}, ops
        assert len(values) < len(records), "the deletes' tombstones"
        assert len({json.dumps(v, sort_keys=True) for v in values}) < len(values), "duplicates"
        lsns = [v["source"]["lsn"] for v in values if v["op"] != "r"]
        assert lsns != sorted(lsns), "reordered changes"
        changes = model_changes(records)
        silver = DeltaTable(str(pipe / "data" / "tables" / "customers_changes")).to_pyarrow_table()
        assert silver.num_rows == len(changes), "silver: one row per change, tombstones left out"
        assert target_rows(pipe, "customers", seq="lsn") == scd1_model(changes), f"run {run}"
        assert history_rows(pipe, "customers_history", seq="lsn") == \
            scd2_model(changes, tracked=("id", "name", "city")), f"run {run}"
        # The generator's own view of its database: the SCD1 target holds exactly its rows.
        db = json.loads((pipe / "data" / "source_db.json").read_text())
        assert sorted((r["id"], r["name"], r["city"]) for r in db["rows"].values()) == \
            [row[:3] for row in target_rows(pipe, "customers", seq="lsn")]
    assert "customers (streaming table):" in result.stdout, result.stdout
