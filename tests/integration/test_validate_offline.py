"""`sluice validate` plans read_kafka from its declared options alone: it contacts no broker
(a listening socket standing in for the broker sees no connection, a closed port makes no
difference) unless `--infer-schemas` asks it to sample a topic, which then needs the broker
and says clearly when it is down."""
import socket
import subprocess
import time

from conftest import SLUICE, run_sluice
from test_sql_pipeline_e2e import kafka_pipeline

# Every way read_kafka is bound without the broker: plain, a declared JSON schema, no headers,
# its own bootstrap servers and librdkafka properties, a view over it, a table downstream.
SQL = """
CREATE OR REFRESH STREAMING TABLE raw AS
SELECT key, value, topic, partition, offset, timestamp, headers FROM STREAM read_kafka(topic => 'events');

CREATE TEMPORARY VIEW parsed AS
SELECT value.id AS id, value.amount AS amount, _rescued_data
FROM STREAM read_kafka(subscribe => 'orders', value_format => 'json', value_schema => 'id BIGINT, amount DOUBLE',
                       includeHeaders => 'false', bootstrapServers => '{bootstrap}',
                       `kafka.client.id` => 'validate-test');

CREATE OR REFRESH STREAMING TABLE orders AS SELECT id, amount * 2 AS doubled FROM parsed;

CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(doubled) AS total FROM orders;
"""

INFERRED_SQL = """
CREATE OR REFRESH STREAMING TABLE t AS SELECT value.* FROM STREAM read_kafka(topic => 'x', value_format => 'json');
"""


def listening_socket():
    """A TCP socket that accepts connections into its backlog and never answers: a connection
    attempt by sluice stays visible to accept() after sluice exits."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    return sock


def connections_seen(sock):
    seen = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return seen
        conn.close()
        seen += 1


def closed_port():
    """A port nothing listens on (bound once to pick a free one, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_sql(pipe, text, bootstrap):
    (pipe / "p.sql").write_text(text.replace("{bootstrap}", bootstrap))


def test_validate_contacts_no_broker(tmp_path):
    broker = listening_socket()
    address = "127.0.0.1:%d" % broker.getsockname()[1]
    pipe = kafka_pipeline(tmp_path, "offline", address)
    write_sql(pipe, SQL, address)
    r = run_sluice("validate", pipe)
    assert r.returncode == 0, r.stderr
    assert "raw (streaming table) <- kafka:events (stream)" in r.stdout, r.stdout
    assert "parsed (temporary view) <- kafka:orders (stream)" in r.stdout, r.stdout
    assert "orders (streaming table) <- parsed\n" in r.stdout, r.stdout
    assert "id BIGINT, doubled DOUBLE" in r.stdout, r.stdout
    assert "n BIGINT, total DOUBLE" in r.stdout, r.stdout
    assert r.stdout.rstrip().endswith("OK"), r.stdout
    assert connections_seen(broker) == 0
    assert not (pipe / "data").exists()  # validate writes nothing
    broker.close()


def test_validate_passes_with_the_broker_port_closed(tmp_path):
    address = "127.0.0.1:%d" % closed_port()
    pipe = kafka_pipeline(tmp_path, "closed", address)
    write_sql(pipe, SQL, address)
    r = run_sluice("validate", pipe)
    assert r.returncode == 0, r.stderr
    assert "id BIGINT, doubled DOUBLE" in r.stdout and r.stdout.rstrip().endswith("OK"), r.stdout


def test_infer_schemas_is_the_one_validate_that_contacts_the_broker(tmp_path):
    broker = listening_socket()
    address = "127.0.0.1:%d" % broker.getsockname()[1]
    pipe = kafka_pipeline(tmp_path, "infer", address)
    write_sql(pipe, INFERRED_SQL, address)
    r = run_sluice("validate", pipe)
    assert r.returncode == 0 and "not checked: its value columns are inferred from topic 'x'" in r.stdout, r.stdout
    assert connections_seen(broker) == 0
    # The stand-in accepts but never answers, and closes once sluice has connected (so the
    # rest of the run sees a broker that refuses and gives up after the connect window
    # instead of the metadata timeout): sampling needs a broker and says so.
    proc = subprocess.Popen([str(SLUICE), "validate", str(pipe), "--infer-schemas"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    seen = 0
    while seen == 0 and time.monotonic() < deadline and proc.poll() is None:
        seen = connections_seen(broker)
        time.sleep(0.01)
    broker.close()
    out, err = proc.communicate(timeout=60)
    assert seen >= 1, err
    assert proc.returncode == 1, out
    assert f"cannot reach Kafka cluster 'default' at {address} within" in err, err


def test_infer_schemas_with_the_broker_down_is_a_clear_error(tmp_path):
    address = "127.0.0.1:%d" % closed_port()
    pipe = kafka_pipeline(tmp_path, "down", address)
    write_sql(pipe, INFERRED_SQL, address)
    started = time.monotonic()
    r = run_sluice("validate", pipe, "--infer-schemas")
    assert r.returncode == 1, r.stdout
    # Refused from the start: given up after the 2 s connect window, not the 10 s timeout.
    assert time.monotonic() - started < 8 and "every bootstrap broker refused the connection" in r.stderr, r.stderr
    # What (the cluster and its address), where (the read_kafka in p.sql) and what to do.
    assert "p.sql:2:" in r.stderr and "error: read_kafka: cannot reach Kafka cluster 'default' at " + address in r.stderr, r.stderr
    assert "check bootstrap.servers and that the broker is running" in r.stderr, r.stderr
    assert not (pipe / "data").exists()
