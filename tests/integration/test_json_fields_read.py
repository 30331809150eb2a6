"""from_json read through some of its fields decodes only those (docs/decisions.md, "from_json
decodes the fields read"): a silver table reading 2 of 5 fields holds, for every record, what a
Python model of Spark's PERMISSIVE from_json gives for those 2 fields (a key goes to the field
of its exact name, else of its case-insensitive name, and a field keeps the first key it gets;
malformed text or a non-object gives nulls; a value that does not fit its type is null), and
the same as a table decoding the whole struct."""
import json
import random

from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import run_sluice, write_pipeline

FIELDS = "a STRING, b BIGINT, c DOUBLE, d STRING, e TIMESTAMP"
NAMES = {"a", "b", "c", "d", "e"}


def payloads(n, seed=12):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = rng.random()
        if kind < 0.05:
            out.append(b'{"a":"cut", "c": 1.5,' + b"x" * rng.randint(0, 5))  # malformed
        elif kind < 0.08:
            out.append(b"[1, 2]")  # not an object
        elif kind < 0.11:
            out.append(('{"A":"upper%d","a":"exact%d","C":%d,"c":"text"}' % (i, i, i)).encode())
        elif kind < 0.14:
            out.append(('{"c":%d,"c":2.5,"a":"dup%d","a":"second"}' % (i, i)).encode())
        elif kind < 0.17:
            out.append(('{"a":"esc\\u00e9\\n%d","b":{"nested":[1,2]},"c":-0.0,"d":null}' % i).encode())
        else:
            record = {"a": "v%d" % i if rng.random() < 0.9 else None, "b": rng.randint(-10**12, 10**12),
                      "c": rng.choice([round(rng.uniform(-1e6, 1e6), rng.randint(0, 6)), rng.randint(-5, 5), "x", True]),
                      "d": "pad" * rng.randint(0, 20), "e": "2024-03-%02dT10:11:12Z" % rng.randint(1, 28),
                      "extra": {"k": [1, {"z": None}]}}
            keys = list(record)
            rng.shuffle(keys)
            out.append(json.dumps({k: record[k] for k in keys}).encode())
    return out


class Members(list):
    """A JSON object as its (key, value) pairs in order, duplicates kept."""


def model(payload):
    """(a, c) as from_json(payload, FIELDS) gives them."""
    try:
        pairs = json.loads(payload, object_pairs_hook=Members)
    except ValueError:
        return None, None
    if not isinstance(pairs, Members):
        return None, None
    def first(name):
        # Each key goes to the field of its exact name, else of its case-insensitive name (the
        # fields here are lower case); the first key a field gets wins.
        for k, v in pairs:
            if k == name or (k not in NAMES and k.lower() == name):
                return True, v
        return False, None
    _, a = first("a")
    _, c = first("c")
    if a is not None and not isinstance(a, str):
        a = json.dumps(a, separators=(",", ":"))
    if isinstance(c, bool) or not isinstance(c, (int, float)):
        c = None
    return a, (float(c) if c is not None else None)


def test_silver_reading_two_fields_matches_the_model_and_the_whole_decode(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    values = payloads(3000)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i, v in enumerate(values):
        producer.produce(topic, value=v, partition=0, headers={"i": str(i)})
    assert producer.flush(60) == 0
    pipe = write_pipeline(tmp_path / "pipe", f"name: fields\nstorage: ./data\n"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "p.sql").write_text(f"""
CREATE STREAMING TABLE raw AS SELECT * FROM STREAM read_kafka(topic => '{topic}');
CREATE STREAMING TABLE narrow AS SELECT e.a, e.c, offset
  FROM (SELECT from_json(CAST(value AS STRING), '{FIELDS}') AS e, offset FROM STREAM(raw)) WHERE e.c IS NULL OR e.c > -1e9;
CREATE STREAMING TABLE whole AS SELECT e.a, e.c, offset
  FROM (SELECT e, offset FROM (SELECT from_json(CAST(value AS STRING), '{FIELDS}') AS e, offset FROM STREAM(raw)));
""")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    tables = pipe / "data" / "tables"
    narrow = sorted(DeltaTable(str(tables / "narrow")).to_pyarrow_table().to_pylist(), key=lambda r: r["offset"])
    whole = sorted(DeltaTable(str(tables / "whole")).to_pyarrow_table().to_pylist(), key=lambda r: r["offset"])
    assert len(narrow) == len(values)
    assert narrow == whole
    for row in narrow:
        a, c = model(values[row["offset"]])
        assert (row["a"], row["c"]) == (a, c), (values[row["offset"]], row)
