"""`pip install .` into a fresh virtualenv, then the installed package used from outside the
repository: `import sluice` resolves to that venv, its bundled binary runs (the console script and
the API), validate/graph/read_table work, errors raise SluiceError with the file and line, and
read_table agrees with deltalake and DuckDB on a table deltalake wrote (its versions, a column
subset, a SQL filter). A pipeline run against Kafka is tests/integration/test_python_api.py's.

The venv is made without downloads: pip installs with --no-index --no-build-isolation, the
build dependency (scikit-build-core) and the runtime one (pyarrow) come from the project's .venv
through a .pth file (requirements.txt pins both). The wheel reuses a built tree, env
SLUICE_WHEEL_BUILD_DIR (default build; make test: build-fuzz, the ASan+UBSan tree), with the build
type read from its CMakeCache.txt: the install must compile and link nothing, and leave the tree
as it was (docs/decisions.md "(pk)"). With build-fuzz the bundled binary is the sanitizer one: it
runs with the ASAN_OPTIONS/UBSAN_OPTIONS the caller exported.
Run: .venv/bin/python -m pytest -p no:sluice python/tests  (after `make build`)."""
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import time

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

ROOT = pathlib.Path(__file__).resolve().parents[2]
CMAKE_VERSION = re.search(r"project\(sluice VERSION ([0-9.]+)", (ROOT / "CMakeLists.txt").read_text()).group(1)


class Venv:
    def __init__(self, folder: pathlib.Path):
        self.folder = folder
        self.python = folder / "bin" / "python"
        self.console_script = folder / "bin" / "sluice"

    def env(self):
        env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_BIN", "SLUICE_PYTHON", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.folder / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def script(self, code: str, cwd: pathlib.Path, timeout=120):
        """Runs `code` with the venv's python in `cwd`; returns its stdout parsed as JSON."""
        result = subprocess.run([self.python, "-c", textwrap.dedent(code)], cwd=cwd, env=self.env(),
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip().splitlines()[-1])


# The built tree the wheel reuses: build/ (gcc, Release: `make build`) by default; make test sets
# SLUICE_WHEEL_BUILD_DIR=build-fuzz, the clang ASan+UBSan tree it builds (scripts/sanitizer-build.sh).
BUILD_DIR = ROOT / os.environ.get("SLUICE_WHEEL_BUILD_DIR", "build")
# What pip's configure must leave as the tree had it (CMakeLists.txt: the SKBUILD block).
KEPT_CACHE_ENTRIES = ("CMAKE_BUILD_TYPE", "CMAKE_INSTALL_PREFIX", "CMAKE_CXX_COMPILER", "SLUICE_FUZZ",
                      "SLUICE_SANITIZE", "CMAKE_CXX_FLAGS_RELEASE", "CMAKE_CXX_FLAGS_RELWITHDEBINFO")


def cmake_cache(build_dir: pathlib.Path) -> dict:
    entries = {}
    for line in (build_dir / "CMakeCache.txt").read_text().splitlines():
        found = re.match(r"^([A-Za-z_][A-Za-z0-9_]*):[A-Z]+=(.*)$", line)
        if found:
            entries[found.group(1)] = found.group(2)
    return entries


def pip_install(python: pathlib.Path, build_dir: pathlib.Path, cwd: pathlib.Path, build_type=None):
    """pip installs the checkout into `python`'s venv over `build_dir`, with the build type the tree
    was configured with (read from its CMakeCache.txt, so it cannot drift): ninja then finds it
    up to date. The tree's cached compiler and flags stay as they are (pip passes no others)."""
    build_type = build_type or cmake_cache(build_dir)["CMAKE_BUILD_TYPE"]
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_BUILD_TYPE", "SKBUILD_CMAKE_ARGS")}
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-v", "--no-index",
         "--no-build-isolation", "--disable-pip-version-check",
         "-C", f"build-dir={build_dir}", "-C", f"cmake.build-type={build_type}", ROOT],
        capture_output=True, text=True, timeout=900, cwd=cwd, env=env)


def fresh_venv(folder: pathlib.Path) -> pathlib.Path:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder], check=True, timeout=60)
    # pyarrow and scikit-build-core of this (the project's) venv, without copying or downloading.
    purelib = subprocess.run([folder / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages") and pathlib.Path(p, "pyarrow").is_dir()]
    assert deps, "pyarrow is not installed in the venv running this test (make setup)"
    pathlib.Path(purelib, "project_venv_deps.pth").write_text(deps[0] + "\n")
    return folder / "bin" / "python"


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    if not (BUILD_DIR / "build.ninja").exists():
        pytest.fail(f"{BUILD_DIR} is not configured: build it first (make build; make test's "
                    "scripts/sanitizer-build.sh for build-fuzz): the wheel reuses it")
    try:
        import scikit_build_core  # noqa: F401  (the build backend pip runs in the fresh venv)
    except ImportError:
        pytest.fail("scikit-build-core is not installed in the venv running this test: run "
                    "scripts/setup.sh (requirements.txt pins it)")
    folder = tmp_path_factory.mktemp("fresh") / "venv"
    python = fresh_venv(folder)
    cache_before = cmake_cache(BUILD_DIR)
    started = time.monotonic()
    cpu_before = os.times()
    result = pip_install(python, BUILD_DIR, folder.parent)
    cpu_after = os.times()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    cpu = (cpu_after.children_user - cpu_before.children_user) + (cpu_after.children_system - cpu_before.children_system)
    print(f"\npip install . over {BUILD_DIR.name}: {time.monotonic() - started:.1f} s wall, {cpu:.1f} CPU-s")
    v = Venv(folder)
    v.install_log = result.stdout + result.stderr
    v.cache_before = cache_before
    return v


@pytest.fixture
def pipeline(tmp_path):
    folder = tmp_path / "pipe"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text("name: pk\nstorage: ./data\nmode: triggered\n"
                                          "kafka:\n  default:\n    bootstrap.servers: 127.0.0.1:9\n")
    (folder / "bronze.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE orders_bronze\n"
        "AS SELECT * FROM STREAM read_kafka(topic => 'orders', starting_offsets => 'earliest');\n")
    (folder / "silver.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE orders_silver\n"
        "AS SELECT o.id, o.amount FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE') AS o\n"
        "                              FROM STREAM(orders_bronze));\n")
    return folder


def test_pip_install_reuses_the_built_tree(venv):
    # After the tree's build (make build, or make test's build-fuzz), the wheel compiles nothing.
    assert "ninja: no work to do." in venv.install_log, venv.install_log[-3000:]
    assert re.search(r"Successfully installed .*sluice-" + re.escape(CMAKE_VERSION), venv.install_log)


def test_pip_install_leaves_the_tree_as_it_was(venv, tmp_path):
    # Its cache keeps the tree's prefix, build type, compiler and flags; no SKBUILD or Python
    # hints of pip's (temporary) venv stay behind to steer a later configure.
    after = cmake_cache(BUILD_DIR)
    assert {k: after.get(k) for k in KEPT_CACHE_ENTRIES} == {k: venv.cache_before.get(k) for k in KEPT_CACHE_ENTRIES}
    assert not [k for k in after if k.startswith("SKBUILD")], [k for k in after if k.startswith("SKBUILD")]
    assert "Python_EXECUTABLE" not in after or after["Python_EXECUTABLE"] == venv.cache_before.get("Python_EXECUTABLE")
    # `cmake --build <dir>` finds nothing to do; make install's script installs from it into a
    # prefix of its own. Target sluice (what the wheel and make install use): the cache being
    # the same, no other target's commands changed either, and a tree whose tests were never
    # built (a local build/) would otherwise compile them here.
    built = subprocess.run(["cmake", "--build", BUILD_DIR, "--target", "sluice"], capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0 and "ninja: no work to do." in built.stdout, built.stdout[-3000:] + built.stderr
    prefix = tmp_path / "prefix"
    installed = subprocess.run([ROOT / "scripts" / "install.sh", BUILD_DIR, prefix], capture_output=True,
                               text=True, timeout=300, cwd=ROOT)
    assert installed.returncode == 0, installed.stderr[-3000:]
    assert os.access(prefix / "bin" / "sluice", os.X_OK)
    assert not (prefix / "_bin").exists()
    # The Python package of that layout runs <prefix>/bin/sluice (no SLUICE_BIN, no wheel binary).
    env = {k: v for k, v in os.environ.items() if k != "SLUICE_BIN"}
    env["PYTHONPATH"] = str(prefix / "share" / "sluice" / "python")
    found = subprocess.run([sys.executable, "-c", "import sluice, sluice._binary as b; print(b.find()); "
                            "print(sluice.version())"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [str(prefix / "bin" / "sluice"), CMAKE_VERSION]


def test_pip_install_refuses_to_switch_the_trees_build_type(venv, tmp_path):
    # Asking for another build type than the tree's would recompile all of it: refused, the tree
    # unchanged (still nothing to do).
    other = "Debug"
    result = pip_install(venv.python, BUILD_DIR, tmp_path, build_type=other)
    assert result.returncode != 0
    said = " ".join((result.stdout + result.stderr).split())  # CMake wraps its message
    assert f"was configured as CMAKE_BUILD_TYPE={venv.cache_before['CMAKE_BUILD_TYPE']}" in said, said[-3000:]
    assert f"-C cmake.build-type={venv.cache_before['CMAKE_BUILD_TYPE']}" in said
    after = cmake_cache(BUILD_DIR)
    assert {k: after.get(k) for k in KEPT_CACHE_ENTRIES} == {k: venv.cache_before.get(k) for k in KEPT_CACHE_ENTRIES}
    built = subprocess.run(["cmake", "--build", BUILD_DIR, "--target", "sluice"], capture_output=True,
                           text=True, timeout=600)
    assert built.returncode == 0 and "ninja: no work to do." in built.stdout, built.stdout[-3000:] + built.stderr


def test_import_outside_the_repository_uses_the_installed_package_and_bundled_binary(venv, tmp_path):
    got = venv.script("""
        import json, sluice, sluice._binary as b
        print(json.dumps({"file": sluice.__file__, "binary": b.find(), "version": sluice.version()}))
    """, cwd=tmp_path)
    site = pathlib.Path(got["file"]).parent
    assert site.parents[3] == venv.folder, got  # venv/lib/pythonX/site-packages/sluice
    assert pathlib.Path(got["binary"]) == site / "_bin" / "sluice"
    assert got["version"] == CMAKE_VERSION
    # The wheel's binary loads its libraries from the package (RUNPATH $ORIGIN/../_lib), not build/.
    ldd = subprocess.run(["ldd", got["binary"]], capture_output=True, text=True, check=True).stdout
    assert "not found" not in ldd, ldd
    resolved = {m.group(1): pathlib.Path(os.path.normpath(m.group(2)))
                for m in re.finditer(r"^\s*(\S+) => (/\S+)", ldd, re.MULTILINE)}
    assert resolved["libarrow.so.2600"] == site / "_lib" / "libarrow.so.2600", ldd
    assert resolved["librdkafka.so.1"] == site / "_lib" / "librdkafka.so.1", ldd
    assert not [p for p in resolved.values() if ROOT in p.parents or ".venv" in p.parts], ldd


def test_console_script_runs_the_bundled_binary(venv, tmp_path, pipeline):
    out = subprocess.run([venv.console_script, "--version"], cwd=tmp_path, env=venv.env(),
                         capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, f"sluice {CMAKE_VERSION}")
    out = subprocess.run([venv.console_script, "validate", pipeline], cwd=tmp_path, env=venv.env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "orders_silver (streaming table) <- orders_bronze (stream)" in out.stdout


def test_validate_and_graph(venv, tmp_path, pipeline):
    got = venv.script(f"""
        import json, sluice
        g = sluice.graph({str(pipeline)!r})
        print(json.dumps({{"validate": sluice.validate({str(pipeline)!r}),
                          "datasets": {{d["name"]: [d["kind"], d["line"], [c["name"] for c in d["columns"]]]
                                       for d in g["datasets"]}}}}))
    """, cwd=tmp_path)
    assert got["validate"].rstrip().endswith("OK")
    assert got["datasets"]["orders_silver"] == ["streaming table", 1, ["id", "amount"]]
    assert got["datasets"]["orders_bronze"][0] == "streaming table"


def test_errors_raise_sluice_error_with_file_and_line(venv, tmp_path, pipeline):
    (pipeline / "silver.sql").write_text("-- silver\n"
                                         "CREATE OR REFRESH STREAMING TABLE orders_silver\n"
                                         "AS SELECT nope FROM STREAM(orders_bronze);\n")
    got = venv.script(f"""
        import json, sluice
        try:
            sluice.validate({str(pipeline)!r})
            print(json.dumps(None))
        except sluice.SluiceError as e:
            print(json.dumps({{"type": type(e).__name__, "is_exception": isinstance(e, Exception),
                              "message": e.message, "str": str(e), "exit_code": e.exit_code,
                              "file": e.file, "line": e.line, "column": e.column}}))
    """, cwd=tmp_path)
    assert got is not None, "validate accepted an unknown column"
    assert got["is_exception"] and got["str"] == got["message"]
    assert got["exit_code"] == 1
    assert "unknown column 'nope'" in got["message"]
    assert (got["file"], got["line"], got["column"]) == (str(pipeline / "silver.sql"), 3, 11)


@pytest.fixture(scope="module")
def delta_table(tmp_path_factory):
    """Two versions written by deltalake (an independent writer), partitioned by `cat`."""
    path = tmp_path_factory.mktemp("delta") / "orders"
    ts = pa.array([1_700_000_000_000_000 + i * 60_000_000 for i in range(6)], pa.timestamp("us", tz="UTC"))
    v0 = pa.table({"id": pa.array(range(6), pa.int64()), "amount": [10.5, 20.0, None, 7.25, 99.0, 8.0],
                   "cat": ["a", "b", "a", "c", "b", "c"], "ts": ts})
    write_deltalake(str(path), v0, partition_by=["cat"])
    v1 = pa.table({"id": pa.array([6, 7], pa.int64()), "amount": [50.0, 1.0], "cat": ["a", "d"], "ts": ts[:2]})
    write_deltalake(str(path), v1, mode="append")
    return path


def _sorted(table: pa.Table, columns):
    return table.select(columns).sort_by([("id", "ascending")])


@pytest.mark.parametrize("version", [None, 0])
def test_read_table_agrees_with_deltalake_and_duckdb(venv, tmp_path, delta_table, version):
    # The venv's process writes what read_table returned; this one compares it with the oracles.
    venv.script(f"""
        import json, sluice, pyarrow as pa
        def save(name, t):
            with pa.OSFile({str(tmp_path)!r} + "/" + name + ".arrow", "wb") as f:
                with pa.ipc.new_file(f, t.schema) as w:
                    w.write_table(t)
        save("all", sluice.read_table({str(delta_table)!r}, version={version!r}))
        save("some", sluice.read_table({str(delta_table)!r}, version={version!r}, columns=["cat", "id"],
                                       filter="amount > 8 AND cat <> 'c'"))
        print(json.dumps(True))
    """, cwd=tmp_path)
    read = {n: pa.ipc.open_file(str(tmp_path / f"{n}.arrow")).read_all() for n in ("all", "some")}
    oracle = DeltaTable(str(delta_table), version=version).to_pyarrow_table() if version is not None \
        else DeltaTable(str(delta_table)).to_pyarrow_table()
    columns = ["id", "amount", "cat", "ts"]
    assert sorted(read["all"].column_names) == sorted(columns)
    assert read["all"].schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert _sorted(read["all"], columns).equals(_sorted(oracle.cast(read["all"].schema), columns))
    assert read["all"].num_rows == (6 if version == 0 else 8)
    expected = duckdb.sql("SELECT cat, id FROM oracle WHERE amount > 8 AND cat <> 'c'").arrow()
    if hasattr(expected, "read_all"):  # duckdb returns a RecordBatchReader in some versions
        expected = expected.read_all()
    assert read["some"].column_names == ["cat", "id"]
    assert read["some"].sort_by("id").to_pylist() == expected.sort_by("id").to_pylist()
    assert read["some"].num_rows == (3 if version == 0 else 4)


@pytest.mark.parametrize("kwargs, says", [
    ({"filter": "nope > 1"}, "unknown column 'nope'"),
    ({"version": 9}, "has no version 9 (latest is 1)"),
    ({"version": 0, "columns": ["id", "x"]}, "has no column(s) x"),
    ({"version": 0, "filter": "amount + 1"}, "is not a predicate"),
])
def test_read_table_errors(venv, tmp_path, delta_table, kwargs, says):
    got = venv.script(f"""
        import json, sluice
        try:
            sluice.read_table({str(delta_table)!r}, **{kwargs!r})
            print(json.dumps(None))
        except sluice.SluiceError as e:
            print(json.dumps(e.message))
    """, cwd=tmp_path)
    assert got is not None and says in got, got


def test_repository_tests_use_the_checkouts_package_beside_an_installed_one(venv, tmp_path):
    # pytest in an environment where sluice is installed loads it first (its pytest11 entry
    # point); tests/integration/test_python_api.py must still test python/sluice of the checkout.
    env = venv.env()
    env["SLUICE_BIN"] = str(next(venv.folder.glob("lib/python*/site-packages/sluice/_bin/sluice")))
    out = subprocess.run([venv.python, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          ROOT / "tests" / "integration" / "test_python_api.py", "-k", "the_api_under_test"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]
