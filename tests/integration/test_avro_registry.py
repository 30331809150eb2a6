"""Avro in the Confluent wire format against a real schema registry (Apicurio Registry from
Maven Central, started by scripts/registry.sh): `sluice decode --format avro` with two
registered versions of a schema, Confluent-framed records of both, a garbage record and one
with an unknown schema id; `--format json` with rescue and errors; and the registry over HTTPS
with basic auth (REGISTRY_TLS=1: a TLS-terminating front with a CA made at start), read by
read_kafka end to end, with untrusted certificates and refused credentials named as such; and a
Kafka sink writing Avro (value_format => 'avro'): its schema registered as <topic>-value, its
values read back by fastavro and by read_kafka."""
import json
import os
import socket
import struct
import subprocess
import urllib.request
import uuid

import pyarrow as pa
import pyarrow.ipc
import pytest

from conftest import ROOT, run_sluice
from readers import read_topic_to_end

V1 = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "int"},
    {"name": "item", "type": "string"},
    {"name": "price", "type": "float"},
    {"name": "coupon", "type": "string"},
]}
V2 = {"type": "record", "name": "Order", "namespace": "shop", "fields": [
    {"name": "id", "type": "long"},
    {"name": "item", "type": "string"},
    {"name": "price", "type": "double"},
    {"name": "qty", "type": "int", "default": 1},
    {"name": "placed", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "note", "type": ["null", "string"], "default": None},
]}


def free_port():
    """A free port whose next one is free too (the registry's HTTPS front listens there)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


@pytest.fixture(scope="module")
def registry():
    """Apicurio's Confluent-compatible API root (plain HTTP; HTTPS on the next port)."""
    port = free_port()
    env = dict(os.environ, REGISTRY_PORT=str(port), REGISTRY_TLS="1")
    subprocess.run([ROOT / "scripts" / "registry.sh", "start"], env=env, check=True)
    try:
        yield f"http://127.0.0.1:{port}/apis/ccompat/v7"
    finally:
        subprocess.run([ROOT / "scripts" / "registry.sh", "stop"], env=env, check=False)


def register(url, subject, schema):
    body = json.dumps({"schema": json.dumps(schema), "schemaType": "AVRO"}).encode()
    req = urllib.request.Request(f"{url}/subjects/{subject}/versions", data=body, method="POST",
                                 headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["id"]


def zigzag(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def string(s):
    b = s.encode()
    return zigzag(len(b)) + b


def framed(schema_id, body):
    return b"\x00" + struct.pack(">I", schema_id) + body


def write_input(path, values):
    table = pa.table({"value": pa.array(values, pa.binary())})
    with pa.ipc.new_file(path, table.schema) as w:
        w.write_table(table)


def read_output(path):
    with pa.ipc.open_file(path) as r:
        return r.read_all().to_pylist()


def test_avro_records_of_two_writer_versions_resolve_to_the_latest(registry, tmp_path):
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    id1 = register(registry, subject, V1)
    id2 = register(registry, subject, V2)
    assert id1 != id2
    records = [
        framed(id1, zigzag(7) + string("pen") + struct.pack("<f", 1.5) + string("SAVE10")),
        framed(id2, zigzag(8) + string("ink") + struct.pack("<d", 2.25) + zigzag(3)
               + zigzag(1704164645500) + zigzag(1) + string("gift")),
        b"garbage!",
        framed(4242, zigzag(1)),
        framed(id2, zigzag(9) + string("cut")),  # truncated
        None,
    ]
    inp, out = tmp_path / "in.arrow", tmp_path / "out.arrow"
    write_input(inp, records)
    r = run_sluice("decode", "--format", "avro", "--input", inp, "--output", out,
                   "--registry", registry, "--subject", subject)
    assert r.returncode == 0, r.stderr
    assert "6 rows decoded, 3 errors" in r.stdout
    rows = read_output(out)
    assert list(rows[0]) == ["id", "item", "price", "qty", "placed", "note", "_rescued_data", "_error"]
    assert rows[0] == {"id": 7, "item": "pen", "price": 1.5, "qty": 1, "placed": None, "note": None,
                       "_rescued_data": '{"coupon":"SAVE10"}', "_error": None}
    placed = rows[1].pop("placed")
    assert placed.isoformat() == "2024-01-02T03:04:05.500000+00:00"
    assert rows[1] == {"id": 8, "item": "ink", "price": 2.25, "qty": 3, "note": "gift",
                       "_rescued_data": None, "_error": None}
    assert rows[2]["_error"] == "Avro record starts with magic byte 103, not 0: not in the Confluent wire format"
    assert rows[3]["_error"].startswith("schema id 4242: ")
    assert "HTTP 404" in rows[3]["_error"] and "/schemas/ids/4242" in rows[3]["_error"]
    assert rows[4]["_error"] == f"schema id {id2}: bad Avro record at byte 10: truncated double"
    assert rows[5]["_error"] is None
    for row in rows[2:]:
        assert all(row[c] is None for c in ["id", "item", "price", "qty", "placed", "note", "_rescued_data"])


def test_reader_schema_from_a_file(registry, tmp_path):
    id1 = register(registry, f"orders-{uuid.uuid4().hex[:8]}-value", V1)
    avsc = tmp_path / "reader.avsc"
    avsc.write_text(json.dumps({"type": "record", "name": "Order", "namespace": "shop", "fields": [
        {"name": "item", "type": "string"}, {"name": "price", "type": "double"}]}))
    inp, out = tmp_path / "in.arrow", tmp_path / "out.arrow"
    write_input(inp, [framed(id1, zigzag(1) + string("a") + struct.pack("<f", 0.5) + string("c"))])
    r = run_sluice("decode", "--format", "avro", "--input", inp, "--output", out,
                   "--registry", registry, "--reader-schema", avsc)
    assert r.returncode == 0, r.stderr
    assert read_output(out) == [{"item": "a", "price": 0.5, "_rescued_data": '{"id":1,"coupon":"c"}',
                                 "_error": None}]


def test_registry_password_never_on_the_command_line(registry, tmp_path):
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    id1 = register(registry, subject, V1)
    inp, out = tmp_path / "in.arrow", tmp_path / "out.arrow"
    write_input(inp, [framed(id1, zigzag(1) + string("a") + struct.pack("<f", 0.5) + string("c"))])
    base = ["decode", "--format", "avro", "--input", inp, "--output", out, "--registry", registry, "--subject", subject]
    # On the command line a password is readable by every user (ps): refused, and not echoed.
    r = run_sluice(*base, "--registry-auth", "alice:s3cret-pw")
    assert r.returncode == 1 and "--registry-auth-file" in r.stderr and "SLUICE_REGISTRY_AUTH" in r.stderr
    assert "s3cret-pw" not in r.stderr + r.stdout
    # From a file or the environment it is used (this registry runs without auth and accepts it).
    auth = tmp_path / "registry-auth"
    auth.write_text("alice:s3cret-pw\n")
    r = run_sluice(*base, "--registry-auth-file", auth)
    assert r.returncode == 0, r.stderr
    assert "1 rows decoded, 0 errors" in r.stdout
    r = run_sluice(*base, env_extra={"SLUICE_REGISTRY_AUTH": "alice:s3cret-pw"})
    assert r.returncode == 0 and "1 rows decoded, 0 errors" in r.stdout, r.stderr
    # Bad or missing credentials name the file or variable, never the secret.
    auth.write_text("just-a-s3cret-token\n")
    r = run_sluice(*base, "--registry-auth-file", auth)
    assert r.returncode == 1 and str(auth) in r.stderr and "'user:password'" in r.stderr
    assert "s3cret" not in r.stderr + r.stdout
    r = run_sluice(*base, env_extra={"SLUICE_REGISTRY_AUTH": "just-a-s3cret-token"})
    assert r.returncode == 1 and "SLUICE_REGISTRY_AUTH" in r.stderr and "s3cret" not in r.stderr + r.stdout
    r = run_sluice(*base, "--registry-auth-file", tmp_path / "missing")
    assert r.returncode == 1 and "cannot read --registry-auth-file" in r.stderr and "missing" in r.stderr


def test_unknown_subject_and_bad_arguments_exit_1(registry, tmp_path):
    inp = tmp_path / "in.arrow"
    write_input(inp, [b"x"])
    r = run_sluice("decode", "--format", "avro", "--input", inp, "--output", tmp_path / "o.arrow",
                   "--registry", registry, "--subject", "nope")
    assert r.returncode == 1
    assert "latest version of subject 'nope'" in r.stderr and "404" in r.stderr
    r = run_sluice("decode", "--format", "avro", "--input", inp, "--output", tmp_path / "o.arrow")
    assert r.returncode == 1 and "--registry" in r.stderr
    r = run_sluice("decode", "--format", "xml", "--input", inp, "--output", tmp_path / "o.arrow")
    assert r.returncode == 1 and "json or avro" in r.stderr


def test_json_decode_rescues_and_reports_errors(tmp_path):
    inp, out = tmp_path / "in.arrow", tmp_path / "out.arrow"
    write_input(inp, [b'{"a": 1, "b": "x", "c": true}', b'{"a": "one"}', b'{"a": 1'])
    r = run_sluice("decode", "--format", "json", "--input", inp, "--output", out, "--schema", "a INT, b STRING")
    assert r.returncode == 0, r.stderr
    assert read_output(out) == [
        {"a": 1, "b": "x", "_rescued_data": '{"c":true}', "_error": None},
        {"a": None, "b": None, "_rescued_data": '{"a":"one"}', "_error": None},
        {"a": None, "b": None, "_rescued_data": None,
         "_error": "invalid JSON at byte 7: Missing a comma or '}' after an object member."},
    ]


def test_kafka_pipeline_decodes_avro_with_the_registry(registry, tmp_path, bootstrap, new_topic):
    """read_kafka(value_format => 'avro'): records of two writer versions land typed in the
    table, what the reader lacks in _rescued_data, undecodable records in the dead-letter table."""
    from deltalake import DeltaTable
    from test_sql_pipeline_e2e import kafka_pipeline, produce_values

    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    id1 = register(registry, subject, V1)
    id2 = register(registry, subject, V2)
    topic = new_topic(1)
    values = []
    for i in range(300):
        if i % 50 == 7:
            values.append(b"not avro")
        elif i % 2:
            values.append(framed(id1, zigzag(i) + string(f"item{i}") + struct.pack("<f", 0.5) + string(f"c{i}")))
        else:
            values.append(framed(id2, zigzag(i) + string(f"item{i}") + struct.pack("<d", i / 4) + zigzag(i % 5)
                                 + zigzag(1704164645500 + i) + zigzag(0)))
    produce_values(bootstrap, topic, values)
    pipe = kafka_pipeline(tmp_path, "avro", bootstrap)
    (pipe / "orders.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE orders
AS SELECT value.*, _rescued_data, offset AS src_offset
FROM STREAM read_kafka(topic => '{topic}', value_format => 'avro',
                       schema_registry_url => '{registry}', schema_registry_subject => '{subject}');
""")
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    rows = {r["src_offset"]: r for r in
            DeltaTable(str(pipe / "data" / "tables" / "orders")).to_pyarrow_table().to_pylist()}
    dead = DeltaTable(str(pipe / "data" / "tables" / "orders_dead_letter")).to_pyarrow_table().to_pylist()
    bad = {i for i in range(300) if i % 50 == 7}
    assert {d["offset"] for d in dead} == bad and len(dead) == len(bad)
    assert all(d["value"] == b"not avro" and "magic byte" in d["error"] for d in dead)
    assert set(rows) == set(range(300)) - bad
    for i, row in rows.items():
        assert row["id"] == i and row["item"] == f"item{i}"
        if i % 2:  # v1 writer: float price promoted, coupon rescued, qty from the reader's default
            assert row["price"] == 0.5 and row["qty"] == 1 and row["placed"] is None
            assert json.loads(row["_rescued_data"]) == {"coupon": f"c{i}"}
        else:
            assert row["price"] == i / 4 and row["qty"] == i % 5 and row["note"] is None
            assert row["_rescued_data"] is None


@pytest.fixture(scope="module")
def https_registry(registry):
    """The same registry over HTTPS with basic auth: its URL, CA file and 'user:password'."""
    port = int(registry.split(":")[2].split("/")[0])
    tls = ROOT / ".run" / f"registry-{port}" / "tls"
    return {"url": f"https://127.0.0.1:{port + 1}/apis/ccompat/v7", "ca": tls / "ca.crt",
            "auth": (tls / "auth").read_text().strip()}


def https_avro_pipeline(tmp_path, bootstrap, topic, subject, url, extra_args=""):
    from test_sql_pipeline_e2e import kafka_pipeline
    pipe = kafka_pipeline(tmp_path, "avro_tls", bootstrap)
    (pipe / "orders.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE orders
AS SELECT value.*, offset AS src_offset
FROM STREAM read_kafka(topic => '{topic}', value_format => 'avro',
                       schema_registry_url => '{url}', schema_registry_subject => '{subject}'{extra_args});
""")
    return pipe


@pytest.mark.parametrize("auth_from", ["env", "file"])
def test_kafka_pipeline_reads_avro_from_an_https_registry_with_basic_auth(
        registry, https_registry, tmp_path, bootstrap, new_topic, auth_from):
    from deltalake import DeltaTable
    from test_sql_pipeline_e2e import produce_values

    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    id1 = register(registry, subject, V1)
    topic = new_topic(1)
    produce_values(bootstrap, topic, [framed(id1, zigzag(i) + string(f"item{i}") + struct.pack("<f", 0.5)
                                             + string(f"c{i}")) for i in range(40)])
    # The CA and auth files sit beside the SQL file and are named relative to it.
    extra = ", schema_registry_ca_location => 'registry-ca.pem'"
    env = {}
    if auth_from == "file":
        extra += ", schema_registry_auth_file => 'registry.auth'"
    else:
        env["SLUICE_REGISTRY_AUTH"] = https_registry["auth"]
    pipe = https_avro_pipeline(tmp_path, bootstrap, topic, subject, https_registry["url"], extra)
    (pipe / "registry-ca.pem").write_bytes(https_registry["ca"].read_bytes())
    (pipe / "registry.auth").write_text(https_registry["auth"] + "\n")
    r = run_sluice("run", pipe, "--once", env_extra=env)
    assert r.returncode == 0, r.stderr
    rows = DeltaTable(str(pipe / "data" / "tables" / "orders")).to_pyarrow_table().to_pylist()
    assert sorted((row["src_offset"], row["id"], row["item"], row["price"]) for row in rows) == \
        [(i, i, f"item{i}", 0.5) for i in range(40)]
    password = https_registry["auth"].split(":", 1)[1]
    assert password not in r.stdout + r.stderr
    events = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    assert password not in repr(events)


def test_untrusted_registry_certificate_names_the_cause(registry, https_registry, tmp_path, bootstrap, new_topic):
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    register(registry, subject, V1)
    topic = new_topic(1)
    # No CA given: the system store does not hold the test CA.
    pipe = https_avro_pipeline(tmp_path, bootstrap, topic, subject, https_registry["url"])
    r = run_sluice("run", pipe, "--once", env_extra={"SLUICE_REGISTRY_AUTH": https_registry["auth"]})
    assert r.returncode == 1, r.stderr
    assert (f"latest version of subject '{subject}': the schema registry's TLS certificate at "
            f"{https_registry['url']}/subjects/{subject}/versions/latest is not trusted (") in r.stderr, r.stderr
    assert "give that CA's PEM file (read_kafka's schema_registry_ca_location" in r.stderr
    assert "cannot reach" not in r.stderr
    # The system store with the CA in it (SSL_CERT_FILE stands in for /etc/ssl/certs) trusts it.
    r = run_sluice("run", pipe, "--once", env_extra={"SLUICE_REGISTRY_AUTH": https_registry["auth"],
                                                      "SSL_CERT_FILE": str(https_registry["ca"])})
    assert r.returncode == 0, r.stderr


def test_https_registry_refusing_credentials_says_authentication_failed(registry, https_registry, tmp_path):
    subject = f"orders-{uuid.uuid4().hex[:8]}-value"
    id1 = register(registry, subject, V1)
    inp, out = tmp_path / "in.arrow", tmp_path / "out.arrow"
    write_input(inp, [framed(id1, zigzag(1) + string("a") + struct.pack("<f", 0.5) + string("c"))])
    base = ["decode", "--format", "avro", "--input", inp, "--output", out, "--registry", https_registry["url"],
            "--subject", subject, "--registry-ca", https_registry["ca"]]
    r = run_sluice(*base, env_extra={"SLUICE_REGISTRY_AUTH": "sluice:Wr0ng-pw-77"})
    assert r.returncode == 1
    assert "refused the request (HTTP 401: authentication failed); check the user and password" in r.stderr, r.stderr
    assert "Wr0ng-pw-77" not in r.stderr + r.stdout
    r = run_sluice(*base)
    assert r.returncode == 1
    assert "HTTP 401: authentication failed); it needs credentials: set SLUICE_REGISTRY_AUTH" in r.stderr, r.stderr
    r = run_sluice(*base, env_extra={"SLUICE_REGISTRY_AUTH": https_registry["auth"]})
    assert r.returncode == 0 and "1 rows decoded, 0 errors" in r.stdout, r.stderr
    # http:// to the HTTPS port: the hint names the scheme.
    r = run_sluice("decode", "--format", "avro", "--input", inp, "--output", out, "--registry",
                   https_registry["url"].replace("https://", "http://"), "--subject", subject,
                   env_extra={"SLUICE_REGISTRY_AUTH": https_registry["auth"]})
    assert r.returncode == 1 and "(if the registry serves HTTPS, use an https:// URL)" in r.stderr, r.stderr
    # A CA file for a plain-http URL would go unused: refused.
    r = run_sluice("decode", "--format", "avro", "--input", inp, "--output", out, "--registry", registry,
                   "--subject", subject, "--registry-ca", https_registry["ca"])
    assert r.returncode == 1 and "is plain http: its CA file" in r.stderr, r.stderr


AVRO_SINK = """
CREATE OR REFRESH STREAMING TABLE tx_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{source}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE tx_silver
AS SELECT e.card_id, e.amount, e.ts, e.n
   FROM (SELECT from_json(CAST(value AS STRING), 'card_id STRING, amount DOUBLE, ts TIMESTAMP, n BIGINT') AS e
         FROM STREAM(tx_bronze));

CREATE SINK big_tx OPTIONS (format => 'kafka', topic => '{sink}', key => 'card_id', value_format => 'avro',
                            schema_registry_url => '{registry}');
CREATE FLOW big_tx_out AS INSERT INTO big_tx
SELECT card_id, amount, n, ts FROM STREAM(tx_silver) WHERE amount > 100;
"""


def committed_values(bootstrap, topic):
    """Every read_committed record of `topic` as (key, value), up to each partition's end."""
    return [(m.key(), m.value()) for m in read_topic_to_end(bootstrap, topic)]


def test_kafka_sink_writes_avro_registered_under_the_topic_subject(registry, tmp_path, bootstrap, new_topic):
    """value_format => 'avro': the flow's columns become a schema registered as <topic>-value, every
    value is Confluent-framed Avro with its id; fastavro (with the registry's schema) and sluice's
    own Avro source read back the rows of the silver table the sink selected."""
    import io
    import fastavro
    from deltalake import DeltaTable
    from test_kafka_sink import produce

    source, sink = new_topic(2), new_topic(2)
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text(f"name: avrosink\nstorage: ./data\n"
                                        f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "sink.sql").write_text(AVRO_SINK.format(source=source, sink=sink, registry=registry))
    produce(bootstrap, source, 0, 200)
    r = run_sluice("run", pipe, "--once")
    assert r.returncode == 0, r.stderr
    produce(bootstrap, source, 200, 100)
    r = run_sluice("run", pipe, "--once")  # registers the same schema again: the same id
    assert r.returncode == 0, r.stderr

    silver = DeltaTable(str(pipe / "data" / "tables" / "tx_silver")).to_pyarrow_table().to_pylist()
    want = sorted(((r["card_id"], r["amount"], r["n"], r["ts"]) for r in silver
                   if r["amount"] is not None and r["amount"] > 100), key=lambda r: r[2])
    assert len(want) > 50
    with urllib.request.urlopen(f"{registry}/subjects/{sink}-value/versions", timeout=10) as resp:
        assert json.load(resp) == [1]  # one version: the second run's registration found it
    with urllib.request.urlopen(f"{registry}/subjects/{sink}-value/versions/latest", timeout=10) as resp:
        latest = json.load(resp)
    schema = json.loads(latest["schema"])
    assert [f["name"] for f in schema["fields"]] == ["card_id", "amount", "n", "ts"]
    parsed = fastavro.parse_schema(schema)
    got = []
    for key, value in committed_values(bootstrap, sink):
        assert value[0] == 0 and struct.unpack(">I", value[1:5])[0] == latest["id"]
        row = fastavro.schemaless_reader(io.BytesIO(value[5:]), parsed)
        assert key == (row["card_id"].encode() if row["card_id"] is not None else None)
        got.append((row["card_id"], row["amount"], row["n"], row["ts"]))
    assert sorted(got, key=lambda r: r[2]) == want

    # sluice's own Avro source reads the sink's topic back into the same rows.
    back = tmp_path / "back"
    back.mkdir()
    (back / "pipeline.yaml").write_text(f"name: avroback\nstorage: ./data\n"
                                        f"kafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (back / "back.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE back
AS SELECT value.* FROM STREAM read_kafka(topic => '{sink}', value_format => 'avro',
    schema_registry_url => '{registry}', schema_registry_subject => '{sink}-value', rescued_data_column => 'false');
""")
    r = run_sluice("run", back, "--once")
    assert r.returncode == 0, r.stderr
    rows = DeltaTable(str(back / "data" / "tables" / "back")).to_pyarrow_table().to_pylist()
    assert sorted(((r["card_id"], r["amount"], r["n"], r["ts"]) for r in rows), key=lambda r: r[2]) == want


def test_avro_sink_options_are_checked_at_their_line(tmp_path):
    pipe = tmp_path / "pipe"
    pipe.mkdir()
    (pipe / "pipeline.yaml").write_text("name: s\nstorage: ./data\nkafka:\n  default: {bootstrap.servers: \"127.0.0.1:1\"}\n")
    (pipe / "t.sql").write_text("CREATE OR REFRESH STREAMING TABLE t AS SELECT CAST(value AS STRING) AS v, "
                                "partition AS p, headers FROM STREAM read_kafka(topic => 'x');\n")
    flow = "CREATE FLOW f AS INSERT INTO s SELECT {cols} FROM STREAM(t);\n"
    cases = [
        ("value_format => 'avro'", "v, p", "sink.sql:1:57", "needs schema_registry_url => 'http(s)://host:port'"),
        ("schema_registry_url => 'http://r:1'", "v, p", "sink.sql:1:57",
         "schema_registry_url is for value_format => 'avro'"),
        ("value_format => 'avro', schema_registry_url => 'http://r:1', schema_registry_auth_file => 'nope'", "v, p",
         "sink.sql:1:", "cannot read schema_registry_auth_file"),
        ("value_format => 'avro', schema_registry_url => 'http://r:1'", "v, CAST(p AS DECIMAL(3,0)) AS `p q`",
         "sink.sql:2:", "sink 's' writes Avro values: column 'p q' is not an Avro name"),
    ]
    for options, cols, where, message in cases:
        (pipe / "sink.sql").write_text(f"CREATE SINK s OPTIONS (format => 'kafka', topic => 'o', {options});\n"
                                       + flow.format(cols=cols))
        r = run_sluice("validate", pipe)
        assert r.returncode == 1, (options, r.stdout)
        assert where in r.stderr and message in r.stderr, (options, r.stderr)
