"""The Nexmark queries of bench/nexmark/ (q0-q5, q7, q8 in sluice SQL) give, on a small event
stream, exactly the rows DuckDB computes from the same generated events
(bench/nexmark/oracle.py), so `make bench-nexmark` measures queries that answer correctly."""
import pathlib
import shutil
import sys

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from conftest import ROOT, run_sluice, write_pipeline

sys.path.insert(0, str(ROOT / "bench" / "nexmark"))
import generate  # noqa: E402
import oracle  # noqa: E402

QUERIES = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8"]
EVENTS, RATE = 40_000, 1_000  # 40 s of event time: three 10-second windows close


@pytest.fixture(scope="module")
def nexmark(tmp_path_factory, bootstrap):
    from confluent_kafka.admin import AdminClient, NewTopic
    work = tmp_path_factory.mktemp("nexmark")
    events = work / "events.jsonl"
    generate.generate(str(events), EVENTS, RATE)
    topic = f"nexmark-{work.name}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    assert generate.produce(str(events), bootstrap, topic, 1) == EVENTS
    con = oracle.connect(str(events))
    yield work, topic, con, bootstrap
    con.close()


def test_generator_follows_the_nexmark_mix_and_ids(nexmark):
    _, _, con, _ = nexmark
    counts = dict(con.execute("SELECT 'person', count(*) FROM person UNION ALL SELECT 'auction', count(*) "
                              "FROM auction UNION ALL SELECT 'bid', count(*) FROM bid").fetchall())
    assert counts == {"person": EVENTS // 50, "auction": EVENTS // 50 * 3, "bid": EVENTS // 50 * 46}
    # Person and auction ids are dense from 1000 in event order; every time is base + n / rate.
    assert con.execute("SELECT min(id), max(id), count(DISTINCT id) FROM person").fetchone() == (
        1000, 1000 + EVENTS // 50 - 1, EVENTS // 50)
    assert con.execute("SELECT min(id), max(id) FROM auction").fetchone() == (1000, 1000 + EVENTS // 50 * 3 - 1)
    span_us = con.execute("SELECT max(ts) - min(ts) FROM bid").fetchone()[0]
    assert abs(span_us - EVENTS / RATE * 1e6) <= 1e6
    # About half of the bids go to the hot auction of their hundred (hotAuctionRatio 2).
    hot = con.execute("SELECT avg(CASE WHEN (auction - 1000) % 100 = 0 THEN 1 ELSE 0 END) FROM bid").fetchone()[0]
    assert 0.45 < hot < 0.6


@pytest.mark.parametrize("query", QUERIES)
def test_query_matches_the_duckdb_oracle(nexmark, query):
    work, topic, con, bootstrap = nexmark
    pipe = write_pipeline(work / query, f"name: nexmark_{query}\nstorage: ./data\nkafka:\n  default:\n"
                          f"    bootstrap.servers: \"{bootstrap}\"\nconfiguration:\n  topic: \"{topic}\"\n")
    for sql in ("views.sql", f"{query}.sql"):
        shutil.copy(ROOT / "bench" / "nexmark" / "queries" / sql, pipe / sql)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stdout + r.stderr
    assert " late" not in r.stdout, r.stdout  # one partition, events in time order: nothing late
    actual = pa.table(DeltaTable(str(pipe / "data" / "tables" / f"nexmark_{query}")).to_pyarrow_table())
    n_expected, n_actual, missing, unexpected = oracle.compare(con, query, actual)
    assert n_expected > 0
    assert (n_actual, missing, unexpected) == (n_expected, 0, 0)
