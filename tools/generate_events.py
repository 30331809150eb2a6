#!/usr/bin/env python3
"""Sample data generator: produces JSON user events to a Kafka topic (created if missing).

    tools/generate_events.py --bootstrap 127.0.0.1:9092 --topic user-events --count 5000
"""
import argparse
import json
import random
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

EVENT_TYPES = ["view", "click", "purchase"]


def ensure_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=10).topics:
        return
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    futures[topic].result(timeout=30)


def event(rng, now_ms):
    return {
        "user_id": f"u{rng.randint(1, 500):04d}",
        "event_type": rng.choice(EVENT_TYPES),
        "event_time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((now_ms - rng.randint(0, 60_000)) / 1000)),
        "amount": round(rng.uniform(1, 200), 2) if rng.random() < 0.3 else None,
        "session": rng.randint(1, 10_000),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="user-events")
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()

    ensure_topic(args.bootstrap, args.topic, args.partitions)
    rng = random.Random(args.seed)
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20})
    failed = []
    now_ms = int(time.time() * 1000)
    for _ in range(args.count):
        e = event(rng, now_ms)
        producer.produce(args.topic, key=e["user_id"].encode(), value=json.dumps(e).encode(),
                         headers=[("source", b"generate_events.py")],
                         on_delivery=lambda err, msg: err and failed.append(err))
        producer.poll(0)
    producer.flush(60)
    if failed:
        print(f"generate_events: {len(failed)} records failed: {failed[0]}", file=sys.stderr)
        return 1
    print(f"produced {args.count} JSON events to topic '{args.topic}' at {args.bootstrap}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
