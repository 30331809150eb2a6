"""Fixtures for integration tests: the real Kafka broker, the sluice binary, and the
independent Delta readers (deltalake, DuckDB's delta extension)."""
import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = pathlib.Path(__file__).resolve().parents[2]
SLUICE = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "sluice"))
# The suite's broker port. Brokers that tests start themselves take the ports after its block
# (KAFKA_PORT..+5: plain, controller, TLS, SASL, SASL over TLS, mutual TLS): +6/+7 the outage
# broker of test_exactly_once_chaos, +8/+9 test_kafka_script's. So two suites on ports 10 apart
# (`make test` runs the quick and the long suite side by side) never share a port.
KAFKA_PORT = int(os.environ.get("SLUICE_TEST_KAFKA_PORT", "19092"))


# `make test` runs each integration test once, in one of two suites side by side against the
# same sluice (the ASan + UBSan build; scripts/make-test.sh, docs/decisions.md "CI time (7)"):
# `--suite quick` takes every test not marked slow, except the modules below; `--suite long` takes
# the rest: the slow tests and these modules. Both run the same binary, so the split only
# balances the two processes: modules whose time goes to process starts, leases' ttls and
# object-store servers, or that run no sluice (test_kafka_script), and the modules whose tests
# not marked slow use Spark (so one Spark JVM starts in `make test`, not one per suite).
# `--suite all` (the default) runs all.
LONG_SUITE_MODULES = ("test_kafka_script.py", "test_scale_out.py", "test_scale_out_s3.py",
                      "test_pipeline_on_s3.py", "test_pipeline_on_azure_and_gcs.py", "test_forget_object_store.py",
                      # Spark in tests not marked slow:
                      "test_catalog.py", "test_change_data_feed_write.py", "test_change_feed.py",
                      "test_delta_constraints_interop.py", "test_dml.py", "test_spark_functions.py",
                      "test_spark_interop.py", "test_vacuum.py")


def pytest_addoption(parser):
    parser.addoption("--suite", choices=("all", "quick", "long"), default="all",
                     help="which of make test's two integration suites to run (conftest.py LONG_SUITE_MODULES)")


def in_quick_suite(item):
    return item.get_closest_marker("slow") is None and item.path.name not in LONG_SUITE_MODULES


def pytest_collection_modifyitems(config, items):
    suite = config.getoption("--suite")
    if suite == "all":
        return
    keep = [i for i in items if in_quick_suite(i) == (suite == "quick")]
    drop = [i for i in items if in_quick_suite(i) != (suite == "quick")]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: long chaos, Spark or volume run; the quick suite leaves it out "
        "(`make test` runs it in the long suite: --suite long)")


def _sluice_children():
    """This pytest process's direct children that run the sluice binary under test: pid -> start time."""
    out = {}
    me = str(os.getpid())
    for d in pathlib.Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[1] != me or fields[0] == "Z":
                continue
            exe = (d / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if exe == str(SLUICE):
            out[int(d.name)] = fields[19]
    return out


@pytest.fixture(autouse=True)
def no_sluice_outlives_its_test():
    """A test that fails (or times out) between starting `sluice run` and stopping it would leave
    the process running beside the next tests, consuming their broker and CPU (seen: a chaos test's
    run still going minutes later). At the end of each test, the sluice processes it started that
    still run are killed; those started before it (by a module's fixture) are left alone."""
    before = _sluice_children()
    yield
    for pid, started in _sluice_children().items():
        if before.get(pid) == started:
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture(scope="session")
def bootstrap():
    """bootstrap.servers of the broker `make test` started; else start one for this session."""
    servers = os.environ.get("SLUICE_TEST_BOOTSTRAP")
    if servers:
        yield servers
        return
    env = dict(os.environ, KAFKA_PORT=str(KAFKA_PORT), KAFKA_SECURE="1")  # TLS/SASL listeners too
    subprocess.run([ROOT / "scripts" / "kafka.sh", "start", "--fresh"], env=env, check=True)
    try:
        yield f"127.0.0.1:{KAFKA_PORT}"
    finally:
        subprocess.run([ROOT / "scripts" / "kafka.sh", "stop"], env=env, check=False)


@pytest.fixture
def new_topic(bootstrap):
    """Creates a uniquely named topic: new_topic(partitions) -> name."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    created = []

    def make(partitions=3):
        name = f"t-{uuid.uuid4().hex[:10]}"
        futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        futures[name].result(timeout=30)
        created.append(name)
        # CreateTopics returns once the controller has the topic; the broker's metadata can lag
        # (a sluice started at once was told "does not exist" under load): wait until every
        # partition has a leader in the metadata a client gets.
        deadline = time.monotonic() + 30
        while True:
            meta = admin.list_topics(topic=name, timeout=10).topics.get(name)
            if meta is not None and meta.error is None and len(meta.partitions) == partitions \
                    and all(p.leader >= 0 for p in meta.partitions.values()):
                return name
            assert time.monotonic() < deadline, f"topic {name} not in the broker's metadata after 30 s"
            time.sleep(0.05)  # a poll interval, not a synchronisation

    yield make
    if created:
        for f in admin.delete_topics(created).values():
            try:
                f.result(timeout=30)
            except Exception:  # best effort: the broker is wiped between `make test` runs
                pass


def run_sluice(*args, timeout=300, env_extra=None):
    """Runs the sluice binary; returns CompletedProcess (never raises on exit code)."""
    env = dict(os.environ, **env_extra) if env_extra else None
    return subprocess.run([str(SLUICE), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def write_pipeline(folder: pathlib.Path, text: str) -> pathlib.Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(text)
    return folder


def duckdb_connection():
    """DuckDB with the delta extension from the duckdb-ext-delta wheel (no network)."""
    import duckdb
    import duckdb_ext

    ext_dir = pathlib.Path(list(duckdb_ext.__path__)[0]) / "extensions"
    con = duckdb.connect(config={"extension_directory": str(ext_dir)})
    con.sql("LOAD delta")
    return con
