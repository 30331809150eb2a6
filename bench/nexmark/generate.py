#!/usr/bin/env python3
"""Nexmark event generator: person / auction / bid events as JSON lines, optionally produced
into one Kafka topic (round-robin over its partitions), as the Nexmark Flink suite's Kafka mode
does (`event_type` 0/1/2 and one nested object per event; the other two are null).

Semantics follow the Nexmark generators (Apache Beam's and github.com/nexmark/nexmark's; written
here from their description, not copied):
- event n (0-based) is a person when n % 50 == 0, an auction when n % 50 in 1..3, a bid
  otherwise (the default 1:3:46 mix, 2% / 6% / 92%);
- its event time is base_time + floor(n * 1e6 / rate) microseconds, truncated to ms (no
  out-of-order groups: outOfOrderGroupSize = 1, the suite's default);
- person ids are 1000 + the number of earlier persons, auction ids 1000 + the number of
  earlier auctions; a bid's auction is the first of the newest hundred auctions with p = 1/2
  (hot auctions, hotAuctionRatio 2) or else a random one of the last 100 in flight plus 10
  ids of lead; its bidder is the second of the newest hundred persons with p = 3/4
  (hotBiddersRatio 4) or else one of the last 1000 active persons plus 10 ids of lead; an
  auction's seller likewise (first of the newest hundred, hotSellersRatio 4);
- prices are round(10^(6u) * 100) cents; an auction's reserve is its initial bid plus another
  price; it expires 1 + uniform(2 * horizon) ms after it starts, where horizon is the time for
  100 more auctions (numInFlightAuctions) to be generated;
- 5 categories (10..14), 6 US states, 10 cities, names from 11 first and 9 last names; an
  `extra` string pads each event to about its average size (person 200, auction 500, bid 100
  bytes of fields, +/- 20%).
Randomness is a hash of (event number, field), so a given (n, rate, base_time) always yields
the same events, in parallel (DuckDB builds them; this script never loops over events in Python).

  bench/nexmark/generate.py --events N [--rate R] [--out events.jsonl]
                            [--bootstrap host:port --topic T --partitions P]
"""
import argparse
import os
import pathlib
import sys
import time

PERSON, AUCTION, TOTAL = 1, 3, 50          # proportions: person 1, auction 3, bid 46
FIRST_PERSON_ID = FIRST_AUCTION_ID = 1000
BASE_TIME_MS = 1_735_689_600_000            # 2025-01-01T00:00:00Z: fixed, so runs compare
DEFAULT_RATE = 10_000                       # events/s of event time (the suite's firstEventRate)

# Pool the generated strings are cut from (lowercase letters and spaces, as Nexmark's).
_POOL = "".join("abcdefghijklmnopqrstuvwxyz "[(i * 7919 + (i >> 3) * 104729) % 27] for i in range(4096))


def events_sql(n, rate, base_ms=BASE_TIME_MS):
    """A DuckDB query yielding (n, partition-free) rows: event_type, person, auction, bid as
    structs matching the Nexmark Kafka schema (dateTime as an ISO-8601 UTC string)."""
    delay_us = 1_000_000 / rate
    # u(k): a uniform double in [0, 1) from the hash of (event number, salt k).
    u = lambda k: f"((hash(n, {k}) >> 11)::DOUBLE / 9007199254740992.0)"  # noqa: E731
    rnd = lambda k, m: f"(floor({u(k)} * ({m}))::BIGINT)"                 # noqa: E731
    ts = lambda expr: f"(TIMESTAMP '1970-01-01' + to_milliseconds({base_ms} + floor(({expr}) * {delay_us})::BIGINT // 1000))"  # noqa: E731
    iso = lambda t: f"strftime({t}, '%Y-%m-%dT%H:%M:%S.%gZ')"            # noqa: E731
    pool = f"'{_POOL}'"
    string = lambda k, maxlen: f"substr({pool}, 1 + {rnd(k, 4096 - 100)}::INT, 3 + {rnd(k + 1, maxlen - 2)}::INT)"  # noqa: E731
    extra = lambda k, avg, cur: (                                         # noqa: E731
        f"substr({pool} || {pool}, 1 + {rnd(k, 4096)}::INT, "
        f"greatest(0, {avg - cur} - {avg // 5} + {rnd(k + 1, 2 * (avg // 5) + 1)})::INT)")
    price = lambda k: f"round(pow(10.0, {u(k)} * 6.0) * 100.0)::BIGINT"   # noqa: E731
    first = "['Peter','Paul','Luke','John','Saul','Vicky','Kate','Julie','Sarah','Deiter','Walter']"
    last = "['Shultz','Abrams','Spencer','White','Bartels','Walton','Smith','Jones','Noris']"
    cities = "['Phoenix','Los Angeles','San Francisco','Boise','Portland','Bend','Redmond','Seattle','Kent','Cheyenne']"
    states = "['AZ','CA','ID','OR','WA','WY']"
    channels = "['Google','Facebook','Baidu','Apple']"
    in_flight_events = 100 * TOTAL // AUCTION  # events until 100 more auctions exist
    return f"""
WITH e AS (
  SELECT n, n % {TOTAL} AS rem, n // {TOTAL} AS epoch,
         {ts('n')} AS t,
         {ts(f'n + {in_flight_events}')} AS horizon_t
  FROM range({n}) r(n)
), ids AS (
  SELECT *,
    epoch AS last_person,                                           -- lastBase0PersonId
    CASE WHEN rem < {PERSON} THEN (epoch - 1) * {AUCTION} + {AUCTION - 1}
         WHEN rem >= {PERSON + AUCTION} THEN epoch * {AUCTION} + {AUCTION - 1}
         ELSE epoch * {AUCTION} + rem - {PERSON} END AS last_auction  -- lastBase0AuctionId
  FROM e
), r AS (
  SELECT *,
    -- a random active person: one of the last min(persons, 1000), plus 10 ids of lead
    (last_person + 1) - least(last_person + 1, 1000)
      + {rnd(1, 'least(last_person + 1, 1000) + 10')} AS any_person,
    greatest(last_auction - 100, 0)
      + {rnd(2, 'last_auction - greatest(last_auction - 100, 0) + 11')} AS any_auction
  FROM ids
)
SELECT
  CASE WHEN rem < {PERSON} THEN 0 WHEN rem < {PERSON + AUCTION} THEN 1 ELSE 2 END AS event_type,
  CASE WHEN rem < {PERSON} THEN {{
    'id': last_person + {FIRST_PERSON_ID},
    'name': {first}[1 + {rnd(10, 11)}] || ' ' || {last}[1 + {rnd(11, 9)}],
    'emailAddress': {string(12, 7)} || '@' || {string(14, 5)} || '.com',
    'creditCard': lpad(({rnd(16, 10000)})::VARCHAR, 4, '0') || ' ' || lpad(({rnd(17, 10000)})::VARCHAR, 4, '0')
                  || ' ' || lpad(({rnd(18, 10000)})::VARCHAR, 4, '0') || ' ' || lpad(({rnd(19, 10000)})::VARCHAR, 4, '0'),
    'city': {cities}[1 + {rnd(20, 10)}],
    'state': {states}[1 + {rnd(21, 6)}],
    'dateTime': {iso('t')},
    'extra': {extra(22, 200, 60)}
  }} END AS person,
  CASE WHEN rem >= {PERSON} AND rem < {PERSON + AUCTION} THEN {{
    'id': last_auction + {FIRST_AUCTION_ID},
    'itemName': {string(30, 20)},
    'description': {string(32, 100)},
    'initialBid': {price(34)},
    'reserve': {price(34)} + {price(35)},
    'dateTime': {iso('t')},
    'expires': {iso(f"t + to_milliseconds(1 + {rnd(36, 'greatest(2 * (epoch_ms(horizon_t) - epoch_ms(t)), 1)')})")},
    'seller': CASE WHEN {rnd(37, 4)} > 0 THEN (last_person // 100) * 100 ELSE any_person END + {FIRST_PERSON_ID},
    'category': 10 + {rnd(38, 5)},
    'extra': {extra(39, 500, 170)}
  }} END AS auction,
  CASE WHEN rem >= {PERSON + AUCTION} THEN {{
    'auction': CASE WHEN {rnd(50, 2)} > 0 THEN (last_auction // 100) * 100 ELSE any_auction END + {FIRST_AUCTION_ID},
    'bidder': CASE WHEN {rnd(51, 4)} > 0 THEN (last_person // 100) * 100 + 1 ELSE any_person END + {FIRST_PERSON_ID},
    'price': {price(52)},
    'channel': CASE WHEN {rnd(53, 10)} > 0 THEN {channels}[1 + {rnd(54, 4)}] ELSE 'channel-' || {rnd(55, 10000)} END,
    'url': 'https://www.nexmark.com/' || {string(56, 5)} || '/' || {string(58, 5)} || '/item.htm?query=1',
    'dateTime': {iso('t')},
    'extra': {extra(60, 100, 32)}
  }} END AS bid
FROM r
"""


def generate(path, n, rate):
    """Writes n events as JSON lines to path (one object per line, in event order)."""
    import duckdb
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"COPY ({events_sql(n, rate)}) TO '{path}' (FORMAT json)")
    con.close()


def produce(path, bootstrap, topic, partitions):
    """Produces every line of path to topic, line i into partition i % partitions (so each
    partition is in event-time order, as a round-robin producer over an ordered source is)."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 1 << 20,
                  "compression.type": "none", "acks": 1})
    produce_one = p.produce
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            while True:
                try:
                    produce_one(topic, line.rstrip(b"\n"), partition=i % partitions)
                    break
                except BufferError:
                    p.poll(0.05)
    left = p.flush(300)
    if left:
        sys.exit(f"producing to {topic}: {left} records not delivered after 300 s (broker {bootstrap})")
    return i + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, required=True)
    ap.add_argument("--rate", type=int, default=DEFAULT_RATE, help="events per second of event time")
    ap.add_argument("--out", default="nexmark-events.jsonl")
    ap.add_argument("--bootstrap")
    ap.add_argument("--topic", default="nexmark")
    ap.add_argument("--partitions", type=int, default=6)
    args = ap.parse_args()
    t = time.perf_counter()
    generate(args.out, args.events, args.rate)
    print(f"generated {args.events:,} events into {args.out} ({os.path.getsize(args.out) / 2**20:.0f} MiB) "
          f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    if args.bootstrap:
        t = time.perf_counter()
        n = produce(args.out, args.bootstrap, args.topic, args.partitions)
        print(f"produced {n:,} records to {args.topic} in {time.perf_counter() - t:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
