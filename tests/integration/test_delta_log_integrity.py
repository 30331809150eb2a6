"""A corrupt Delta log is refused, never replayed as "no change"; a full disk is reported with
the file and ENOSPC and leaves nothing corrupt; tables other engines made with CHECK
constraints, NOT NULL columns, append-only and writer features sluice lacks are honoured or
refused, never written past."""
import json
import os
import shutil
import subprocess
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from conftest import run_sluice, write_pipeline
from readers import read_deltalake, read_sluice, sluice, sluice_append
from test_sql_pipeline_e2e import produce_values


def latest_commit(table_dir):
    return sorted((table_dir / "_delta_log").glob("*.json"))[-1]


def test_downstream_flow_refuses_an_emptied_commit_instead_of_rereading(tmp_path, bootstrap,
                                                                        new_topic):
    """The bronze commit that recorded the last Kafka offsets is emptied (0 bytes). Replayed as
    an empty commit, bronze would lose those offsets, re-read the records from Kafka and the
    silver flow would read them twice; sluice must refuse, naming the file, and write nothing."""
    topic = new_topic(1)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: integrity
storage: ./data
kafka:
  default:
    bootstrap.servers: {bootstrap}
""")
    (pipe / "bronze.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE bronze AS SELECT CAST(value AS STRING) AS v "
        f"FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    (pipe / "silver.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE silver AS SELECT v FROM STREAM(LIVE.bronze);\n")
    tables = pipe / "data" / "tables"
    for batch in range(2):
        produce_values(bootstrap, topic, [{"n": batch * 10 + i} for i in range(10)])
        run = run_sluice("run", pipe, "--once")
        assert run.returncode == 0, run.stderr
    assert read_deltalake(tables / "silver").num_rows == 20
    silver_commits = sorted((tables / "silver" / "_delta_log").glob("*.json"))

    emptied = latest_commit(tables / "bronze")
    emptied.write_bytes(b"")
    produce_values(bootstrap, topic, [{"n": 20 + i} for i in range(10)])
    run = run_sluice("run", pipe, "--once")
    assert run.returncode != 0, run.stdout
    assert f"{emptied}: empty (0-byte) commit file (no actions): the commit is lost or corrupt" \
        in run.stderr, run.stderr
    assert "Restore the file from a backup" in run.stderr, run.stderr
    # Silver did not move: no commit, no re-read rows.
    assert sorted((tables / "silver" / "_delta_log").glob("*.json")) == silver_commits
    values = [json.loads(v)["n"] for v in read_deltalake(tables / "silver").column("v").to_pylist()]
    assert sorted(values) == list(range(20))
    # The table commands refuse the same way.
    describe = sluice("table", "describe", tables / "bronze")
    assert describe.returncode != 0 and "empty (0-byte) commit file" in describe.stderr


def test_commit_line_that_is_json_but_no_action_is_refused_with_file_and_line(tmp_path):
    table_dir = tmp_path / "t"
    for i in range(3):
        sluice_append(table_dir, pa.table({"id": pa.array([i], pa.int64())}))
    last = latest_commit(table_dir)
    last.write_text(last.read_text() + '{"removeEverything": "*"}\n')
    lines = last.read_text().count("\n")
    err = sluice("table", "describe", table_dir).stderr
    assert f"{last}:{lines}: malformed Delta action: 'removeEverything' action is not a JSON object" in err, err


def test_action_kind_of_a_later_protocol_is_skipped_as_spark_skips_it(tmp_path):
    """Spark and delta-kernel-rs skip actions they do not read; one that must be understood is
    announced by a table feature (refused by name). Refusing the line made healthy tables
    unreadable."""
    table_dir = tmp_path / "t"
    for i in range(3):
        sluice_append(table_dir, pa.table({"id": pa.array([i], pa.int64())}))
    last = latest_commit(table_dir)
    last.write_text(last.read_text() + '{"someFutureAction": {"path": "x"}}\n')
    assert sorted(read_sluice(table_dir).column("id").to_pylist()) == [0, 1, 2]


def test_commit_info_and_stats_of_unexpected_types_do_not_crash_the_table_commands(tmp_path):
    """commitInfo is free-form and stats are a JSON string: a writer may put anything there.
    (Before: describe and history aborted on an uncaught JSON type_error.)"""
    table_dir = tmp_path / "t"
    sluice_append(table_dir, pa.table({"id": pa.array([1, 2], pa.int64())}))
    first = table_dir / "_delta_log" / "00000000000000000000.json"
    lines = []
    for line in first.read_text().splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            action["commitInfo"].update({"timestamp": "yesterday", "operation": 7})
        if "add" in action:
            action["add"]["stats"] = json.dumps({"numRecords": "many", "nullCount": [1],
                                                 "minValues": "?"})
        lines.append(json.dumps(action))
    first.write_text("\n".join(lines) + "\n")
    for command in ("describe", "history", "files", "show"):
        result = sluice("table", command, table_dir)
        assert result.returncode == 0, (command, result.returncode, result.stderr)
    assert read_sluice(table_dir).num_rows == 2


# --- a full disk ------------------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 3 MiB tmpfs (root only); yields its path and a function that resizes it."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")

    def resize(megabytes):
        subprocess.run(["mount", "-o", f"remount,size={megabytes}m", str(mount)], check=True)

    try:
        yield mount, resize
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def incompressible(rows, seed):
    rng = __import__("random").Random(seed)
    return pa.table({"id": pa.array(range(seed * rows, seed * rows + rows), pa.int64()),
                     "blob": pa.array([rng.randbytes(64) for _ in range(rows)], pa.binary())})


def test_full_disk_names_the_file_and_enospc_and_a_rerun_writes_exactly_once(tmp_path, small_tmpfs):
    mount, resize = small_tmpfs
    table_dir = mount / "t"
    small = incompressible(1000, 0)  # ~70 KB
    sluice_append(table_dir, small, "--checkpoint-interval", "2")
    big = incompressible(60_000, 1)  # ~4 MB of Parquet: does not fit in what is left
    source = tmp_path / "big.parquet"
    pq.write_table(big, source, compression="none")
    failed = sluice("table", "append", table_dir, source)
    assert failed.returncode != 0
    assert "cannot write data file " + str(table_dir) in failed.stderr, failed.stderr
    assert ".parquet: No space left on device (ENOSPC): the disk is full" in failed.stderr, failed.stderr
    assert "Error writing bytes to file" not in failed.stderr
    # Nothing half-written is visible: same version, same rows, in every reader.
    assert DeltaTable(str(table_dir)).version() == 0
    assert read_sluice(table_dir).num_rows == 1000
    assert [p.name for p in table_dir.iterdir() if p.suffix == ".parquet"].__len__() == 1, \
        "the failed write left data files behind"
    resize(64)
    again = sluice("table", "append", table_dir, source)
    assert again.returncode == 0, again.stderr
    ids = read_deltalake(table_dir).column("id").to_pylist()
    assert sorted(ids) == list(range(1000)) + list(range(60_000, 120_000))


def test_full_disk_during_a_commit_file_write_names_it(tmp_path, small_tmpfs):
    """The data fits, the commit does not: the commit's temp file in _delta_log is named."""
    mount, resize = small_tmpfs
    table_dir = mount / "t"
    sluice_append(table_dir, pa.table({"id": pa.array([0], pa.int64())}))
    filler = mount / "filler"
    # Fill the disk to the last byte.
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 4096, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError:
                    break
        # Give back one page: the data file (~500 B) fits in it, the commit then does not.
        os.ftruncate(fd, os.fstat(fd).st_size - 4096)
    finally:
        os.close(fd)
    failed = sluice_append(table_dir, pa.table({"id": pa.array([1], pa.int64())}), check=False)
    assert failed.returncode != 0
    assert "No space left on device (ENOSPC): the disk is full" in failed.stderr, failed.stderr
    assert f"cannot write {table_dir}/_delta_log/.00000000000000000001.json." in failed.stderr, \
        failed.stderr
    assert [p.name for p in table_dir.iterdir() if p.suffix == ".parquet"].__len__() == 1, \
        "the failed write left its data file behind"
    filler.unlink()
    assert read_sluice(table_dir).num_rows == 1
    sluice_append(table_dir, pa.table({"id": pa.array([1], pa.int64())}))
    assert sorted(read_deltalake(table_dir).column("id").to_pylist()) == [0, 1]


# --- constraints on pipeline writes -----------------------------------------------------------

def test_check_constraint_from_tblproperties_fails_streaming_and_view_writes(tmp_path, bootstrap,
                                                                            new_topic):
    """A CHECK constraint declared in TBLPROPERTIES holds for the streaming flow's commits and
    the materialized view's refresh: a violating record fails the update and nothing of it is
    committed (a rerun after it stays exactly where the good data left the tables)."""
    topic = new_topic(1)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: checks
storage: ./data
kafka:
  default:
    bootstrap.servers: {bootstrap}
""")
    (pipe / "bronze.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE amounts "
        "TBLPROPERTIES ('delta.constraints.amount_positive' = 'amount > 0') AS "
        "SELECT CAST(get_json_object(CAST(value AS STRING), '$.amount') AS BIGINT) AS amount "
        f"FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    (pipe / "gold.sql").write_text(
        "CREATE OR REFRESH MATERIALIZED VIEW total "
        "TBLPROPERTIES ('delta.constraints.small' = 'total < 100') AS "
        "SELECT sum(amount) AS total FROM amounts;\n")
    tables = pipe / "data" / "tables"
    produce_values(bootstrap, topic, [{"amount": a} for a in (5, 7)])
    ok = run_sluice("run", pipe, "--once")
    assert ok.returncode == 0, ok.stderr
    assert read_deltalake(tables / "total").column("total").to_pylist() == [12]

    # The streaming commit is fine, the view's refresh would break its constraint.
    produce_values(bootstrap, topic, [{"amount": 200}])
    view_bad = run_sluice("run", pipe, "--once")
    assert view_bad.returncode != 0
    assert "CHECK constraint small (total < 100) violated by row with values:\n - total : 212" \
        in view_bad.stderr, view_bad.stderr
    assert sorted(read_deltalake(tables / "amounts").column("amount").to_pylist()) == [5, 7, 200]
    assert read_deltalake(tables / "total").column("total").to_pylist() == [12]

    produce_values(bootstrap, topic, [{"amount": 3}, {"amount": -4}])
    bad = run_sluice("run", pipe, "--once")
    assert bad.returncode != 0
    assert "CHECK constraint amount_positive (amount > 0) violated by row with values:\n - amount : -4" \
        in bad.stderr, bad.stderr
    assert sorted(read_deltalake(tables / "amounts").column("amount").to_pylist()) == [5, 7, 200]


def test_pipeline_on_a_full_disk_fails_cleanly_and_a_rerun_ingests_exactly_once(
        tmp_path, small_tmpfs, bootstrap, new_topic):
    mount, resize = small_tmpfs
    topic = new_topic(2)
    pipe = write_pipeline(tmp_path / "pipe", f"""
name: full
storage: {mount}/data
kafka:
  default:
    bootstrap.servers: {bootstrap}
""")
    (pipe / "bronze.sql").write_text(
        "CREATE OR REFRESH STREAMING TABLE bronze AS SELECT value, partition, offset "
        f"FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');\n")
    rng = __import__("random").Random(3)
    produce_values(bootstrap, topic, [rng.randbytes(300) for _ in range(20_000)], partitions=2)
    failed = run_sluice("run", pipe, "--once")
    assert failed.returncode != 0
    assert "No space left on device (ENOSPC): the disk is full (or the quota is used up); free space" \
        in failed.stderr, failed.stderr
    assert f"{mount}/data" in failed.stderr, failed.stderr
    resize(128)
    again = run_sluice("run", pipe, "--once")
    assert again.returncode == 0, again.stderr
    rows = read_deltalake(mount / "data" / "tables" / "bronze")
    keys = list(zip(rows.column("partition").to_pylist(), rows.column("offset").to_pylist()))
    assert len(keys) == 20_000 and len(set(keys)) == 20_000
