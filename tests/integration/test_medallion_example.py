"""examples/medallion (the `make run` pipeline) over two waves of tools/demo_events.py with a
fixed seed, one triggered update per wave: every table, side table and gold row is what the
generator's own model (which records are malformed, out of range, duplicate, late) says, read by
deltalake; the duplicates dropped are those sluice reports."""
import math
import re
import shutil
import sys
import time

from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

from conftest import ROOT, run_sluice
from test_sql_pipeline_e2e import produce_values

sys.path.insert(0, str(ROOT / "tools"))
import demo_events  # noqa: E402

COUNT = 1000           # records per topic and wave
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def create_topics(bootstrap, prefix):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [prefix + t for t in demo_events.TOPICS]
    for f in admin.create_topics([NewTopic(n, num_partitions=1, replication_factor=1) for n in names]).values():
        f.result(timeout=30)
    deadline = time.monotonic() + 30
    while True:  # until every partition has a leader in the metadata a client gets (conftest.new_topic)
        topics = admin.list_topics(timeout=10).topics
        if all(n in topics and topics[n].error is None and all(p.leader >= 0 for p in topics[n].partitions.values())
               for n in names):
            return
        assert time.monotonic() < deadline, "topics not in the broker's metadata after 30 s"
        time.sleep(0.05)  # a poll interval, not a synchronisation


def rows(pipe, table):
    return DeltaTable(str(pipe / "data" / "tables" / table)).to_pyarrow_table().to_pylist()


def test_medallion_tables_match_the_generators_model(tmp_path, bootstrap):
    prefix = f"m{time.time_ns() % 10**9}-"
    create_topics(bootstrap, prefix)
    pipe = tmp_path / "medallion"
    shutil.copytree(ROOT / "examples" / "medallion", pipe, ignore=shutil.ignore_patterns("data"))
    yaml = (pipe / "pipeline.yaml").read_text()
    yaml = yaml.replace("bootstrap.servers: 127.0.0.1:9092", f'bootstrap.servers: "{bootstrap}"')
    yaml = yaml.replace('topic_prefix: ""', f'topic_prefix: "{prefix}"')
    (pipe / "pipeline.yaml").write_text(yaml)
    validated = run_sluice("validate", pipe)
    assert validated.returncode == 0, validated.stderr

    waves = [demo_events.wave(5, i, COUNT, START_MS + i * COUNT * demo_events.STEP_MS) for i in range(2)]
    duplicates = 0
    for w in waves:
        for topic in demo_events.TOPICS:
            produce_values(bootstrap, prefix + topic, [payload for payload, *_ in w[topic]])
        run = run_sluice("run", pipe, "--once")
        assert run.returncode == 0, run.stderr
        assert run.stderr == ""
        found = re.search(r"^transactions_silver \(streaming table\):.* (\d+) duplicate", run.stdout, re.M)
        duplicates += int(found.group(1)) if found else 0
    model = demo_events.model(waves)
    want = model["rows"]
    for kind in ("malformed", "duplicate", "late", "out_of_range", "no_user", "unknown_type"):  # the model is not trivial
        assert any(fate == kind for w in waves for t in demo_events.TOPICS for _, fate, *_ in w[t]), kind

    tables = sorted(p.name for p in (pipe / "data" / "tables").iterdir())
    assert set(t for t in want if not t.endswith("_duplicate")) <= set(tables)
    for table in tables:
        assert len(rows(pipe, table)) == want.get(table, 0), table
    assert duplicates == want["transactions_silver_duplicate"]

    # Gold: each closed (device, 10 s window) with its readings, mean and highest temperature.
    got = {(r["device_id"], int(r["window_start"].timestamp() * 1000)): r for r in rows(pipe, "iot_device_windows")}
    assert set(got) == set(model["windows"])
    for key, (n, total, highest) in model["windows"].items():
        r = got[key]
        assert r["readings"] == n and r["max_temperature"] == highest, key
        assert math.isclose(r["avg_temperature"], total / n, rel_tol=1e-9), key
    revenue = {r["event_type"]: r for r in rows(pipe, "revenue_by_event_type")}
    assert {k: r["events"] for k, r in revenue.items()} == {k: v[0] for k, v in model["revenue"].items()}
    for k, (_, total) in model["revenue"].items():
        assert math.isclose(revenue[k]["revenue"], round(total, 2), abs_tol=0.011), k
    accounts = {r["account_id"]: r["transactions"] for r in rows(pipe, "account_totals")}
    assert accounts == {k: v[0] for k, v in model["accounts"].items()}
