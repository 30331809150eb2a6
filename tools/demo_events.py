#!/usr/bin/env python3
"""The `make run` demo's data: user events, payment transactions and IoT sensor readings as JSON
on three Kafka topics, with the faults a real feed has, each on purpose and counted:

  malformed   truncated JSON on every topic            -> <topic's bronze>_dead_letter
  no user / unknown event type (user events)           -> user_events_silver_quarantine
  out-of-range temperature (IoT)                       -> iot_silver_quarantine
  duplicate   a transaction sent again, byte for byte  -> dropped by transactions_silver
  late        a transaction or reading an hour old     -> transactions_silver_late, iot_device_windows_late

Records are a function of (seed, wave, start time), their ids made from the start time (a demo
run again on a kept broker sends new transactions, not copies of the last run's): `model()` says what the medallion pipeline
(examples/medallion) must hold after it read a list of waves, so a test can compare tables with it.
Wave 0 holds no late records and later waves' late records are older than anything before them,
so which records are late does not depend on how the pipeline batches them.

    tools/demo_events.py --bootstrap 127.0.0.1:9092 --count 2000            # one wave, then exit
    tools/demo_events.py --bootstrap 127.0.0.1:9092 --rate 200 --seconds 60  # a wave a second
"""
import argparse
import json
import math
import random
import signal
import sys
import time
from collections import defaultdict

TOPICS = ("user-events", "transactions", "iot-readings")
EVENT_TYPES = ("view", "click", "purchase")
STEP_MS = 100          # event time between consecutive records of a topic
TXN_DELAY_MS = 10 * 60_000   # transactions_silver: WATERMARK ts DELAY OF INTERVAL 10 MINUTES
IOT_DELAY_MS = 5_000         # iot_silver -> iot_device_windows: DELAY OF INTERVAL 5 SECONDS
WINDOW_MS = 10_000           # iot_device_windows: window(ts, '10 seconds')
LATE_BY_MS = 3_600_000       # a late record is an hour older than its wave's first record


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def malformed(record):
    text = json.dumps(record)
    return text[: len(text) // 2].encode()  # cut mid-record: not JSON


def wave(seed, index, count, start_ms, step_ms=STEP_MS):
    """One wave: per topic, (payload bytes, fate, record, event time ms) in produce order."""
    rng = random.Random(f"{seed}/{index}")
    out = {t: [] for t in TOPICS}
    sent_txns = []
    for i in range(count):
        ts = start_ms + i * step_ms
        # user events
        e = {"event_id": f"e{start_ms}-{i}", "user_id": f"u{rng.randint(1, 300):04d}",
             "event_type": rng.choice(EVENT_TYPES), "event_time": iso(ts),
             "amount": round(rng.uniform(1, 200), 2) if rng.random() < 0.3 else None}
        r = rng.random()
        if r < 0.02:
            out["user-events"].append((malformed(e), "malformed", e, ts))
        elif r < 0.05:
            e["user_id"] = None
            out["user-events"].append((json.dumps(e).encode(), "no_user", e, ts))
        elif r < 0.07:
            e["event_type"] = "hover"
            out["user-events"].append((json.dumps(e).encode(), "unknown_type", e, ts))
        else:
            out["user-events"].append((json.dumps(e).encode(), "ok", e, ts))
        # transactions: some sent twice (a retrying producer), some an hour late
        r = rng.random()
        if 0.02 <= r < 0.07 and sent_txns:
            payload, t, t_ms = sent_txns[-rng.randint(1, min(20, len(sent_txns)))]  # a recent one
            out["transactions"].append((payload, "duplicate", t, t_ms))
        else:
            late = index > 0 and r > 0.97
            t_ms = ts - LATE_BY_MS if late else ts
            t = {"txn_id": f"t{start_ms}-{i}", "account_id": f"a{rng.randint(1, 50):03d}",
                 "amount": round(rng.uniform(5, 500), 2), "currency": rng.choice(("EUR", "USD")),
                 "ts": iso(t_ms)}
            if r < 0.02:
                out["transactions"].append((malformed(t), "malformed", t, t_ms))
            else:
                payload = json.dumps(t).encode()
                out["transactions"].append((payload, "late" if late else "ok", t, t_ms))
                if not late:
                    sent_txns.append((payload, t, t_ms))
        # IoT readings
        r = rng.random()
        late = index > 0 and r > 0.97
        d_ms = ts - LATE_BY_MS if late else ts
        d = {"device_id": f"d{rng.randint(1, 8):02d}",
             "temperature": round(rng.gauss(21, 3), 2), "humidity": round(rng.uniform(20, 80), 1),
             "ts": iso(d_ms)}
        if r < 0.01:
            out["iot-readings"].append((malformed(d), "malformed", d, d_ms))
        elif r < 0.03:
            d["temperature"] = 999.0  # a sensor fault
            out["iot-readings"].append((json.dumps(d).encode(), "out_of_range", d, d_ms))
        else:
            out["iot-readings"].append((json.dumps(d).encode(), "late" if late else "ok", d, d_ms))
    return out


def model(waves):
    """What examples/medallion holds after reading `waves` (lists from wave()), one triggered
    update per wave: rows per table, and the gold tables' rows."""
    rows = defaultdict(int)
    seen_txns = set()
    txn_max = iot_max = None
    silver_events, silver_txns, iot_rows = [], [], []
    for w in waves:
        for payload, fate, e, _ in w["user-events"]:
            if fate == "malformed":
                rows["user_events_bronze_dead_letter"] += 1
                continue
            rows["user_events_bronze"] += 1
            if fate in ("no_user", "unknown_type"):
                rows["user_events_silver_quarantine"] += 1
            else:
                rows["user_events_silver"] += 1
                silver_events.append(e)
        # transactions_silver: judged against the watermark before the update (its input is one
        # bronze commit), then de-duplicated on txn_id
        txn_watermark = None if txn_max is None else txn_max - TXN_DELAY_MS
        for payload, fate, t, ts in w["transactions"]:
            if fate == "malformed":
                rows["transactions_bronze_dead_letter"] += 1
                continue
            rows["transactions_bronze"] += 1
            if txn_watermark is not None and ts < txn_watermark:
                rows["transactions_silver_late"] += 1
            elif t["txn_id"] in seen_txns:
                rows["transactions_silver_duplicate"] += 1
            else:
                seen_txns.add(t["txn_id"])
                rows["transactions_silver"] += 1
                silver_txns.append(t)
            txn_max = ts if txn_max is None else max(txn_max, ts)
        iot_watermark = None if iot_max is None else iot_max - IOT_DELAY_MS
        for payload, fate, d, ts in w["iot-readings"]:
            if fate == "malformed":
                rows["iot_bronze_dead_letter"] += 1
                continue
            rows["iot_bronze"] += 1
            if fate == "out_of_range":
                rows["iot_silver_quarantine"] += 1
                continue
            rows["iot_silver"] += 1
            if iot_watermark is not None and ts < iot_watermark:
                rows["iot_device_windows_late"] += 1
            else:
                iot_rows.append((d, ts))
            iot_max = ts if iot_max is None else max(iot_max, ts)
    # Gold: windows closed by the last watermark; materialized views over the silver tables.
    windows = {}
    final_watermark = None if iot_max is None else iot_max - IOT_DELAY_MS
    for d, ts in iot_rows:
        start = ts - ts % WINDOW_MS
        if final_watermark is None or start + WINDOW_MS > final_watermark:
            continue  # still open
        agg = windows.setdefault((d["device_id"], start), [0, 0.0, -math.inf])
        agg[0] += 1
        agg[1] += d["temperature"]
        agg[2] = max(agg[2], d["temperature"])
    rows["iot_device_windows"] = len(windows)
    revenue = defaultdict(lambda: [0, 0.0])
    for e in silver_events:
        revenue[e["event_type"]][0] += 1
        revenue[e["event_type"]][1] += e["amount"] or 0.0
    rows["revenue_by_event_type"] = len(revenue)
    accounts = defaultdict(lambda: [0, 0.0])
    for t in silver_txns:
        accounts[t["account_id"]][0] += 1
        accounts[t["account_id"]][1] += t["amount"]
    rows["account_totals"] = len(accounts)
    return {"rows": dict(rows), "windows": windows, "revenue": dict(revenue), "accounts": dict(accounts)}


def ensure_topics(bootstrap, partitions, prefix=""):
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=10).topics
    missing = [prefix + t for t in TOPICS if prefix + t not in existing]
    if missing:
        for f in admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1)
                                      for t in missing]).values():
            f.result(timeout=30)


def produce(producer, w, prefix=""):
    for topic in TOPICS:
        for payload, _, _, _ in w[topic]:
            while True:
                try:
                    producer.produce(prefix + topic, value=payload)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    producer.poll(0.1)
        producer.poll(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bootstrap", default="127.0.0.1:9092")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=2000, help="records per topic in one wave")
    ap.add_argument("--wave", type=int, default=0, help="the first wave's index (0: no late records)")
    ap.add_argument("--start-ms", type=int, default=None,
                    help="event time of the first record (default: the wave ends now)")
    ap.add_argument("--rate", type=int, default=0,
                    help="keep going: this many records per topic a second (one wave a second) until "
                         "--seconds pass or SIGINT/SIGTERM")
    ap.add_argument("--seconds", type=float, default=0, help="with --rate: stop after this long (0: never)")
    ap.add_argument("--topic-prefix", default="", help="prefix of the three topic names")
    ap.add_argument("--partitions", type=int, default=1, help="partitions of topics it creates")
    args = ap.parse_args()
    if args.count < 1 or args.rate < 0 or args.seconds < 0:
        ap.error("--count must be at least 1, --rate and --seconds not negative")

    from confluent_kafka import Producer

    ensure_topics(args.bootstrap, args.partitions, args.topic_prefix)
    failed = []
    producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 20,
                         "on_delivery": lambda err, msg: err and failed.append(err)})
    start_ms = args.start_ms if args.start_ms is not None else int(time.time() * 1000) - args.count * STEP_MS
    if not args.rate:
        produce(producer, wave(args.seed, args.wave, args.count, start_ms), args.topic_prefix)
        producer.flush(60)
        if failed:
            print(f"demo_events: {len(failed)} records failed: {failed[0]}", file=sys.stderr)
            return 1
        print(f"demo_events: wave {args.wave}: {args.count} records on each of {', '.join(TOPICS)}")
        return 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    began = time.monotonic()
    index, produced = args.wave, 0
    while not stop and not (args.seconds and time.monotonic() - began >= args.seconds):
        tick = time.monotonic()
        now_ms = int(time.time() * 1000)
        step_ms = max(1, 1000 // args.rate)  # a wave's event times span the second it is sent in
        produce(producer, wave(args.seed, index, args.rate, now_ms - 1000, step_ms), args.topic_prefix)
        producer.poll(0)
        index += 1
        produced += args.rate
        # A timer between waves, not a synchronisation.
        while not stop and time.monotonic() - tick < 1.0:
            time.sleep(0.05)
            producer.poll(0)
    producer.flush(30)
    print(f"demo_events: {produced} records on each of {', '.join(TOPICS)} in {index - args.wave} waves")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
