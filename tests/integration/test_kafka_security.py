"""Kafka client configuration against a real broker with TLS, mutual-TLS and SASL (PLAIN,
SCRAM-SHA-512) listeners (scripts/kafka.sh with KAFKA_SECURE=1): reading over TLS with a private
CA, with a client certificate, and with SCRAM; a clear error instead of a crash without
ssl.ca.location; untrusted and refused certificates and authentication failures named as such
(also in continuous mode, which stops the flow); and secrets (${env:}, ${file:}, mistyped keys)
never shown on stdout, stderr or in the event log."""
import pathlib
import subprocess

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from deltalake import DeltaTable

from conftest import ROOT, run_sluice, write_pipeline

SECRET = "s3cr3t-Kq72xw"


@pytest.fixture(scope="module")
def secure(bootstrap):
    """Addresses of the broker's TLS / SASL listeners and its CA file."""
    port = int(bootstrap.rsplit(":", 1)[1])
    ca = ROOT / ".run" / f"kafka-{port}" / "tls" / "ca.crt"
    if not ca.exists():
        pytest.fail(f"{ca} is missing: start the broker with KAFKA_SECURE=1 "
                    "(scripts/integration-tests.sh does)")
    tls = ca.parent
    return {"ssl": f"127.0.0.1:{port + 2}", "sasl": f"127.0.0.1:{port + 3}",
            "sasl_ssl": f"127.0.0.1:{port + 4}", "mtls": f"127.0.0.1:{port + 5}", "ca": str(ca),
            "client_cert": str(tls / "client.crt"), "client_key": str(tls / "client.key"),
            "client_key_pass": (tls / "client.key.pass").read_text().strip()}


def produce(bootstrap, topic, n):
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, value=f"v{i}".encode())
    producer.flush(30)


def pipeline(tmp_path, cluster_yaml, topic):
    pipe = write_pipeline(tmp_path / "pipe", "name: sec\nstorage: ./data\nkafka:\n  default:\n"
                          + "".join(f"    {line}\n" for line in cluster_yaml.strip().splitlines()))
    (pipe / "raw.sql").write_text(
        "CREATE STREAMING TABLE raw AS SELECT CAST(value AS STRING) AS v "
        f"FROM STREAM read_kafka(topic => '{topic}');\n")
    return pipe


def values(pipe):
    return sorted(r["v"] for r in DeltaTable(str(pipe / "data" / "tables" / "raw")).to_pyarrow_table().to_pylist())


def event_log_text(pipe):
    """Every cell of the event log as text ("" when there is none)."""
    path = pipe / "data" / "system" / "event_log"
    if not (path / "_delta_log" / "00000000000000000000.json").exists():  # the folder comes first
        return ""
    return repr(DeltaTable(str(path)).to_pyarrow_table().to_pylist())


def assert_secret_nowhere(pipe, *results):
    for r in results:
        assert SECRET not in r.stdout and SECRET not in r.stderr, (r.stdout, r.stderr)
    assert SECRET not in event_log_text(pipe)


def test_reads_over_tls_with_a_private_ca(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(2)
    produce(bootstrap, topic, 20)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['ssl']}"
security.protocol: SSL
ssl.ca.location: "{secure['ca']}"
""", topic)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    assert values(pipe) == sorted(f"v{i}" for i in range(20))


def test_tls_without_ca_location_reports_certificate_failure(tmp_path, bootstrap, secure, new_topic):
    # No ssl.ca.location: librdkafka checks the broker against the system CA store, which does
    # not hold the test CA. This segfaulted in rd_kafka_new before.
    topic = new_topic(1)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['ssl']}"
security.protocol: SSL
""", topic)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert ("pipeline 'sec', table 'raw': Kafka cluster 'default' at " + secure["ssl"]
            + ": TLS connection failed (") in result.stderr, result.stderr
    assert "certificate verify failed" in result.stderr
    assert ("the broker's certificate is not trusted (its CA is not in the system's CA store); "
            "if the broker's certificate is signed by a private CA, set ssl.ca.location to that "
            "CA's PEM file") in result.stderr, result.stderr
    assert "is the broker running" not in result.stderr and "broker is running" not in result.stderr


def test_tls_without_ca_location_uses_the_system_store(tmp_path, bootstrap, secure, new_topic):
    # The common set-up: no ssl.ca.location, the broker's CA in the system store. OpenSSL's
    # default store honours SSL_CERT_FILE, which stands in for /etc/ssl/certs here.
    topic = new_topic(1)
    produce(bootstrap, topic, 3)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['ssl']}"
security.protocol: SSL
""", topic)
    result = run_sluice("run", pipe, "--once", env_extra={"SSL_CERT_FILE": secure["ca"]})
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert values(pipe) == ["v0", "v1", "v2"]


def test_sasl_plain_over_tls_with_password_from_env_and_file(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    produce(bootstrap, topic, 5)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['sasl_ssl']}"
security.protocol: SASL_SSL
ssl.ca.location: "{secure['ca']}"
sasl.mechanisms: PLAIN
sasl.username: ${{env:SLUICE_TEST_SASL_USER}}
sasl.password: ${{file:kafka.pass}}
""", topic)
    (pipe / "kafka.pass").write_text("sluice-secret\n")
    env = {"SLUICE_TEST_SASL_USER": "sluice"}
    validated = run_sluice("validate", pipe, env_extra=env)
    assert validated.returncode == 0, validated.stderr
    result = run_sluice("run", pipe, "--once", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert values(pipe) == [f"v{i}" for i in range(5)]
    for r in (validated, result):
        assert "sluice-secret" not in r.stdout + r.stderr
    assert "sluice-secret" not in event_log_text(pipe)


def test_debug_property_prints_librdkafka_debug_lines_without_secrets(tmp_path, bootstrap, secure, new_topic):
    """librdkafka's `debug` is honoured (its lines go to stderr; they were dropped before), and
    they are scrubbed like every other librdkafka text: debug=all logs the configuration and
    the SASL exchange."""
    topic = new_topic(1)
    produce(bootstrap, topic, 3)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['sasl']}"
security.protocol: SASL_PLAINTEXT
sasl.mechanisms: PLAIN
sasl.username: sluice
sasl.password: ${{env:SLUICE_TEST_SASL_PASSWORD}}
debug: all
""", topic)
    result = run_sluice("run", pipe, "--once", env_extra={"SLUICE_TEST_SASL_PASSWORD": "sluice-secret"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert values(pipe) == [f"v{i}" for i in range(3)]
    debug_lines = [line for line in result.stderr.splitlines() if line.startswith("sluice: librdkafka ")]
    assert any(" SASL" in line or "sasl" in line.lower() for line in debug_lines), result.stderr[-3000:]
    assert any(line.startswith("sluice: librdkafka FETCH") for line in debug_lines), result.stderr[-3000:]
    assert "sluice-secret" not in result.stdout + result.stderr
    assert "sluice-secret" not in event_log_text(pipe)


def test_bad_sasl_password_says_authentication_failed(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['sasl']}"
security.protocol: SASL_PLAINTEXT
sasl.mechanisms: PLAIN
sasl.username: sluice
sasl.password: ${{env:SLUICE_TEST_SASL_PASSWORD}}
""", topic)
    result = run_sluice("run", pipe, "--once", env_extra={"SLUICE_TEST_SASL_PASSWORD": SECRET})
    assert result.returncode == 1, result.stderr
    # The context is said once (it was doubled: "pipeline 'sec', table 'raw': pipeline 'sec', ...").
    assert result.stderr.count("pipeline 'sec', table 'raw'") == 1, result.stderr
    assert ("pipeline 'sec', table 'raw': Kafka cluster 'default' at " + secure["sasl"]
            + ": authentication failed (") in result.stderr, result.stderr
    assert "check sasl.username and sasl.password of this cluster (mechanism PLAIN)" in result.stderr
    assert "broker is running" not in result.stderr
    events = event_log_text(pipe)
    assert "authentication failed" in events
    assert_secret_nowhere(pipe, result)


def test_mistyped_secret_key_is_refused_by_validate_and_run_without_its_value(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{bootstrap}"
sasl.pasword: {SECRET}
""", topic)
    expected = (f"{pipe / 'pipeline.yaml'}:6:5: kafka.default: librdkafka has no property "
                "'sasl.pasword' (did you mean 'sasl.password'?)")
    validated = run_sluice("validate", pipe)
    result = run_sluice("run", pipe, "--once")
    for r in (validated, result):
        assert r.returncode != 0
        assert expected in r.stderr, r.stderr
    assert_secret_nowhere(pipe, validated, result)


def test_unknown_kafka_option_in_sql_is_refused_by_validate(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    pipe = write_pipeline(tmp_path / "pipe", f"name: sec\nkafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "raw.sql").write_text(
        "CREATE STREAMING TABLE raw AS SELECT value\n"
        f"FROM STREAM read_kafka(topic => '{topic}',\n"
        f"                       `kafka.sasl.pasword` => '{SECRET}');\n")
    validated = run_sluice("validate", pipe)
    result = run_sluice("run", pipe, "--once")
    for r in (validated, result):
        assert r.returncode != 0
        assert "raw.sql:3:24" in r.stderr, r.stderr
        assert ("read_kafka kafka.sasl.pasword: librdkafka has no property 'sasl.pasword' "
                "(did you mean 'sasl.password'?)") in r.stderr, r.stderr
    assert_secret_nowhere(pipe, validated, result)


def test_flow_error_names_pipeline_and_table_once(tmp_path, bootstrap):
    # The Kafka flow and the scheduler both add "pipeline 'p', table 'b'"; it was shown twice.
    pipe = write_pipeline(tmp_path / "pipe", f"name: p\nkafka:\n  default: {{bootstrap.servers: \"{bootstrap}\"}}\n")
    (pipe / "b.sql").write_text(
        "CREATE STREAMING TABLE b AS SELECT value FROM STREAM read_kafka(topic => 'no-such-topic-kconf');\n")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "sluice: error: pipeline 'p', table 'b': Kafka topic 'no-such-topic-kconf' does not exist"), result.stderr
    assert result.stderr.count("pipeline 'p'") == 1, result.stderr


def other_ca(folder):
    """A CA of its own that signed nothing the broker has."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=another CA", "-keyout", str(folder / "other.key"),
                    "-out", str(folder / "other.crt")], check=True, capture_output=True)
    return folder / "other.crt"


def test_certificate_of_another_ca_is_not_trusted(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['ssl']}"
security.protocol: SSL
ssl.ca.location: "{other_ca(tmp_path / 'ca')}"
""", topic)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert ("Kafka cluster 'default' at " + secure["ssl"] + ": TLS connection failed (") in result.stderr
    assert ("the broker's certificate is not trusted by the CA in ssl.ca.location (or ssl.ca.pem)"
            ) in result.stderr, result.stderr
    assert "broker is running" not in result.stderr


def mtls_yaml(secure, key_password_line):
    return f"""
bootstrap.servers: "{secure['mtls']}"
security.protocol: SSL
ssl.ca.location: "{secure['ca']}"
ssl.certificate.location: "{secure['client_cert']}"
ssl.key.location: "{secure['client_key']}"
{key_password_line}
"""


def test_mutual_tls_with_a_client_certificate_and_key_password_from_a_file(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(2)
    produce(bootstrap, topic, 12)
    pipe = pipeline(tmp_path, mtls_yaml(secure, "ssl.key.password: ${file:client.key.pass}"), topic)
    (pipe / "client.key.pass").write_text(secure["client_key_pass"] + "\n")
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 0, result.stderr
    assert values(pipe) == sorted(f"v{i}" for i in range(12))
    assert secure["client_key_pass"] not in result.stdout + result.stderr
    assert secure["client_key_pass"] not in event_log_text(pipe)


def test_mutual_tls_with_a_wrong_key_password_says_so(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, mtls_yaml(secure, "ssl.key.password: ${env:SLUICE_TEST_KEY_PASSWORD}"), topic)
    result = run_sluice("run", pipe, "--once", env_extra={"SLUICE_TEST_KEY_PASSWORD": SECRET})
    assert result.returncode != 0, result.stderr
    assert "ssl.key.location" in result.stderr, result.stderr
    assert "ssl.key.password" in result.stderr, result.stderr
    assert "broker is running" not in result.stderr
    assert_secret_nowhere(pipe, result)


def test_mutual_tls_without_a_client_certificate_names_the_cause(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['mtls']}"
security.protocol: SSL
ssl.ca.location: "{secure['ca']}"
""", topic)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert ("pipeline 'sec', table 'raw': Kafka cluster 'default' at " + secure["mtls"]
            + ": TLS connection failed (") in result.stderr, result.stderr
    assert ("the broker requires a client certificate (mutual TLS) and none is configured; set "
            "ssl.certificate.location and ssl.key.location") in result.stderr, result.stderr
    assert "broker is running" not in result.stderr


def test_mutual_tls_with_a_certificate_of_another_ca_is_refused(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    folder = tmp_path / "client"
    other = other_ca(folder)
    openssl = lambda *args: subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=stranger",
            "-keyout", folder / "stranger.key", "-out", folder / "stranger.csr")
    openssl("x509", "-req", "-in", folder / "stranger.csr", "-CA", other, "-CAkey", folder / "other.key",
            "-CAcreateserial", "-days", "1", "-out", folder / "stranger.crt")
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['mtls']}"
security.protocol: SSL
ssl.ca.location: "{secure['ca']}"
ssl.certificate.location: "{folder / 'stranger.crt'}"
ssl.key.location: "{folder / 'stranger.key'}"
""", topic)
    result = run_sluice("run", pipe, "--once")
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert ("Kafka cluster 'default' at " + secure["mtls"] + ": TLS connection failed (") in result.stderr
    assert ("the broker refused this client's certificate; it must be signed by a CA in the "
            "broker's truststore") in result.stderr, result.stderr
    # The key's path (this test's folder has "certificate" in its name) is no secret to scrub.
    # With librdkafka 2.12 Kafka's refusal arrives as "bad certificate" (2.0.2 got "certificate
    # unknown"); both are sorted as a refused client certificate (kafka::classify_tls_failure).
    assert "alert bad certificate" in result.stderr, result.stderr
    assert "broker is running" not in result.stderr


def test_sasl_scram_sha_512_over_tls(tmp_path, bootstrap, secure, new_topic):
    topic = new_topic(1)
    produce(bootstrap, topic, 7)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['sasl_ssl']}"
security.protocol: SASL_SSL
ssl.ca.location: "{secure['ca']}"
sasl.mechanism: SCRAM-SHA-512
sasl.username: sluice
sasl.password: ${{env:SLUICE_TEST_SASL_PASSWORD}}
""", topic)
    result = run_sluice("run", pipe, "--once", env_extra={"SLUICE_TEST_SASL_PASSWORD": "sluice-secret"})
    assert "sluice-secret" not in result.stdout + result.stderr + event_log_text(pipe)
    # The oracle: a client on librdkafka >= 2.6.1 (the confluent-kafka wheel's) logs in with the
    # same user and password, so the broker's SCRAM user is right.
    scram_client = {"bootstrap.servers": secure["sasl_ssl"], "security.protocol": "SASL_SSL",
                    "ssl.ca.location": secure["ca"], "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.username": "sluice", "sasl.password": "sluice-secret"}
    assert topic in AdminClient(scram_client).list_topics(timeout=30).topics
    # sluice links librdkafka >= 2.6.1 (scripts/build-librdkafka.sh), whose SCRAM Kafka 4 accepts.
    assert result.returncode == 0, result.stderr
    assert values(pipe) == [f"v{i}" for i in range(7)]


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_wrong_password_over_tls_says_authentication_failed(tmp_path, bootstrap, secure, new_topic, mechanism):
    topic = new_topic(1)
    pipe = pipeline(tmp_path, f"""
bootstrap.servers: "{secure['sasl_ssl']}"
security.protocol: SASL_SSL
ssl.ca.location: "{secure['ca']}"
sasl.mechanism: {mechanism}
sasl.username: sluice
sasl.password: ${{env:SLUICE_TEST_SASL_PASSWORD}}
""", topic)
    result = run_sluice("run", pipe, "--once", env_extra={"SLUICE_TEST_SASL_PASSWORD": SECRET})
    assert result.returncode == 1, result.stderr
    assert ("pipeline 'sec', table 'raw': Kafka cluster 'default' at " + secure["sasl_ssl"]
            + ": authentication failed (") in result.stderr, result.stderr
    assert f"check sasl.username and sasl.password of this cluster (mechanism {mechanism})" in result.stderr
    assert "broker is running" not in result.stderr
    assert_secret_nowhere(pipe, result)


@pytest.mark.parametrize("failure", ["password", "certificate"])
def test_continuous_run_stops_on_a_refused_login_or_certificate_and_logs_it(
        tmp_path, bootstrap, secure, new_topic, failure):
    # Not retried forever in silence: the update fails (as a DLT update does), the event log
    # holds the error with its cause, and the process exits non-zero.
    topic = new_topic(1)
    if failure == "password":
        cluster = f"""
bootstrap.servers: "{secure['sasl_ssl']}"
security.protocol: SASL_SSL
ssl.ca.location: "{secure['ca']}"
sasl.mechanism: PLAIN
sasl.username: sluice
sasl.password: ${{env:SLUICE_TEST_SASL_PASSWORD}}
"""
        cause = "authentication failed"
    else:
        cluster = f"""
bootstrap.servers: "{secure['mtls']}"
security.protocol: SSL
ssl.ca.location: "{secure['ca']}"
"""
        cause = "the broker requires a client certificate"
    pipe = pipeline(tmp_path, cluster, topic)
    yaml = pipe / "pipeline.yaml"
    yaml.write_text(yaml.read_text().replace("storage: ./data\n",
                                             "storage: ./data\nmode: continuous\ntrigger_interval: 50ms\n"))
    result = run_sluice("run", pipe, timeout=120, env_extra={"SLUICE_TEST_SASL_PASSWORD": SECRET})
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert cause in result.stderr, result.stderr
    assert "(retrying)" not in result.stderr
    events = DeltaTable(str(pipe / "data" / "system" / "event_log")).to_pyarrow_table().to_pylist()
    errors = [e for e in events if e["level"] == "ERROR"]
    assert errors and cause in repr(errors), events
    assert_secret_nowhere(pipe, result)
