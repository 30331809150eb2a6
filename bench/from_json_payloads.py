"""Writes the JSON lines bench/from_json_bench.cc decodes: the bench pipeline's 50,000 distinct
payloads (bench/kafka_pipeline_bench.py's make_payloads: ~200 bytes, 1 % malformed) and 50,000
records of 20 flat fields (string, bigint, double, timestamp in turn). Prints the types to pass."""
import json
import pathlib
import random
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import kafka_pipeline_bench  # noqa: E402

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp")
(out / "from_json_bench_payloads.txt").write_text("\n".join(kafka_pipeline_bench.make_payloads()) + "\n")
rng = random.Random(5)
kinds = ["STRING", "BIGINT", "DOUBLE", "TIMESTAMP"]
lines = []
for _ in range(50_000):
    record = {}
    for f in range(20):
        kind = kinds[f % 4]
        record[f"f{f:02d}"] = ("v%06d" % rng.randint(0, 999_999) if kind == "STRING" else
                               rng.randint(0, 10**9) if kind == "BIGINT" else
                               round(rng.uniform(0, 1000), 2) if kind == "DOUBLE" else
                               "2024-03-%02dT10:11:12.123Z" % rng.randint(1, 28))
    lines.append(json.dumps(record, separators=(",", ":")))
(out / "from_json_bench_20_fields.txt").write_text("\n".join(lines) + "\n")
print("STRUCT<user_id: STRING, event_type: STRING, event_time: TIMESTAMP, amount: DOUBLE, country: STRING, device: STRING>")
print("STRUCT<" + ", ".join(f"f{f:02d}: {kinds[f % 4]}" for f in range(20)) + ">")
