"""Kafka sinks (CREATE SINK ... OPTIONS (format => 'kafka') + CREATE FLOW ... INSERT INTO sink):
the rows of a streaming table land on a topic as JSON with the chosen key and headers, exactly
once for read_committed readers, also after the process dies while producing or between
producing and committing. Oracle: the silver table as deltalake reads it, filtered in Python,
against what a confluent_kafka read_committed consumer reads from the sink topic."""
import datetime
import json
import random
import signal
import subprocess
import time

import pytest

from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import ROOT, SLUICE, run_sluice, write_pipeline
from readers import read_topic_to_end

SILVER = """
CREATE OR REFRESH STREAMING TABLE tx_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{source}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE tx_silver
AS SELECT e.card_id, e.amount, e.ts, e.n, headers
   FROM (SELECT from_json(CAST(value AS STRING), 'card_id STRING, amount DOUBLE, ts TIMESTAMP, n BIGINT') AS e,
                headers
         FROM STREAM(tx_bronze));
"""

SINK = """
CREATE SINK big_tx OPTIONS (format => 'kafka', topic => '{sink}', key => 'card_id', headers => 'headers',
                            value_format => 'json', max_rows_per_transaction => '{max_rows}');
CREATE FLOW big_tx_out AS INSERT INTO big_tx
SELECT card_id, amount, ts, n, headers FROM STREAM(tx_silver) WHERE amount > 100;
"""

CONTINUOUS = "mode: continuous\ntrigger_interval: 50ms\n"


def make_pipeline(tmp_path, bootstrap, source, sink, max_rows=100000, extra="", trigger_rows=None):
    pipe = write_pipeline(tmp_path / "pipe", f"name: sinks\nstorage: ./data\n{extra}"
                                             f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    silver = SILVER.format(source=source)
    if trigger_rows:
        silver = silver.replace("starting_offsets => 'earliest'",
                                f"starting_offsets => 'earliest', max_offsets_per_trigger => {trigger_rows}")
    (pipe / "silver.sql").write_text(silver)
    (pipe / "sink.sql").write_text(SINK.format(sink=sink, max_rows=max_rows))
    return pipe


def produce(bootstrap, topic, first, count):
    """count JSON transactions n = first..first+count-1, each with a header naming it."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for n in range(first, first + count):
        event = {"card_id": None if n % 17 == 0 else f"c{n % 7}", "amount": float((n * 37) % 250),
                 "ts": f"2024-05-01T10:{n % 60:02d}:{n % 59:02d}.{n % 1000:03d}Z", "n": n}
        producer.produce(topic, value=json.dumps(event).encode(), partition=n % 2,
                         headers=[("origin", f"gen-{n}".encode())])
    assert producer.flush(30) == 0


def read_topic(bootstrap, topic, isolation="read_committed"):
    """Every record of every partition up to its end, as (key, value dict, headers)."""
    return [(m.key(), json.loads(m.value()), m.headers() or []) for m in read_topic_to_end(bootstrap, topic, isolation)]


def assert_topic_holds(bootstrap, topic, want, deadline_s=30):
    """The topic's read_committed records equal `want`. A committed transaction's markers reach
    the partitions just after commit_transaction returns, so its records may become visible a
    moment later: read again until they match or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while True:
        got = read_topic(bootstrap, topic)
        if canonical(got) == canonical(want) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert canonical(got) == canonical(want)
    return got


def expected_records(pipe):
    """The sink's records computed from the silver table as deltalake reads it: the headers
    column becomes the record's headers, not part of its JSON value."""
    rows = DeltaTable(str(pipe / "data" / "tables" / "tx_silver")).to_pyarrow_table().to_pylist()
    out = []
    for r in rows:
        if r["amount"] is None or not r["amount"] > 100:
            continue
        value = {k: r[k] for k in ("card_id", "amount", "n") if r[k] is not None}
        if r["ts"] is not None:
            ts = r["ts"].astimezone(datetime.timezone.utc)
            # Spark's to_json: yyyy-MM-dd'T'HH:mm:ss.SSSXXX, UTC as `Z`, the fraction cut to ms
            value["ts"] = ts.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts.microsecond // 1000:03d}Z"
        key = r["card_id"].encode() if r["card_id"] is not None else None
        headers = [(h["key"], h["value"]) for h in (r["headers"] or [])]
        out.append((key, value, headers))
    return out


def canonical(records):
    return sorted(json.dumps([k.decode() if k else None, v, [[a, b.decode()] for a, b in h]], sort_keys=True)
                  for k, v, h in records)


def test_rows_land_once_with_keys_values_and_headers(tmp_path, bootstrap, new_topic):
    source, sink = new_topic(2), new_topic(3)
    pipe = make_pipeline(tmp_path, bootstrap, source, sink)
    validate = run_sluice("validate", pipe)
    assert validate.returncode == 0, validate.stderr
    assert "big_tx (sink) <- tx_silver (stream)" in validate.stdout

    produce(bootstrap, source, 0, 300)
    first = run_sluice("run", pipe, "--once")
    assert first.returncode == 0, first.stderr
    assert "big_tx (sink):" in first.stdout, first.stdout
    want = expected_records(pipe)
    assert len(want) > 50
    got = assert_topic_holds(bootstrap, sink, want)
    # Keyed records of one card share a partition: Kafka's partitioner chose by key.
    assert all(k is None or isinstance(k, bytes) for k, _, _ in got)

    produce(bootstrap, source, 300, 200)
    second = run_sluice("run", pipe, "--once")
    assert second.returncode == 0, second.stderr
    assert_topic_holds(bootstrap, sink, expected_records(pipe))
    again = run_sluice("run", pipe, "--once")  # nothing new: nothing produced
    assert again.returncode == 0, again.stderr
    assert_topic_holds(bootstrap, sink, expected_records(pipe))

    events = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    sink_progress = [json.loads(e["details"])["flow_progress"] for e in events
                     if e["event_type"] == "flow_progress" and e["origin"]["dataset_name"] == "big_tx"]
    assert sum(p["metrics"]["num_output_rows"] for p in sink_progress) == len(expected_records(pipe))
    assert all(p["status"] == "COMPLETED" for p in sink_progress)

    # A full refresh of the sink's upstream sends its rows again (records once sent stay).
    before = assert_topic_holds(bootstrap, sink, expected_records(pipe))
    refreshed = run_sluice("run", pipe, "--once", "--full-refresh", "tx_silver")
    assert refreshed.returncode == 0, refreshed.stderr
    assert_topic_holds(bootstrap, sink, before + expected_records(pipe))

    lineage = json.loads(run_sluice("graph", pipe, "--format", "json").stdout)
    [entry] = lineage["sinks"]
    assert entry["name"] == "big_tx" and entry["upstream"] == ["tx_silver"] and entry["flows"] == ["big_tx_out"]
    assert {c["name"] for c in entry["columns"]} == {"card_id", "amount", "ts", "n", "headers"}

    # A commit that rewrites upstream rows cannot be followed: the error says what works for a
    # sink (its consumer group deleted), not a reader's options.
    silver = pipe / "data" / "tables" / "tx_silver"
    updated = run_sluice("sql", silver, f"UPDATE delta.`{silver}` SET amount = amount + 1 WHERE amount > 100")
    assert updated.returncode == 0, updated.stderr
    stuck = run_sluice("run", pipe, "--once")
    assert stuck.returncode == 1, stuck.stdout
    assert "removed data" in stuck.stderr and "delete consumer group 'sluice-sink-" in stuck.stderr, stuck.stderr
    assert "big_tx_out" in stuck.stderr and "ignoreDeletes" not in stuck.stderr, stuck.stderr


def test_killed_while_producing_or_before_commit_still_exactly_once(tmp_path, bootstrap, new_topic):
    source = new_topic(2)
    pipe = make_pipeline(tmp_path, bootstrap, source, "unused", max_rows=40)
    produce(bootstrap, source, 0, 400)
    for point in ("sink_during_produce", "sink_before_commit"):
        sink = new_topic(2)  # a fresh topic per point: what it holds is this crash's doing
        (pipe / "sink.sql").write_text(SINK.format(sink=sink, max_rows=40))
        crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": point})
        assert crashed.returncode == 137, (point, crashed.stdout, crashed.stderr)
        # The records of the open transaction reached the broker; no read_committed reader sees them.
        assert read_topic(bootstrap, sink, "read_uncommitted"), point
        assert read_topic(bootstrap, sink) == [], point
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    want = expected_records(pipe)
    assert_topic_holds(bootstrap, sink, want)

    # Killed between two transactions of one run: two upstream versions wait (each run below
    # commits silver, then dies before the sink commits), max_rows_per_transaction = 40 ends a
    # transaction at the first version's end, and the process dies right after committing it.
    silver = pipe / "data" / "tables" / "tx_silver"
    for first in (400, 600):
        produce(bootstrap, source, first, 200)
        crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "sink_before_commit"})
        assert crashed.returncode == 137, crashed.stderr
    assert DeltaTable(str(silver)).version() >= 2
    crashed = run_sluice("run", pipe, "--once", env_extra={"SLUICE_FAILPOINT": "sink_between_transactions"})
    assert crashed.returncode == 137, (crashed.stdout, crashed.stderr)
    # The first transaction (the silver version holding n = 400..599) is visible before the restart.
    partial = assert_topic_holds(bootstrap, sink, [r for r in expected_records(pipe) if r[1]["n"] < 600])
    assert len(partial) > len(want)
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    assert_topic_holds(bootstrap, sink, expected_records(pipe))


@pytest.mark.slow
def test_sigkill_of_a_continuous_run_at_random_moments_still_exactly_once(tmp_path, bootstrap, new_topic):
    """A continuous run (bronze, silver and the sink each committing small batches) SIGKILLed
    at random moments four times, then a triggered run to the end: every row once."""
    source, sink = new_topic(2), new_topic(2)
    pipe = make_pipeline(tmp_path, bootstrap, source, sink, max_rows=20, extra=CONTINUOUS, trigger_rows=60)
    produce(bootstrap, source, 0, 3000)
    rnd = random.Random(11)
    seen = []
    for round_ in range(4):
        # The moment to kill at: once the sink has sent a random few more records (committed or
        # not) than before this round, polled with a deadline, not slept for.
        target = len(read_topic(bootstrap, sink, "read_uncommitted")) + rnd.randint(1, 40)
        with open(pipe / f"run{round_}.stderr", "w") as err:
            proc = subprocess.Popen([str(SLUICE), "run", str(pipe)], stdout=subprocess.DEVNULL, stderr=err)
            deadline = time.monotonic() + 60
            while len(read_topic(bootstrap, sink, "read_uncommitted")) < target:
                assert proc.poll() is None, (pipe / f"run{round_}.stderr").read_text()
                assert time.monotonic() < deadline, f"round {round_}: the sink sent nothing new in 60 s"
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        seen.append(len(read_topic(bootstrap, sink)))
    done = run_sluice("run", pipe, "--once")
    assert done.returncode == 0, done.stderr
    want = expected_records(pipe)
    assert_topic_holds(bootstrap, sink, want)
    # The kills interrupted the sink while it had more to send.
    assert any(0 < n < len(want) for n in seen), (seen, len(want))


def test_sink_over_sasl_ssl_with_its_own_cluster_and_a_refused_login(tmp_path, bootstrap, new_topic):
    """The sink writes through a pipeline.yaml cluster of its own (SASL_SSL, the password from
    the environment); a wrong password says "authentication failed" at once and is shown nowhere."""
    port = int(bootstrap.rsplit(":", 1)[1])
    ca = ROOT / ".run" / f"kafka-{port}" / "tls" / "ca.crt"
    assert ca.exists(), "start the broker with KAFKA_SECURE=1 (scripts/integration-tests.sh does)"
    source, sink = new_topic(1), new_topic(1)
    pipe = make_pipeline(tmp_path, bootstrap, source, sink)
    yaml = (pipe / "pipeline.yaml").read_text() + (
        f"  secured:\n    bootstrap.servers: \"127.0.0.1:{port + 4}\"\n    security.protocol: SASL_SSL\n"
        f"    ssl.ca.location: \"{ca}\"\n    sasl.mechanisms: PLAIN\n    sasl.username: sluice\n"
        f"    sasl.password: ${{env:SINK_PASSWORD}}\n")
    (pipe / "pipeline.yaml").write_text(yaml)
    (pipe / "sink.sql").write_text((pipe / "sink.sql").read_text().replace("OPTIONS (format => 'kafka',",
                                                                           "OPTIONS (format => 'kafka', cluster => 'secured',"))
    produce(bootstrap, source, 0, 60)
    wrong = "Wr0ng-pa55word"
    started = time.monotonic()
    refused = run_sluice("run", pipe, "--once", env_extra={"SINK_PASSWORD": wrong})
    assert refused.returncode == 1, refused.stderr
    assert time.monotonic() - started < 40, ("the refused login was only noticed at a timeout", refused.stderr)
    assert "sink 'big_tx', flow 'big_tx_out'" in refused.stderr and "authentication failed" in refused.stderr, \
        refused.stderr
    assert wrong not in refused.stdout + refused.stderr
    ok = run_sluice("run", pipe, "--once", env_extra={"SINK_PASSWORD": "sluice-secret"})
    assert ok.returncode == 0, ok.stderr
    assert_topic_holds(bootstrap, sink, expected_records(pipe))
    assert "sluice-secret" not in ok.stdout + ok.stderr


def write_sink_sql(pipe, text):
    (pipe / "sink.sql").write_text(text)


def test_sink_options_are_checked_at_their_line(tmp_path):
    pipe = write_pipeline(tmp_path / "pipe", "name: sinks\nstorage: ./data\n"
                                             "kafka:\n  default: {bootstrap.servers: \"127.0.0.1:1\"}\n")
    (pipe / "silver.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE t AS SELECT CAST(value AS STRING) AS v, partition AS p\n"
        "FROM STREAM read_kafka(topic => 'x');\n")
    flow = "CREATE FLOW f AS INSERT INTO s SELECT v, p FROM STREAM(t);\n"
    cases = [
        ("CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', colour => 'red');", "sink.sql:1:57",
         "has no option 'colour'"),
        ("CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', value_format => 'avro');", "sink.sql:1:57",
         "value_format => 'avro' needs schema_registry_url"),
        ("CREATE SINK s OPTIONS (format => 'parquet', path => '/elsewhere');", "sink.sql:1:24",
         "format 'parquet' is not a sink format; use format => 'kafka' (a topic) or format => 'delta'"),
        ("CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', key => 'card');", "sink.sql:2:30",
         "takes its key from column 'card', which the flow's rows do not have (they have v, p)"),
        ("CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', kafka.transactional.id => 'mine');",
         "sink.sql:1:57", "kafka.transactional.id is set by sluice"),
        ("CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', kafka.sasl.pasword => 'hunter2-secret');",
         "sink.sql:1:57", "librdkafka has no property 'sasl.pasword' (did you mean 'sasl.password'?)"),
        ("CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', kafka.isolation.level => 'read_committed');",
         "sink.sql:1:57", "kafka.isolation.level is a consumer setting, and a sink only produces"),
        ("CREATE SINK s OPTIONS (format => 'kafka');", "sink.sql:1:13", "needs topic => 'name'"),
    ]
    for sql, where, message in cases:
        write_sink_sql(pipe, sql + "\n" + flow)
        r = run_sluice("validate", pipe)
        assert r.returncode == 1, (sql, r.stdout)
        assert where in r.stderr and message in r.stderr, (sql, r.stderr)
        assert "hunter2" not in r.stderr and "hunter2" not in r.stdout
    write_sink_sql(pipe, "CREATE SINK s OPTIONS (format => 'kafka', topic => 'o');\n"
                         "CREATE FLOW f AS INSERT INTO s SELECT v, count(*) AS n FROM STREAM(t) GROUP BY v;\n")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1 and "sink.sql:2:30" in r.stderr and "a sink flow selects and filters" in r.stderr, r.stderr
    write_sink_sql(pipe, "CREATE SINK s OPTIONS (format => 'kafka', topic => 'o');\n"
                         "CREATE FLOW f AS INSERT INTO s SELECT * FROM STREAM read_kafka(topic => 'x');\n")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1 and "reads read_kafka directly" in r.stderr, r.stderr

    # A cluster shared with read_kafka keeps its consumer settings; what the sink's producer
    # sets itself is refused at the sink's line.
    write_sink_sql(pipe, "CREATE SINK s OPTIONS (format => 'kafka', topic => 'o');\n" + flow)
    shared = ("name: sinks\nstorage: ./data\nkafka:\n  default:\n    bootstrap.servers: \"127.0.0.1:1\"\n"
              "    group.id: readers\n    isolation.level: read_committed\n    enable.auto.commit: \"false\"\n")
    (pipe / "pipeline.yaml").write_text(shared)
    r = run_sluice("validate", pipe)
    assert r.returncode == 0, r.stderr
    (pipe / "pipeline.yaml").write_text(shared + "    transactional.id: mine\n")
    r = run_sluice("validate", pipe)
    assert r.returncode == 1 and "sink.sql:1:13" in r.stderr, r.stderr
    assert "pipeline.yaml sets kafka.default.transactional.id" in r.stderr, r.stderr


@pytest.mark.slow  # the example; the sink's behaviour is covered by the tests above under ASan too
def test_fraud_alerts_example_lands_on_the_alerts_topic(tmp_path, bootstrap, new_topic):
    """examples/fraud_alerts as shipped, with this test's topics: the alerts a Python model
    computes from the transactions arrive on the alerts topic, keyed by card."""
    import shutil

    from conftest import ROOT

    transactions, alerts = new_topic(3), new_topic(3)
    pipe = tmp_path / "fraud_alerts"
    shutil.copytree(ROOT / "examples" / "fraud_alerts", pipe)
    yaml = (pipe / "pipeline.yaml").read_text()
    yaml = yaml.replace("transactions_topic: transactions", f"transactions_topic: {transactions}")
    yaml = yaml.replace("alerts_topic: alerts", f"alerts_topic: {alerts}")
    (pipe / "pipeline.yaml").write_text(yaml)

    producer = Producer({"bootstrap.servers": bootstrap})
    events = []
    for minute, card in [(0, "c1"), (1, "c1"), (1, "c2"), (2, "c1"), (3, "c1"), (4, "c2"), (6, "c3"),
                         (7, "c3"), (8, "c3"), (8, "c3"), (9, "c1"), (30, "c9")]:
        events.append({"card_id": card, "amount": 10.5 + minute, "ts": f"2024-05-01T10:{minute:02d}:00Z",
                       "merchant": "m"})
    for i, e in enumerate(events):
        producer.produce(transactions, value=json.dumps(e).encode(), partition=i % 3)
    assert producer.flush(30) == 0
    r = run_sluice("run", pipe, "--once", "--bootstrap-servers", bootstrap)
    assert r.returncode == 0, r.stderr

    # Model: 5-minute windows closed by the watermark (max event time - 1 minute), > 3 rows.
    watermark = max(int(e["ts"][14:16]) for e in events) - 1
    counts = {}
    for e in events:
        minute = int(e["ts"][14:16])
        start = minute - minute % 5
        if start + 5 <= watermark:
            key = (e["card_id"], start)
            counts[key] = counts.get(key, 0) + 1
    want = sorted((card, start, n) for (card, start), n in counts.items() if n > 3)
    assert want == [("c1", 0, 4), ("c3", 5, 4)]
    deadline = time.monotonic() + 30
    while True:  # the last transaction's markers may land a moment after the run ends
        got = read_topic(bootstrap, alerts)
        if len(got) >= len(want) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted((k.decode(), int(v["window_start"][14:16]), v["n"]) for k, v, _ in got) == want
    assert all(v["window_start"].startswith("2024-05-01T10:") and v["window_start"].endswith(":00.000Z")
               for _, v, _ in got)
