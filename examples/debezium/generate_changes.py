#!/usr/bin/env python3
"""Plays Debezium's Postgres connector for a `customers(id, name, city)` table: produces change
events in Debezium's JSON envelope (converter schemas disabled) to a Kafka topic.

    examples/debezium/generate_changes.py --bootstrap 127.0.0.1:9092 --count 500

The simulated database lives in --db (default: data/source_db.json beside this script), so each
run continues where the last one stopped: the first run snapshots --keys rows (op `r`, all at
one lsn, as Debezium's initial snapshot does), then every run makes --count changes: updates
(some touch neither name nor city), deletes (each followed by Debezium's tombstone: the key with
a null value), inserts of new keys and re-inserts of deleted ones, at increasing `source.lsn`.
Delivered as Debezium can deliver them after a connector restart and as a test wants them: some
records twice (--duplicates) and records moved up to --max-delay places later (reordered).
Records are keyed by {"id": ...}, so Kafka keeps a key's records in one partition.
"""
import argparse
import json
import pathlib
import random
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

NAMES = ["ann", "bob", "cyd", "dee", "eve", "fay", "gus", "hal"]
CITIES = ["Lisbon", "Oslo", "Quito", "Pune", None]


def ensure_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


class Database:
    """The simulated source table and its write-ahead log position."""

    def __init__(self, path):
        self.path = path
        state = json.loads(path.read_text()) if path.exists() else {}
        self.rows = {int(k): v for k, v in state.get("rows", {}).items()}
        self.deleted = state.get("deleted", [])
        self.next_id = state.get("next_id", 1)
        self.lsn = state.get("lsn", 0)
        self.tx = state.get("tx", 500)
        self.snapshotted = bool(state)

    def save(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"rows": self.rows, "deleted": self.deleted, "next_id": self.next_id,
                                         "lsn": self.lsn, "tx": self.tx}))


def envelope(op, before, after, lsn, tx, snapshot="false"):
    now = int(time.time() * 1000)
    source = {"version": "2.7.0.Final", "connector": "postgresql", "name": "dbserver1", "ts_ms": now,
              "snapshot": snapshot, "db": "inventory", "schema": "public", "table": "customers",
              "txId": tx, "lsn": lsn, "xmin": None}
    return {"before": before, "after": after, "source": source, "op": op, "ts_ms": now, "transaction": None}


def changes(db, rng, keys, count):
    """The records (key dict, value dict or None) in the order the database made them."""
    out = []
    if not db.snapshotted:
        db.lsn += 1000
        for i in range(keys):
            row = {"id": db.next_id, "name": rng.choice(NAMES), "city": rng.choice(CITIES)}
            db.rows[db.next_id] = row
            db.next_id += 1
            out.append(({"id": row["id"]}, envelope("r", None, row, db.lsn, db.tx,
                                                    "last" if i == keys - 1 else "true")))
    for _ in range(count):
        db.lsn += 8 * rng.randint(1, 40)
        db.tx += 1
        r = rng.random()
        if r < 0.15 or not db.rows:
            if db.deleted and rng.random() < 0.5:
                key = db.deleted.pop(rng.randrange(len(db.deleted)))  # a deleted key inserted again
            else:
                key, db.next_id = db.next_id, db.next_id + 1
            row = {"id": key, "name": rng.choice(NAMES), "city": rng.choice(CITIES)}
            db.rows[key] = row
            out.append(({"id": key}, envelope("c", None, row, db.lsn, db.tx)))
        elif r < 0.3:
            key = rng.choice(sorted(db.rows))
            del db.rows[key]
            db.deleted.append(key)
            # REPLICA IDENTITY DEFAULT: `before` holds the key only.
            out.append(({"id": key}, envelope("d", {"id": key, "name": None, "city": None}, None, db.lsn, db.tx)))
            out.append(({"id": key}, None))  # the tombstone
        else:
            key = rng.choice(sorted(db.rows))
            row = dict(db.rows[key])
            what = rng.random()
            if what < 0.45:
                row["name"] = rng.choice(NAMES)
            elif what < 0.9:
                row["city"] = rng.choice(CITIES)
            # else: a column this table's capture leaves out changed; name and city stay
            db.rows[key] = row
            out.append(({"id": key}, envelope("u", None, row, db.lsn, db.tx)))
    return out


def delivered(records, rng, duplicates, max_delay):
    """Some records twice, then each moved up to max_delay places later."""
    out = []
    for rec in records:
        out.append(rec)
        if rec[1] is not None and rng.random() < duplicates:
            out.append(rec)
    placed = sorted((i + rng.uniform(0, max_delay), i) for i in range(len(out)))
    return [out[i] for _, i in placed]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="dbserver1.public.customers")
    ap.add_argument("--partitions", type=int, default=3, help="when the topic is created")
    ap.add_argument("--keys", type=int, default=50, help="rows of the first run's snapshot")
    ap.add_argument("--count", type=int, default=500, help="changes to make")
    ap.add_argument("--duplicates", type=float, default=0.05, help="share of records delivered twice")
    ap.add_argument("--max-delay", type=int, default=8, help="places a record may move later")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--db", type=pathlib.Path, default=pathlib.Path(__file__).parent / "data" / "source_db.json")
    args = ap.parse_args()

    db = Database(args.db)
    rng = random.Random(args.seed)
    records = delivered(changes(db, rng, args.keys, args.count), rng, args.duplicates, args.max_delay)
    ensure_topic(args.bootstrap, args.topic, args.partitions)
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20, "enable.idempotence": True})
    failed = []
    for key, value in records:
        producer.produce(args.topic, key=json.dumps(key).encode(),
                         value=None if value is None else json.dumps(value).encode(),
                         on_delivery=lambda err, msg: err and failed.append(err))
        producer.poll(0)
    producer.flush(60)
    if failed:
        print(f"generate_changes: {len(failed)} records failed: {failed[0]}", file=sys.stderr)
        return 1
    db.save()
    ops = {}
    for _, value in records:
        op = "tombstone" if value is None else value["op"]
        ops[op] = ops.get(op, 0) + 1
    print(f"produced {len(records)} records to topic '{args.topic}' at {args.bootstrap} "
          f"({', '.join(f'{n} {op}' for op, n in sorted(ops.items()))}; lsn up to {db.lsn}); "
          f"the table has {len(db.rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
