#!/usr/bin/env python3
"""Operator state across sluice versions: a pipeline with a window over Kafka, a window over a
streaming table, a dedup and a stream-stream join is run in three phases (events produced, then
`sluice run --once`), once with --old for the first phase and --new after it (the new binary
restores the state the old one saved), and twice with each binary alone. Every table must be the
same in all five. Events arrive out of order only within the watermark delay (a Kafka-source
window's late rows depend on how partitions interleave, so would differ between any two runs).

  tools/state_compat_check.py --old /work/main/build/sluice --new build/sluice --bootstrap 127.0.0.1:9092
"""
import argparse
import json
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import time
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--old", required=True, help="the sluice binary that saves the state first")
ap.add_argument("--new", required=True, help="the sluice binary that restores it")
ap.add_argument("--bootstrap", required=True, help="a running Kafka broker")
args = ap.parse_args()
BOOT = args.bootstrap
OLD, NEW = str(pathlib.Path(args.old).resolve()), str(pathlib.Path(args.new).resolve())
stamp = int(time.time())
topics = [f"xver-a-{stamp}", f"xver-b-{stamp}"]
admin = AdminClient({"bootstrap.servers": BOOT})
for f in admin.create_topics([NewTopic(t, 3, 1) for t in topics]).values():
    f.result()
SQL = """
CREATE OR REFRESH STREAMING TABLE raw AS SELECT value.* FROM STREAM read_kafka(topic => '{a}', starting_offsets => 'earliest', value_format => 'json', value_schema => 'k STRING, ts TIMESTAMP, v BIGINT');
CREATE OR REFRESH STREAMING TABLE raw2 AS SELECT value.* FROM STREAM read_kafka(topic => '{b}', starting_offsets => 'earliest', value_format => 'json', value_schema => 'k STRING, ts TIMESTAMP, v BIGINT');
CREATE OR REFRESH STREAMING TABLE win_kafka AS SELECT k, window.start AS ws, count(*) AS n, sum(v) AS s
FROM (SELECT value.k AS k, value.v AS v, value.ts AS ts FROM STREAM read_kafka(topic => '{a}', starting_offsets => 'earliest', value_format => 'json', value_schema => 'k STRING, ts TIMESTAMP, v BIGINT'))
WATERMARK ts DELAY OF INTERVAL 1 MINUTE GROUP BY k, window(ts, '5 minutes');
CREATE OR REFRESH STREAMING TABLE win_delta AS SELECT k, window.start AS ws, count(*) AS n, sum(v) AS s
FROM STREAM(raw) WATERMARK ts DELAY OF INTERVAL 1 MINUTE GROUP BY k, window(ts, '5 minutes');
CREATE OR REFRESH STREAMING TABLE dedup AS SELECT DISTINCT k, ts, v FROM STREAM(raw) WATERMARK ts DELAY OF INTERVAL 2 MINUTES;
CREATE OR REFRESH STREAMING TABLE joined AS SELECT a.k, a.v AS lv, b.v AS rv
FROM STREAM(raw) WATERMARK ts DELAY OF INTERVAL 1 MINUTE a
JOIN STREAM(raw2) WATERMARK ts DELAY OF INTERVAL 1 MINUTE b
ON a.k = b.k AND b.ts BETWEEN a.ts AND a.ts + INTERVAL 3 MINUTES;
"""
TABLES = ["win_kafka", "win_delta", "dedup", "joined"]
rng = random.Random(5)
p = Producer({"bootstrap.servers": BOOT})
base = 1_700_000_000
def produce(phase):
    for t, topic in enumerate(topics):
        for i in range(3000):
            minute = phase * 20 + i * 20 / 3000 + rng.uniform(-0.5, 0.0)
            ts = base + int(minute * 60)
            k = f"k{rng.randrange(40)}"
            v = rng.randrange(5) if t == 0 else rng.randrange(1000)
            rec = json.dumps({"k": k, "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)), "v": v})
            p.produce(topic, rec.encode(), partition=i % 3)
            if rng.random() < 0.1:
                p.produce(topic, rec.encode(), partition=i % 3)  # a duplicate
    assert p.flush(30) == 0
work = pathlib.Path(tempfile.mkdtemp(prefix="sluice-state-compat-"))
plans = {"old_then_new": [OLD, NEW, NEW], "new_only": [NEW, NEW, NEW], "old_only": [OLD, OLD, OLD], "new_only_b": [NEW, NEW, NEW], "old_only_b": [OLD, OLD, OLD]}
for name in plans:
    d = work / name
    d.mkdir(parents=True)
    (d / "pipeline.yaml").write_text(f'name: xver\nstorage: ./data\nmode: triggered\nkafka:\n  default: {{bootstrap.servers: "{BOOT}"}}\n')
    (d / "p.sql").write_text(SQL.format(a=topics[0], b=topics[1]))
for phase in range(3):
    produce(phase)
    for name, bins in plans.items():
        r = subprocess.run([bins[phase], "run", str(work / name), "--once"], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{name} phase {phase}: {r.stdout}\n{r.stderr}")
def rows(name, t):
    tbl = DeltaTable(str(work / name / "data" / "tables" / t)).to_pyarrow_table()
    return sorted(tuple(map(str, r.values())) for r in tbl.to_pylist())
ok = True
for t in TABLES:
    r = {name: rows(name, t) for name in plans}
    same = len({tuple(v) for v in r.values()}) == 1
    ok &= same
    groups = [[n for n in r if r[n] == r[m]] for m in r]
    print(f"{t}: rows {dict((n, len(v)) for n, v in r.items())}: " + ("equal" if same else f"DIFFER {groups}"))
saved = sorted(str(x.relative_to(work / "old_then_new")) for x in (work / "old_then_new" / "data" / "tables").glob("*/_sluice_state/*"))
print("state restored from the old binary's:", ", ".join(saved))
print("OK" if ok else "DIFFERENT")
shutil.rmtree(work, ignore_errors=True)
sys.exit(0 if ok else 1)
