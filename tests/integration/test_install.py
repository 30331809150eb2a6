"""`make install PREFIX=...` / `make dist`: the installed sluice (bin/sluice + lib/), moved to
another folder, runs with an environment that cannot reach the build tree or .venv (env -i,
minimal PATH, no LD_LIBRARY_PATH): --version, validate and the quickstart pipeline against the
test broker, its tables read back by deltalake and compared with a Python model. readelf and ldd
show that nothing resolves into the build tree or .venv; as root, the moved copy also runs in a
chroot that holds only the libraries every Debian 12 has (glibc, libstdc++, libgcc_s, zlib, zstd,
lz4) and the time-zone database (tzdata), as on a fresh machine. The release build is packaged as it is built (no rebuild)."""
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import time

import pytest
from confluent_kafka import Producer
from deltalake import DeltaTable

from conftest import ROOT, SLUICE

# In every Debian 12, also the minbase / debian:12 image (apt needs them): never bundled.
BASE_SONAMES = {
    "linux-vdso.so.1", "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libdl.so.2",
    "libpthread.so.0", "librt.so.1", "libstdc++.so.6", "libgcc_s.so.1", "libz.so.1",
    "libzstd.so.1", "liblz4.so.1", "libresolv.so.2",  # libresolv: glibc's (libcurl loads it)
}
# What sluice loads today that a fresh Debian 12 lacks (at least these; whatever else it loads
# that is not in BASE_SONAMES must come from lib/ too).
BUNDLED_SONAMES = {
    "libarrow.so.2600", "libarrow_compute.so.2600", "libarrow_acero.so.2600", "libparquet.so.2600",
    "librdkafka.so.1", "librdkafka++.so.1", "libsasl2.so.2", "libssl.so.3", "libcrypto.so.3",
    "libcpp-httplib.so.0.11", "libbrotlicommon.so.1", "libbrotlidec.so.1", "libbrotlienc.so.1",
    "libyaml-cpp.so.0.7", "libfmt.so.9",
}
MINIMAL_ENV = {"PATH": "/usr/bin:/bin"}
VENV = (ROOT / ".venv").resolve()


def build_dir():
    """The build folder of the sluice under test; the sanitizer build is not what users install."""
    folder = SLUICE.parent
    cache = (folder / "CMakeCache.txt").read_text()
    if "SLUICE_SANITIZE:BOOL=ON" in cache or "SLUICE_FUZZ:BOOL=ON" in cache:
        pytest.skip("the install test packages the release build, not the sanitizer build")
    return folder


@pytest.fixture(scope="module")
def moved_prefix(tmp_path_factory):
    """`make install` into one prefix (scripts/install.sh, as the Makefile runs it), then renamed."""
    base = tmp_path_factory.mktemp("install")
    first = base / "prefix"
    result = subprocess.run([ROOT / "scripts" / "install.sh", build_dir(), first],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    moved = base / "moved copy"
    first.rename(moved)
    yield moved
    shutil.rmtree(base)  # ~95 MB; pytest keeps the last runs' temporary folders


def run_installed(binary, *args, timeout=300):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=MINIMAL_ENV)


def dynamic_section(path):
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True)
    entries = {}
    for line in out.stdout.splitlines():
        if "(RUNPATH)" in line or "(RPATH)" in line:
            kind = "RUNPATH" if "(RUNPATH)" in line else "RPATH"
            entries[kind] = line.split("[", 1)[1].rsplit("]", 1)[0]
    return entries


def resolved_libraries(binary):
    """soname -> path as the dynamic loader resolves them for `binary` (ldd under env -i)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=MINIMAL_ENV,
                         check=True)
    libs = {}
    for line in out.stdout.splitlines():
        line = line.strip()
        assert "not found" not in line, out.stdout
        if "=>" in line:
            name, rest = (part.strip() for part in line.split("=>", 1))
            libs[name] = rest.split(" (", 1)[0]
        else:
            path = line.split(" (", 1)[0]
            libs[pathlib.Path(path).name] = path
    return libs


def test_installed_binary_finds_its_libraries_beside_itself(moved_prefix):
    binary = moved_prefix / "bin" / "sluice"
    assert dynamic_section(binary) == {"RUNPATH": "$ORIGIN/../lib"}
    lib = moved_prefix / "lib"
    for f in lib.iterdir():
        if not f.is_symlink():
            assert dynamic_section(f) == {"RUNPATH": "$ORIGIN"}, f
        assert f.resolve().parent == lib, f  # SONAME links point inside lib/
    libs = resolved_libraries(binary)
    assert BUNDLED_SONAMES <= set(libs), sorted(libs)
    for name, path in libs.items():
        if name == "linux-vdso.so.1":
            continue  # the kernel's, no file
        where = pathlib.Path(path).resolve()
        if name not in BASE_SONAMES:
            assert where.parent == lib.resolve(), (name, path)
        else:
            assert not where.is_relative_to(moved_prefix), (name, path)
        assert not where.is_relative_to(ROOT) and not where.is_relative_to(VENV), (name, path)
    # No file of the install names the build tree or the venv (an RPATH, a helper path, ...).
    for f in [binary, *lib.iterdir()]:
        if f.is_symlink():
            continue
        data = f.read_bytes()
        for forbidden in (str(ROOT), str(VENV), "site-packages"):
            assert forbidden.encode() not in data, (f, forbidden)


def test_build_binary_runpath_has_no_empty_entry():
    """An empty RUNPATH entry (CMake's padding for an in-place rewrite) is the working directory:
    build/sluice would load a libfmt.so.9 from wherever it is started."""
    runpath = dynamic_section(SLUICE)["RUNPATH"]
    assert "" not in runpath.split(":"), runpath


def test_moved_install_prints_version_and_validates(moved_prefix, tmp_path):
    binary = moved_prefix / "bin" / "sluice"
    version = run_installed(binary, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == run_installed(SLUICE, "version").stdout
    assert version.stdout.startswith("sluice ")
    pipe = quickstart_copy(tmp_path / "pipe", "user-events")
    validate = run_installed(binary, "validate", pipe)
    assert validate.returncode == 0, validate.stderr
    assert "revenue_by_type (materialized view) <- user_events_silver" in validate.stdout


def quickstart_copy(folder, topic):
    """examples/quickstart (what `make run` runs) reading `topic`."""
    shutil.copytree(ROOT / "examples" / "quickstart", folder,
                    ignore=shutil.ignore_patterns("data"))
    bronze = folder / "bronze.sql"
    bronze.write_text(bronze.read_text().replace("'user-events'", f"'{topic}'"))
    return folder


def produce_quickstart_events(bootstrap, topic, n, seed):
    rng = random.Random(seed)
    events = []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 10})
    for i in range(n):
        event = {
            "user_id": None if rng.random() < 0.05 else f"u{rng.randint(1, 200)}",
            "event_type": rng.choice(["view", "click", "purchase", "refund"]),
            "event_time": f"2026-03-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z",
            "amount": None if rng.random() < 0.3 else round(rng.uniform(1, 300), 2),
        }
        events.append(event)
        producer.produce(topic, value=json.dumps(event).encode(), partition=i % 3)
    assert producer.flush(30) == 0
    return events


def assert_quickstart_tables(tables, events):
    """bronze holds every record, silver the ones with a user, gold the per-type model."""
    assert DeltaTable(str(tables / "user_events_bronze")).to_pyarrow_table().num_rows == len(events)
    kept = [e for e in events if e["user_id"] is not None]
    assert DeltaTable(str(tables / "user_events_silver")).to_pyarrow_table().num_rows == len(kept)
    model = {}
    for e in kept:
        m = model.setdefault(e["event_type"], {"events": 0, "users": set(), "amounts": []})
        m["events"] += 1
        m["users"].add(e["user_id"])
        if e["amount"] is not None:
            m["amounts"].append(e["amount"])
    gold = DeltaTable(str(tables / "revenue_by_type")).to_pyarrow_table().to_pylist()
    assert sorted(r["event_type"] for r in gold) == sorted(model)
    for row in gold:
        m = model[row["event_type"]]
        assert row["events"] == m["events"] and row["users"] == len(m["users"]), row
        assert abs(row["revenue"] - round(sum(m["amounts"]), 2)) < 0.006, row


def test_moved_install_runs_the_quickstart(moved_prefix, tmp_path, bootstrap, new_topic):
    binary = moved_prefix / "bin" / "sluice"
    topic = new_topic(3)
    pipe = quickstart_copy(tmp_path / "pipe", topic)
    events = produce_quickstart_events(bootstrap, topic, 3000, seed=13)
    result = run_installed(binary, "run", pipe, "--once", "--bootstrap-servers", bootstrap)
    assert result.returncode == 0, result.stderr
    assert_quickstart_tables(pipe / "data" / "tables", events)


def test_moved_install_reexecs_itself_with_the_purge_delay(moved_prefix, tmp_path, bootstrap,
                                                           new_topic):
    """main() re-executes /proc/self/exe with MIMALLOC_PURGE_DELAY=0 and MIMALLOC_ALLOW_THP=0:
    after the move too."""
    binary = moved_prefix / "bin" / "sluice"
    pipe = quickstart_copy(tmp_path / "pipe", new_topic(1))
    config = pipe / "pipeline.yaml"
    config.write_text(config.read_text().replace("mode: triggered", "mode: continuous"))
    proc = subprocess.Popen([str(binary), "run", str(pipe), "--bootstrap-servers", bootstrap],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=MINIMAL_ENV)
    try:
        deadline = time.monotonic() + 30
        environ = b""
        while time.monotonic() < deadline and b"MIMALLOC_PURGE_DELAY=0\0" not in environ:
            assert proc.poll() is None, proc.communicate()
            environ = pathlib.Path(f"/proc/{proc.pid}/environ").read_bytes()
            time.sleep(0.05)  # poll interval, not synchronisation: the loop waits on the condition
        assert b"MIMALLOC_PURGE_DELAY=0\0" in environ
        assert b"MIMALLOC_ALLOW_THP=0\0" in environ  # 4 KiB pages for mimalloc's arenas
        assert pathlib.Path(f"/proc/{proc.pid}/exe").resolve() == binary.resolve()
        # SIGTERM ends the run cleanly once its handler is set: after the first update began.
        first_commit = (pipe / "data" / "tables" / "user_events_bronze" / "_delta_log"
                        / "00000000000000000000.json")
        while time.monotonic() < deadline and not first_commit.exists():
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)  # poll interval
        assert first_commit.exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "sluice: stopped" in out


@pytest.mark.parametrize("user_env, expected", [
    ({"MIMALLOC_PURGE_DELAY": "5"}, {"MIMALLOC_PURGE_DELAY": "5", "MIMALLOC_ALLOW_THP": "0"}),
    ({"MIMALLOC_ALLOW_THP": "1"}, {"MIMALLOC_PURGE_DELAY": "0", "MIMALLOC_ALLOW_THP": "1"}),
], ids=["user-purge-delay", "user-allow-thp"])
def test_reexec_keeps_each_variable_the_user_set(moved_prefix, tmp_path, bootstrap, new_topic,
                                                 user_env, expected):
    """Each of the two variables is set unless the user set that one: a user's purge delay no
    longer skips the re-exec (and with it MIMALLOC_ALLOW_THP=0)."""
    binary = moved_prefix / "bin" / "sluice"
    pipe = quickstart_copy(tmp_path / "pipe", new_topic(1))
    config = pipe / "pipeline.yaml"
    config.write_text(config.read_text().replace("mode: triggered", "mode: continuous"))
    wanted = [f"{k}={v}\0".encode() for k, v in expected.items()]
    proc = subprocess.Popen([str(binary), "run", str(pipe), "--bootstrap-servers", bootstrap],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**MINIMAL_ENV, **user_env})
    try:
        deadline = time.monotonic() + 30
        environ = b""
        while time.monotonic() < deadline and not all(w in environ for w in wanted):
            assert proc.poll() is None, proc.communicate()
            environ = pathlib.Path(f"/proc/{proc.pid}/environ").read_bytes()
            time.sleep(0.05)  # poll interval, not synchronisation: the loop waits on the condition
        for w in wanted:
            assert w in environ, (w, environ)
        assert pathlib.Path(f"/proc/{proc.pid}/exe").resolve() == binary.resolve()
    finally:
        proc.send_signal(signal.SIGTERM)  # before its handler is set too: the test needs no clean end
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_dist_tarball_holds_the_install_layout(tmp_path):
    """`make dist` (scripts/dist.sh): sluice-<version>-linux-x86_64.tar.gz, unpacked anywhere."""
    out = tmp_path / "dist"
    unpacked = tmp_path / "unpacked"
    try:
        check_dist_tarball(out, unpacked)
    finally:  # ~130 MB; pytest keeps the last runs' temporary folders
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(unpacked, ignore_errors=True)


def check_dist_tarball(out, unpacked):
    result = subprocess.run([ROOT / "scripts" / "dist.sh", build_dir()], capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, DIST_DIR=str(out)))
    assert result.returncode == 0, result.stderr
    version = run_installed(SLUICE, "version").stdout.split()[1]
    tarball = out / f"sluice-{version}-linux-x86_64.tar.gz"
    assert result.stdout.strip() == str(tarball)
    unpacked.mkdir()
    subprocess.run(["tar", "-C", unpacked, "-xzf", tarball], check=True)
    top = unpacked / f"sluice-{version}-linux-x86_64"
    assert sorted(p.name for p in top.iterdir()) == ["bin", "lib", "share"]
    # The Python package (the definer of .py pipelines), where the loader looks beside bin/.
    assert (top / "share" / "sluice" / "python" / "sluice" / "__init__.py").is_file()
    assert not list((top / "share").rglob("__pycache__"))
    assert BUNDLED_SONAMES <= {p.name for p in (top / "lib").iterdir()}
    shown = run_installed(top / "bin" / "sluice", "--version")
    assert shown.returncode == 0 and shown.stdout == f"sluice {version}\n", shown


def test_install_refuses_a_system_prefix():
    """Bundled OpenSSL/librdkafka in /usr/local/lib would replace the system's for every program."""
    result = subprocess.run([ROOT / "scripts" / "install.sh", SLUICE.parent, "/usr/local"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "PREFIX=/usr/local would put sluice's bundled libraries" in result.stderr
    assert "make install PREFIX=/opt/sluice" in result.stderr


@pytest.fixture(scope="module")
def fresh_root(moved_prefix, tmp_path_factory):
    """A chroot holding the moved install at /opt/sluice, the base libraries, the time-zone
    database (tzdata is Priority: required in Debian 12; Arrow's timestamp kernels read it) and
    /proc (mounted per run: $ORIGIN and the re-exec need it), nothing else: a fresh Debian 12
    as far as sluice can tell. Returns a runner: in_chroot(*sluice_args)."""
    chroot = shutil.which("chroot", path="/usr/sbin:/sbin:/usr/bin:/bin")
    if os.geteuid() != 0 or shutil.which("unshare") is None or chroot is None:
        pytest.skip("needs root, unshare and chroot for a chroot with its own /proc mount")
    root = tmp_path_factory.mktemp("fresh-root")
    system_lib = root / "lib" / "x86_64-linux-gnu"
    system_lib.mkdir(parents=True)
    (root / "lib64").mkdir()
    (root / "proc").mkdir()
    for name, path in resolved_libraries(moved_prefix / "bin" / "sluice").items():
        if name == "linux-vdso.so.1" or name not in BASE_SONAMES:
            continue
        target = root / "lib64" if name == "ld-linux-x86-64.so.2" else system_lib
        shutil.copy(pathlib.Path(path).resolve(), target / name)
    (root / "usr" / "share").mkdir(parents=True)
    subprocess.run(["cp", "-a", "/usr/share/zoneinfo", root / "usr" / "share"], check=True)
    shutil.copytree(moved_prefix, root / "opt" / "sluice", symlinks=True)

    def in_chroot(*args):
        script = f'mount -t proc proc "$0/proc" && exec {chroot} "$0" "$@"'
        return subprocess.run(["unshare", "--mount", "sh", "-c", script, str(root),
                               "/opt/sluice/bin/sluice", *map(str, args)], capture_output=True,
                              text=True, timeout=300, env=MINIMAL_ENV)

    # Root in a container may lack CAP_SYS_ADMIN (Docker's default): no mount namespace then.
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", 'mount -t proc proc "$0/proc"',
                            str(root)], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount /proc in a mount namespace here: {probe.stderr.strip()}")
    in_chroot.root = root
    yield in_chroot
    shutil.rmtree(root)  # /proc was mounted only in each run's own mount namespace


def test_moved_install_runs_where_only_base_libraries_exist(fresh_root, bootstrap, new_topic):
    topic = new_topic(3)
    quickstart_copy(fresh_root.root / "pipe", topic)
    version = fresh_root("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("sluice ")
    validate = fresh_root("validate", "/pipe")
    assert validate.returncode == 0, validate.stderr
    events = produce_quickstart_events(bootstrap, topic, 2000, seed=14)
    result = fresh_root("run", "/pipe", "--once", "--bootstrap-servers", bootstrap)
    assert result.returncode == 0, result.stderr
    assert_quickstart_tables(fresh_root.root / "pipe" / "data" / "tables", events)


def sasl_ssl_quickstart(folder, topic, ca):
    """The quickstart reading over the test broker's SASL_SSL listener (user sluice, PLAIN)."""
    pipe = quickstart_copy(folder, topic)
    (pipe / "kafka.pass").write_text("sluice-secret\n")
    config = pipe / "pipeline.yaml"
    config.write_text(config.read_text().replace(
        "    bootstrap.servers: 127.0.0.1:9092\n",
        "    bootstrap.servers: 127.0.0.1:9092\n    security.protocol: SASL_SSL\n"
        f"    ssl.ca.location: \"{ca}\"\n    sasl.mechanisms: PLAIN\n"
        "    sasl.username: sluice\n    sasl.password: ${file:kafka.pass}\n"))
    return pipe


def broker_tls(bootstrap):
    """The SASL_SSL listener (port + 4) and CA of the broker scripts/kafka.sh started secure."""
    port = int(bootstrap.rsplit(":", 1)[1])
    ca = ROOT / ".run" / f"kafka-{port}" / "tls" / "ca.crt"
    assert ca.exists(), f"{ca} is missing: start the broker with KAFKA_SECURE=1"
    return f"127.0.0.1:{port + 4}", ca


def test_moved_install_reads_over_sasl_ssl(moved_prefix, tmp_path, bootstrap, new_topic):
    """TLS and SASL through the bundled OpenSSL (its RUNPATH patched) and librdkafka."""
    address, ca = broker_tls(bootstrap)
    topic = new_topic(3)
    pipe = sasl_ssl_quickstart(tmp_path / "pipe", topic, ca)
    events = produce_quickstart_events(bootstrap, topic, 500, seed=15)
    result = run_installed(moved_prefix / "bin" / "sluice", "run", pipe, "--once",
                           "--bootstrap-servers", address)
    assert result.returncode == 0, result.stderr
    assert_quickstart_tables(pipe / "data" / "tables", events)


def test_moved_install_reads_over_sasl_ssl_without_system_openssl(fresh_root, bootstrap,
                                                                  new_topic):
    """No /usr/lib/ssl, no openssl.cnf, no system libssl: the bundled OpenSSL alone."""
    address, ca = broker_tls(bootstrap)
    shutil.copy(ca, fresh_root.root / "ca.crt")
    topic = new_topic(3)
    sasl_ssl_quickstart(fresh_root.root / "secure", topic, "/ca.crt")
    events = produce_quickstart_events(bootstrap, topic, 500, seed=16)
    result = fresh_root("run", "/secure", "--once", "--bootstrap-servers", address)
    assert result.returncode == 0, result.stderr
    assert_quickstart_tables(fresh_root.root / "secure" / "data" / "tables", events)
