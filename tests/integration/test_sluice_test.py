"""`sluice test`: the examples' fixture cases pass without a broker; a failing case prints its
diff and exits 1, a bad fixture exits 2 naming file:line; --junit-xml, -k, --list; the pytest
plugin; and the agreement check: for a case of every example, the same records produced to the
real broker and run with `sluice run --once` give the rows the case expects, read by deltalake."""
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import fixture_agreement as agreement
from conftest import ROOT, SLUICE, run_sluice

EXAMPLES = ROOT / "examples"

PIPELINE = """name: t
storage: ./data
kafka:
  default:
    bootstrap.servers: 127.0.0.1:1
"""
SQL = """CREATE OR REFRESH STREAMING TABLE bronze AS SELECT value.* FROM STREAM read_kafka(topic => 'ev',
  value_format => 'json', value_schema => 'user STRING, n BIGINT');
CREATE OR REFRESH STREAMING TABLE silver (CONSTRAINT has_user EXPECT (user IS NOT NULL) ON VIOLATION DROP ROW)
AS SELECT user, n * 2 AS n2 FROM STREAM(bronze);
"""
CASES = """cases:
  - name: doubles
    kafka: {ev: [{value: {user: a, n: 1}}, {value: {n: 7}}]}
    expect:
      silver: {rows: [{user: a, n2: 2}], expectations: {has_user: {passed: 1, failed: 1}}}
  - name: wrong on purpose
    kafka: {ev: [{value: {user: a, n: 1}}, {value: {user: b, n: 2}}]}
    expect:
      silver: {rows: [{user: a, n2: 2}, {user: c, n2: 4}]}
"""


@pytest.fixture
def pipeline(tmp_path):
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE)
    (d / "p.sql").write_text(SQL)
    (d / "tests" / "cases.yaml").write_text(CASES)
    return d


def test_every_example_case_passes():
    r = run_sluice("test", EXAMPLES, timeout=600)
    print(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    listed = run_sluice("test", EXAMPLES, "--list").stdout.split("\n")
    ran = [line for line in r.stdout.splitlines() if line.startswith("PASS")]
    assert len(ran) == len([c for c in listed if c]) >= 8
    for example in ("quickstart", "medallion", "medallion_python", "fraud_alerts", "debezium"):
        assert any(line.startswith(f"PASS  {example}/tests/") for line in ran), example
    assert "is not run in tests" not in r.stdout  # fraud_alerts' case checks the records its sink sends


def test_a_failing_case_prints_its_diff_and_exits_1(pipeline, tmp_path):
    junit = tmp_path / "junit.xml"
    r = run_sluice("test", pipeline, "--junit-xml", junit)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "PASS  tests/cases.yaml::doubles" in r.stdout
    assert "FAIL  tests/cases.yaml::wrong on purpose" in r.stdout
    assert "missing rows (expected, not found): 1" in r.stdout
    assert '- {"n2":4,"user":"c"}  (' in r.stdout  # the columns the case names, by name
    assert '+ {"n2":4,"user":"b"}' in r.stdout
    assert "1 passed, 1 failed, 0 errors" in r.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    failed = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["wrong on purpose"]
    assert "unexpected rows" in failed[0].find("failure").text
    # The temporary storage is gone: nothing under the pipeline folder either.
    assert not (pipeline / "data").exists()


def test_junit_xml_stays_valid_with_a_file_name_that_is_not_utf8(pipeline, tmp_path):
    # A file name's bytes reach the case id (the XML classname); XML must be UTF-8 text.
    os.rename(os.fsencode(pipeline / "tests" / "cases.yaml"), os.fsencode(pipeline / "tests") + b"/c\xff.yaml")
    junit = tmp_path / "junit.xml"
    r = subprocess.run([str(SLUICE), "test", str(pipeline), "--junit-xml", str(junit)], capture_output=True)
    assert r.returncode == 1, r.stdout + r.stderr
    suite = ET.parse(junit).getroot().find("testsuite")  # raises on bytes that are not UTF-8
    assert suite.get("tests") == "2"
    assert {c.get("classname") for c in suite.iter("testcase")} == {"tests/c\ufffd.yaml"}


def test_k_selects_and_list_names_the_cases(pipeline):
    r = run_sluice("test", pipeline, "-k", "doubles")
    assert r.returncode == 0 and "1 passed, 0 failed" in r.stdout, r.stdout + r.stderr
    r = run_sluice("test", pipeline, "--list")
    assert r.stdout.splitlines() == ["tests/cases.yaml::doubles", "tests/cases.yaml::wrong on purpose"]
    r = run_sluice("test", pipeline, "--case", "tests/cases.yaml::nope")
    assert r.returncode == 2 and "no case has the id 'tests/cases.yaml::nope'" in r.stderr


def test_a_bad_fixture_exits_2_naming_file_and_line(pipeline):
    (pipeline / "tests" / "cases.yaml").write_text(
        "cases:\n  - name: c\n    kafka: {ev: [{value: 1}]}\n    expect: {silver: {rows: [{usr: a}]}}\n")
    r = run_sluice("test", pipeline)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "cases.yaml:4:30: 'silver' has no column 'usr'; its columns: user, n2" in r.stdout
    (pipeline / "tests" / "cases.yaml").write_text("cases:\n  - name: c\n    kafak: {}\n")
    r = run_sluice("test", pipeline)
    assert r.returncode == 2
    assert "cases.yaml:3:5: unknown key 'kafak' in a case (did you mean 'kafka'?)" in r.stderr


def test_pytest_plugin_runs_each_case_as_an_item(pipeline):
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), SLUICE_BIN=str(SLUICE))
    r = subprocess.run([sys.executable, "-m", "pytest", "-p", "sluice.pytest_plugin", "-p", "no:cacheprovider",
                        "--sluice", str(pipeline), "-v", "--rootdir", str(pipeline)],
                       capture_output=True, text=True, env=env, cwd=pipeline, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "cases.yaml::doubles PASSED" in out
    assert "cases.yaml::wrong on purpose FAILED" in out
    assert '- {"n2":4,"user":"c"}' in out  # the binary's diff is the failure
    assert "1 failed, 1 passed" in out


AGREEMENT_CASES = [
    ("quickstart", "events.yaml", "typed events, a row without a user dropped, an unknown type counted"),
    ("medallion", "medallion.yaml", "user events - dead letters, quarantine and revenue per type"),
    ("fraud_alerts", "alerts.yaml", "a card used four times in five minutes raises one alert when the window closes"),
    ("debezium", "customers.yaml", "snapshot, update, insert, delete and its tombstone"),
]


@pytest.mark.parametrize("example,fixture,name", AGREEMENT_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(AGREEMENT_CASES)])
def test_fixture_path_and_kafka_path_agree(bootstrap, tmp_path, example, fixture, name):
    r = run_sluice("test", EXAMPLES / example, "--case", f"tests/{fixture}::{name}")
    assert r.returncode == 0, r.stdout + r.stderr
    case = agreement.load_case(EXAMPLES / example / "tests" / fixture, name)
    topics = {}  # every topic the file's cases name: the pipeline reads them all
    for other in agreement.load_cases(EXAMPLES / example / "tests" / fixture):
        for b in agreement.batches(other):
            for t in b.get("kafka") or {}:
                topics.setdefault(t, 1)
    for b in agreement.batches(case):
        for t, records in (b.get("kafka") or {}).items():
            topics[t] = max([topics.get(t, 1)] + [int(x.get("partition", 0)) + 1 for x in records])
    sink_partitions = case.get("sink_partitions") or {}
    folder = tmp_path / example
    renamed = agreement.copy_pipeline(EXAMPLES / example, folder, set(topics))
    agreement.create_topics(bootstrap, {renamed[t]: sink_partitions.get(t, topics.get(t, 1)) for t in renamed})
    for b in agreement.batches(case):
        agreement.produce(bootstrap, b, renamed)
        run = run_sluice("run", folder, "--once", "--bootstrap-servers", bootstrap)
        assert run.returncode == 0, run.stdout + run.stderr
        assert agreement.check(folder / "data", b.get("expect"), renamed) == []
        # What the real sink put on the broker is what the fixture's capture holds.
        assert agreement.check_sinks(folder, bootstrap, b.get("expect"), renamed) == []
    assert agreement.check(folder / "data", case.get("expect"), renamed) == []
    assert agreement.check_sinks(folder, bootstrap, case.get("expect"), renamed) == []
    if (case.get("expect") or {}).get("sinks"):  # and that oracle can fail: a record's partition moved
        sink, spec = next(iter(case["expect"]["sinks"].items()))
        moved = [dict(r, partition=(r["partition"] + 1) % sink_partitions.get(r["topic"], 1) if
                      sink_partitions.get(r["topic"], 1) > 1 else r["partition"] + 1) for r in spec["rows"]]
        assert any("missing" in p for p in agreement.check_sinks(folder, bootstrap, {"sinks": {sink: {"rows": moved}}},
                                                                  renamed))
    # The oracle can fail: one expected row left out of a list is reported as unexpected there.
    dataset, spec = next((d, s) for d, s in case["expect"].items() if isinstance(s.get("rows"), list) and s["rows"])
    fewer = {dataset: dict(spec, rows=spec["rows"][1:])}
    assert any("unexpected" in p for p in agreement.check(folder / "data", fewer, renamed))


def test_the_agreement_oracle_compares_like_sluice_test(tmp_path):
    """The Python matcher: whole numbers exactly, maps on exactly their entries, and a side-table
    count that is not 0 fails when the side table is absent."""
    m = agreement.matches
    assert not m(1704067200000, 1704067201000, 1e-9)
    assert m(1704067200000, 1704067200000, 1e-9)
    assert m(1.5, 1.5 + 1e-12, 1e-9)
    assert m({"a": 1}, [("a", 1)], 0) and not m({"a": 1}, [("a", 1), ("b", 2)], 0)
    (tmp_path / "tables").mkdir()
    assert agreement.check(tmp_path, {"silver": {"dead_letters": 1}}, {}) == [
        "silver_dead_letter: 1 rows expected, no such table"]
    assert agreement.check(tmp_path, {"silver": {"dead_letters": 0}}, {}) == []
    # A sink record's `partition: null` is any partition (the partitioner picks one at random for
    # a record without a key); a number is that partition.
    got = {"topic": "o", "partition": 2, "key": None, "value": '{"n":1}', "headers": []}
    r = agreement._record_matches
    assert r({"partition": None, "key": None, "value": {"n": 1}}, got, 0)
    assert r({"partition": 2, "value": {"n": 1}}, got, 0) and not r({"partition": 1, "value": {"n": 1}}, got, 0)
    assert not r({"partition": None, "value": {"n": 2}}, got, 0)


AVRO_SQL = """CREATE OR REFRESH STREAMING TABLE orders AS SELECT value.* FROM STREAM read_kafka(topic => 'orders',
  value_format => 'avro', schema_registry_url => 'http://127.0.0.1:{port}', schema_registry_subject => 'orders-value');
CREATE SINK out OPTIONS ('format' => 'delta', 'path' => '/tmp/never-written-by-sluice-test');
CREATE FLOW to_out AS INSERT INTO out SELECT * FROM STREAM(orders);
"""
AVRO_CASES = """cases:
  - name: avro records with the writer schemas given
    schema_registry:
      - {id: 6, schema: {type: record, name: Order, fields: [{name: id, type: long}, {name: amount, type: double}]}}
      - id: 7
        subject: orders-value
        schema:
          type: record
          name: Order
          fields:
            - {name: id, type: long}
            - {name: item, type: ["null", string], default: null}
            - {name: amount, type: double}
            - {name: at, type: {type: long, logicalType: timestamp-millis}, default: 0}
    batches:
      - kafka:
          orders:
            - {value: {id: 1, item: pen, amount: 2.5, at: "2024-05-01T10:00:00Z"}, value_schema_id: 7}
            - {value: {id: 2, amount: 4}, value_schema_id: 7}
        expect:
          orders: {rows: 2}
      - kafka:
          orders:
            - {value: {id: 3, amount: 1.25}, value_schema_id: 6}   # an older writer: item from the default
    expect:
      orders:
        rows:
          - {id: 1, item: pen, amount: 2.5, at: "2024-05-01T10:00:00Z"}
          - {id: 2, item: null, amount: 4.0, at: "1970-01-01T00:00:00Z"}
          - {id: 3, item: null, amount: 1.25}
"""


def test_avro_with_given_schemas_never_contacts_the_registry(tmp_path):
    """The registry URL is a socket that listens but nobody may connect to: the case decodes its
    records (two writer schemas, the reader by subject) from the schemas the case gives."""
    import select
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE.replace("name: t", "name: t\nmode: continuous"))
    (d / "p.sql").write_text(AVRO_SQL.format(port=port))
    (d / "tests" / "avro.yaml").write_text(AVRO_CASES)
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PASS" in r.stdout
    # The Delta sink runs into the case's storage, never to its path; how a continuous case runs is said.
    assert not os.path.exists("/tmp/never-written-by-sluice-test"), "sluice test wrote the Delta sink's path"
    assert "note: pipeline.yaml mode: continuous: each batch runs updates over the records given so far" in r.stdout
    readable, _, _ = select.select([listener], [], [], 0)
    assert not readable, "sluice test connected to the schema registry"
    listener.close()

    # A value that does not fit its schema is refused at its line; a sink cannot be expected.
    (d / "tests" / "avro.yaml").write_text(AVRO_CASES.replace("{id: 3, amount: 1.25}", "{id: 3, amount: cheap}"))
    r = run_sluice("test", d)
    assert r.returncode == 2 and "avro.yaml:24:" in r.stdout + r.stderr
    assert "amount: \"cheap\" is not a number (Avro double)" in r.stdout + r.stderr
    (d / "tests" / "avro.yaml").write_text(AVRO_CASES + "      out: {rows: 3}\n")
    r = run_sluice("test", d)
    assert r.returncode == 2 and "'out' is a sink: expect what it sent under expect: sinks: out:" in r.stdout + r.stderr
    # Under sinks: the Delta sink's rows, read from its table in the case's storage.
    (d / "tests" / "avro.yaml").write_text(AVRO_CASES + "      sinks: {out: {rows: [{id: 1, item: pen}, {id: 2}, {id: 3}]}}\n")
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists("/tmp/never-written-by-sluice-test")


SINK_SQL = """CREATE OR REFRESH STREAMING TABLE ev AS SELECT value.*, headers FROM STREAM read_kafka(topic => 'ev',
  value_format => 'json', value_schema => 'user STRING, n BIGINT, at TIMESTAMP');
CREATE OR REFRESH STREAMING TABLE other AS SELECT value FROM STREAM read_kafka(topic => 'other');
CREATE SINK out OPTIONS (format => 'kafka', topic => 'outgoing', key => 'user', headers => 'headers');
CREATE FLOW to_out AS INSERT INTO out SELECT user, n * 10 AS n10, at, headers FROM STREAM(ev) WHERE n > 0;
CREATE SINK quiet OPTIONS (format => 'kafka', topic => 'outgoing');
CREATE FLOW to_quiet AS INSERT INTO quiet SELECT * FROM STREAM(other);
"""
SINK_CASES = """cases:
  - name: records as the sink sends them
    sink_partitions: {outgoing: 4}
    batches:
      - kafka:
          ev:
            - {value: {user: ann, n: 1, at: "2024-05-01T10:00:00Z"}, headers: {trace: t1}}
            - {value: {user: bob, n: 0}}
        expect:
          sinks: {out: {rows: 1}}
      - kafka:
          ev:
            - {value: {n: 2}, headers: [{key: h, value: a}, {key: h, value: b}]}
    expect:
      sinks:
        out:
          rows:
            - {topic: outgoing, partition: %(ann)d, key: ann, headers: {trace: t1},
               value: {user: ann, n10: 10, at: "2024-05-01T10:00:00.000Z"}}
            - {key: null, partition: null, value: '{"n10":20}', headers: [{key: h, value: a}, {key: h, value: b}]}
"""


def test_kafka_sink_records_are_what_the_sink_sends(tmp_path):
    """A Kafka sink runs in a case through its own flow code; its records (key, JSON value, headers,
    the partition librdkafka's consistent_random partitioner gives the key) are compared, the diff
    names them, and a sink whose upstream the case never feeds is refused naming it."""
    import zlib
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE)
    (d / "p.sql").write_text(SINK_SQL)
    cases = SINK_CASES % {"ann": zlib.crc32(b"ann") % 4}
    (d / "tests" / "sink.yaml").write_text(cases)
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    # One value changed: the diff shows the record the sink sent.
    (d / "tests" / "sink.yaml").write_text(cases.replace("n10: 10,", "n10: 11,"))
    r = run_sluice("test", d)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "    sink out (" in r.stdout and "missing rows (expected, not found): 1" in r.stdout
    assert '"value":{"at":"2024-05-01T10:00:00.000Z","n10":10,"user":"ann"}' in r.stdout
    # A value's fields are all of them: a mapping naming fewer is a difference.
    (d / "tests" / "sink.yaml").write_text(cases.replace(', at: "2024-05-01T10:00:00.000Z"}', "}"))
    assert run_sluice("test", d).returncode == 1
    # quiet reads `other`, which the case gives no record of.
    (d / "tests" / "sink.yaml").write_text(cases.replace("    expect:\n      sinks:\n", "    expect:\n      sinks:\n"
                                                         "        quiet: {rows: 0}\n"))
    r = run_sluice("test", d)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "sink 'quiet' reads 'other', which this case never runs" in r.stdout + r.stderr
    (d / "tests" / "sink.yaml").write_text(cases.replace("sinks: {out: {rows: 1}}", "sinks: {ev: {rows: 1}}"))
    r = run_sluice("test", d)
    assert r.returncode == 2 and "expected sink 'ev' is not a sink of pipeline 't' (it is a table" in r.stdout + r.stderr
    # sink_partitions names the topic of a Kafka sink: a typo, or a sink's name, is refused at its key.
    (d / "tests" / "sink.yaml").write_text(cases.replace("{outgoing: 4}", "{outgoin: 4}"))
    r = run_sluice("test", d)
    assert r.returncode == 2, r.stdout + r.stderr
    assert ("sink.yaml:3:23: sink_partitions: 'outgoin' is not the topic of a Kafka sink of pipeline 't' (did you "
            "mean 'outgoing'?); the topics its sinks write: outgoing") in r.stdout + r.stderr
    (d / "tests" / "sink.yaml").write_text(cases.replace("{outgoing: 4}", "{outgoing: 4, out: 2}"))
    r = run_sluice("test", d)
    assert r.returncode == 2 and "sink.yaml:3:36: sink_partitions: 'out' is not the topic of a Kafka sink of pipeline " \
        "'t' ('out' is a sink's name: its topic is 'outgoing')" in r.stdout + r.stderr


AVRO_SINK_SQL = SQL + """CREATE SINK av OPTIONS (format => 'kafka', topic => 'avro-out', value_format => 'avro',
  schema_registry_url => 'http://127.0.0.1:1');
CREATE FLOW to_av AS INSERT INTO av SELECT * FROM STREAM(silver);
"""


def test_an_avro_kafka_sink_is_not_run_and_says_so(tmp_path):
    """An Avro Kafka sink would register its schema: a case runs without it and notes so; a case
    that expects its records, or sets its topic's partitions, is refused (exit 2)."""
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE)
    (d / "p.sql").write_text(AVRO_SINK_SQL)
    case = CASES.split("  - name: wrong on purpose")[0]
    (d / "tests" / "c.yaml").write_text(case)
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("sink 'av' is not run in tests: its values are Avro (value_format => 'avro'), whose schema a test cannot "
            "register") in r.stdout
    (d / "tests" / "c.yaml").write_text(case + "      sinks: {av: {rows: 1}}\n")
    r = run_sluice("test", d)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "c.yaml:6:15: sink 'av' is not run in tests: its values are Avro" in r.stdout + r.stderr
    (d / "tests" / "c.yaml").write_text(case.replace("    kafka:", "    sink_partitions: {avro-out: 2}\n    kafka:"))
    r = run_sluice("test", d)
    assert r.returncode == 2 and "c.yaml:3:23: sink_partitions: topic 'avro-out' is written by sink 'av', whose " \
        "values are Avro: it is not run in tests" in r.stdout + r.stderr


def test_a_delta_sink_inside_the_pipelines_storage_is_refused_as_in_a_real_run(tmp_path):
    """The case plans against pipeline.yaml's storage (./data), as sluice validate and sluice run do,
    and writes the sink's table into its temporary storage only."""
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE)
    sql = SQL + "CREATE SINK ds OPTIONS (format => 'delta', path => './data/dsink');\n" \
        "CREATE FLOW to_ds AS INSERT INTO ds SELECT * FROM STREAM(silver);\n"
    (d / "p.sql").write_text(sql)
    (d / "tests" / "c.yaml").write_text(CASES.split("  - name: wrong on purpose")[0])
    refusal = "sink 'ds': path './data/dsink' is inside the pipeline's storage"
    v = run_sluice("validate", d)
    assert v.returncode != 0 and refusal in v.stdout + v.stderr, v.stdout + v.stderr
    r = run_sluice("test", d)
    assert r.returncode == 2 and refusal in r.stdout + r.stderr, r.stdout + r.stderr
    assert "p.sql:5:" in r.stdout + r.stderr
    (d / "p.sql").write_text(sql.replace("./data/dsink", "./dsink"))
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (d / "dsink").exists() and not (d / "data").exists()


def test_a_continuous_pipelines_case_runs_until_its_records_are_consumed(tmp_path):
    """The stop rule: with max_offsets_per_trigger => '1' a continuous run reads one record per
    update and goes on; the case's batch is done once no record is left, so all three arrive (and
    the expectation counts are those of every update of the batch)."""
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE.replace("name: t", "name: t\nmode: continuous"))
    (d / "p.sql").write_text(SQL.replace("value_format => 'json'", "value_format => 'json', max_offsets_per_trigger => '1'"))
    (d / "tests" / "c.yaml").write_text("""cases:
  - name: three records one at a time
    batches:
      - kafka: {ev: [{value: {user: a, n: 1}}, {value: {n: 7}}, {value: {user: b, n: 2}}]}
        expect:
          silver: {rows: [{user: a, n2: 2}, {user: b, n2: 4}], expectations: {has_user: {passed: 2, failed: 1}}}
      - kafka: {ev: [{value: {user: c, n: 3}}]}
    expect:
      silver: {rows: 3}
""")
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "until they are consumed" in r.stdout
    # One record per update (a continuous run's trigger), as many updates as records, then stop.
    assert "note: batch 1: 3 update(s) until its records were consumed" in r.stdout
    assert "note: batch 2: 1 update(s) until its records were consumed" in r.stdout


def test_a_continuous_case_stops_at_the_flows_ending_offsets(tmp_path):
    """ending_offsets below the records given: the flow never reads past them, so the backlog is
    measured to them and the case stops when they are read (it ran update after update before,
    the backlog being measured to the high-water mark)."""
    d = tmp_path / "p"
    (d / "tests").mkdir(parents=True)
    (d / "pipeline.yaml").write_text(PIPELINE.replace("name: t", "name: t\nmode: continuous"))
    (d / "p.sql").write_text(SQL.replace(
        "value_format => 'json'",
        "value_format => 'json', max_offsets_per_trigger => '1', ending_offsets => '{\"ev\": {\"0\": 2}}'"))
    (d / "tests" / "c.yaml").write_text("""cases:
  - name: two of four records
    kafka: {ev: [{value: {user: a, n: 1}}, {value: {user: b, n: 2}}, {value: {user: c, n: 3}}, {value: {user: d, n: 4}}]}
    expect:
      silver: {rows: [{user: a, n2: 2}, {user: b, n2: 4}]}
""")
    r = run_sluice("test", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "note: batch 1: 2 update(s) until its records were consumed" in r.stdout, r.stdout
