"""The agreement check of `sluice test`: a fixture case's Kafka records produced to the real
broker batch by batch (produce, then `sluice run --once`), and the rows the case expects checked
with deltalake, a reader independent of sluice, with a matcher written here in Python. A case
that passes under `sluice test` and here shows the fixture path and the Kafka path agree."""
from __future__ import annotations

import datetime
import decimal
import json
import math
import pathlib
import re
import shutil
import time
import uuid

import yaml
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from deltalake import DeltaTable


def load_cases(fixture: pathlib.Path) -> list[dict]:
    return yaml.safe_load(fixture.read_text())["cases"]


def load_case(fixture: pathlib.Path, name: str) -> dict:
    for case in load_cases(fixture):
        if case["name"] == name:
            return case
    raise KeyError(f"{fixture} has no case {name!r}")


def batches(case: dict) -> list[dict]:
    if "batches" in case:
        return case["batches"]
    return [{k: v for k, v in case.items() if k in ("kafka", "tables")}]


def _payload(v):
    if v is None:
        return None
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True, separators=(",", ":")).encode()
    if isinstance(v, bool):
        return b"true" if v else b"false"
    return str(v).encode()


def _timestamp_ms(v) -> int:
    if v is None:
        return 1_704_067_200_000  # the fixture default, 2024-01-01T00:00:00Z
    if isinstance(v, int):
        return v
    return int(_instant(str(v)).timestamp() * 1000)


def _instant(text: str) -> datetime.datetime:
    t = datetime.datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


def copy_pipeline(example: pathlib.Path, to: pathlib.Path, topics: set[str]) -> dict[str, str]:
    """Copies the pipeline folder with every topic the case names renamed to a topic of its own;
    returns fixture topic -> broker topic."""
    shutil.copytree(example, to, ignore=shutil.ignore_patterns("data", "tests"))
    tag = uuid.uuid4().hex[:8]
    config_file = to / "pipeline.yaml"
    config = config_file.read_text()
    renamed = {}
    if re.search(r"^\s+topic_prefix:", config, re.M):
        prefix = f"agree-{tag}-"
        config = re.sub(r"^(\s+topic_prefix:).*$", rf'\1 "{prefix}"', config, flags=re.M)
        renamed = {t: prefix + t for t in topics}
    else:
        for t in topics:
            renamed[t] = f"{t}-{tag}"
            config = re.sub(rf"^(\s+\w+_topic:)\s*{re.escape(t)}\s*$", rf"\1 {renamed[t]}", config, flags=re.M)
            for sql in to.glob("*.sql"):
                sql.write_text(sql.read_text().replace(f"'{t}'", f"'{renamed[t]}'"))
    # Topics a sink writes to (alerts_topic: ...) get their own names too.
    for key, value in re.findall(r"^\s+(\w+_topic):\s*(\S+)\s*$", config, re.M):
        if value not in renamed.values():
            renamed[value] = f"{value}-{tag}"
            config = re.sub(rf"^(\s+{key}:).*$", rf"\1 {renamed[value]}", config, flags=re.M)
    config_file.write_text(config)
    return renamed


def create_topics(bootstrap: str, names: dict[str, int]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    # Fixture times are old (2024 by default): the broker's time-based retention would delete them
    # at once, as data loss, so these topics keep records for ever.
    futures = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1, config={"retention.ms": "-1"})
                                   for n, p in names.items()])
    for f in futures.values():
        f.result(timeout=30)
    # The broker's metadata can lag the controller: wait until every partition has a leader, so
    # the run does not start against a topic it cannot see yet (as conftest.new_topic does).
    deadline = time.monotonic() + 30
    for name, partitions in names.items():
        while True:
            meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
            if meta is not None and meta.error is None and len(meta.partitions) == partitions \
                    and all(p.leader >= 0 for p in meta.partitions.values()):
                break
            assert time.monotonic() < deadline, f"topic {name} not in the broker's metadata after 30 s"
            time.sleep(0.05)  # a poll interval, not a synchronisation


def produce(bootstrap: str, batch: dict, renamed: dict[str, str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for topic, records in (batch.get("kafka") or {}).items():
        for r in records:
            headers = r.get("headers") or {}
            if isinstance(headers, dict):
                headers = [(k, _payload(v)) for k, v in headers.items()]
            else:
                headers = [(h["key"], _payload(h.get("value"))) for h in headers]
            producer.produce(renamed[topic], value=_payload(r["value"]), key=_payload(r.get("key")),
                             partition=int(r.get("partition", 0)), timestamp=_timestamp_ms(r.get("timestamp")),
                             headers=headers or None)
    assert producer.flush(30) == 0


def matches(expected, actual, tol: float) -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, int) and isinstance(actual, int):
        return expected == actual  # whole numbers exactly; the tolerance is for floats
    if isinstance(expected, (int, float)):
        return isinstance(actual, (int, float, decimal.Decimal)) and (expected == actual or math.isclose(
            float(actual), float(expected), rel_tol=tol, abs_tol=tol))
    if isinstance(expected, str):
        if isinstance(actual, datetime.datetime):
            a = actual if actual.tzinfo else actual.replace(tzinfo=datetime.timezone.utc)
            return _instant(expected) == a
        if isinstance(actual, datetime.date):
            return datetime.date.fromisoformat(expected) == actual
        if isinstance(actual, bytes):
            return actual == expected.encode()
        return expected == actual
    if isinstance(expected, dict) and isinstance(actual, list):  # a MAP: exactly its entries
        entries = dict(actual) if all(isinstance(e, tuple) for e in actual) else None
        return entries is not None and entries.keys() == expected.keys() and all(
            matches(v, entries[k], tol) for k, v in expected.items())
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(matches(v, actual.get(k), tol) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            matches(e, a, tol) for e, a in zip(expected, actual))
    return expected == actual


def table_rows(storage: pathlib.Path, table: str) -> list[dict]:
    path = storage / "tables" / table
    if not (path / "_delta_log").exists():
        return []
    return DeltaTable(str(path)).to_pyarrow_table().to_pylist()


def sinks(folder: pathlib.Path) -> dict[str, dict]:
    """The pipeline's sinks (CREATE SINK name OPTIONS (...)): name -> {"format", "topic" or "path"},
    ${...} from pipeline.yaml's configuration substituted."""
    config = (yaml.safe_load((folder / "pipeline.yaml").read_text()) or {}).get("configuration") or {}
    out = {}
    for sql in folder.glob("*.sql"):
        text = re.sub(r"\$\{(\w+)\}", lambda m: str(config.get(m.group(1), m.group(0))), sql.read_text())
        for name, options in re.findall(r"CREATE\s+SINK\s+(\w+)\s+OPTIONS\s*\((.*?)\);", text, re.S | re.I):
            given = dict(re.findall(r"'?(\w+)'?\s*=>\s*'([^']*)'", options))
            out[name] = given
    return out


def sink_records(bootstrap: str, topic: str) -> list[dict]:
    """Every committed record of `topic` (read_committed, from the start to the high-water marks) as
    {topic, partition, key, value, headers}."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"agree-{uuid.uuid4().hex[:8]}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {}
    for p in meta.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        if high > low:
            ends[p] = high
    consumer.assign([TopicPartition(topic, p, 0) for p in ends])
    out = []
    deadline = time.monotonic() + 30
    while ends:
        assert time.monotonic() < deadline, f"records of {topic} up to {ends} not read after 30 s"
        m = consumer.poll(0.2)
        if m is not None:
            if m.error():
                raise RuntimeError(m.error())
            headers = m.headers() or []
            out.append({"topic": topic, "partition": m.partition(),
                        "key": None if m.key() is None else m.key().decode(), "value": m.value().decode(),
                        "headers": [(k, None if v is None else v.decode()) for k, v in headers]})
        # A transaction's commit marker takes a partition's last offset: it ends when the position
        # (past records and markers) reaches the high-water mark.
        for tp in consumer.position([TopicPartition(topic, p) for p in ends]):
            if tp.offset >= ends[tp.partition]:
                del ends[tp.partition]
    consumer.close()
    return out


def _record_matches(want: dict, got: dict, tol: float) -> bool:
    """A sink's record against an expected one: a mapping value is the record's JSON with exactly
    its fields, text the value's text; headers as a mapping or a list of {key, value}; `partition: null`
    any partition (sluice test's capture leaves it null where the partitioner picks one at random)."""
    for k, v in want.items():
        if k == "partition" and v is None:
            continue
        if k == "value" and isinstance(v, (dict, list)):
            actual = json.loads(got["value"])
            if isinstance(v, dict) and (not isinstance(actual, dict) or actual.keys() != v.keys()):
                return False
            if not matches(v, actual, tol):
                return False
        elif k == "headers":
            want_h = sorted((h["key"], h.get("value")) for h in v) if isinstance(v, list) else sorted(v.items())
            if want_h != sorted(got["headers"]):
                return False
        elif not matches(v, got.get(k), tol):
            return False
    return True


def check_sinks(folder: pathlib.Path, bootstrap: str, expect: dict, renamed: dict[str, str]) -> list[str]:
    """What differs between what the sinks sent and `expect: sinks:`: a Kafka sink's committed records
    on the broker, a Delta sink's table read with deltalake."""
    problems = []
    declared = sinks(folder)
    for sink, spec in ((expect or {}).get("sinks") or {}).items():
        tol = float(spec.get("tolerance", 1e-9))
        options = declared[sink]
        if options.get("format") == "kafka":
            got = sink_records(bootstrap, options["topic"])
            want_rows = spec["rows"]
            if isinstance(want_rows, list):
                want_rows = [dict(r, topic=renamed.get(r["topic"], r["topic"])) if "topic" in r else r
                             for r in want_rows]
            match = _record_matches
        else:
            path = pathlib.Path(options["path"])
            path = path if path.is_absolute() else folder / path
            got = DeltaTable(str(path)).to_pyarrow_table().to_pylist() if (path / "_delta_log").exists() else []
            want_rows = spec["rows"]
            match = (lambda w, g, t: all(matches(v, g.get(k), t) for k, v in w.items()))
        if isinstance(want_rows, int):
            if len(got) != want_rows:
                problems.append(f"sink {sink}: {want_rows} rows expected, {len(got)} sent")
            continue
        unused = list(got)
        for row in want_rows:
            hit = next((a for a in unused if match(row, a, tol)), None)
            if hit is None:
                problems.append(f"sink {sink}: missing {row}")
            else:
                unused.remove(hit)
        problems += [f"sink {sink}: unexpected {row}" for row in unused]
    return problems


def check(storage: pathlib.Path, expect: dict, renamed: dict[str, str]) -> list[str]:
    """What differs between the tables and the rows (or counts) `expect` states; [] when all hold.
    A `topic` column expected is the broker's name of the fixture's topic (`renamed`).
    Expectation counts are left to `sluice test`: deltalake reads rows, not the event log; what
    sinks sent is check_sinks'."""
    problems = []
    for dataset, spec in (expect or {}).items():
        if dataset == "sinks":
            continue
        tol = float(spec.get("tolerance", 1e-9))
        for key, table in (("rows", dataset), ("dead_letters", f"{dataset}_dead_letter"),
                           ("quarantine", f"{dataset}_quarantine"), ("late", f"{dataset}_late")):
            if key not in spec:
                continue
            want = spec[key]
            got = table_rows(storage, table)
            if isinstance(want, int):
                if not got and key != "rows" and not (storage / "tables" / table / "_delta_log").exists():
                    if want != 0:
                        problems.append(f"{table}: {want} rows expected, no such table")
                elif len(got) != want:
                    problems.append(f"{table}: {want} rows expected, {len(got)} found")
                continue
            unused = list(got)
            for row in want:
                if "topic" in row:
                    row = dict(row, topic=renamed.get(row["topic"], row["topic"]))
                hit = next((a for a in unused if all(matches(v, a.get(k), tol) for k, v in row.items())), None)
                if hit is None:
                    problems.append(f"{table}: missing {row}")
                else:
                    unused.remove(hit)
            problems += [f"{table}: unexpected {row}" for row in unused]
    return problems
