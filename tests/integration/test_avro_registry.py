"""`sluice decode --format avro` against a registry process started by scripts/registry.sh: two
registered versions of a schema, Confluent-framed records of both, a garbage record and one
with an unknown schema id; and `--format json` with rescue and errors."""
import json
import os
import socket
import struct
import subprocess
import urllib.request

import pyarrow as pa
import pyarrow.ipc
import pytest

from conftest import ROOT, run_sluice

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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def registry():
    port = free_port()
    env = dict(os.environ, REGISTRY_PORT=str(port))
    subprocess.run([ROOT / "scripts" / "registry.sh", "start"], env=env, check=True)
    try:
        yield f"http://127.0.0.1:{port}"
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
    id1 = register(registry, "orders-value", V1)
    id2 = register(registry, "orders-value", V2)
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
                   "--registry", registry, "--subject", "orders-value")
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
    id1 = register(registry, "orders-value", V1)
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
