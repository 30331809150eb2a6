"""Interoperability matrix: tables sluice writes (every type, partitioned with nulls and
special characters, checkpointed, schema-evolved, overwritten) read the same in deltalake,
Polars, DuckDB and sluice's own reader. (Spark: test_spark_interop.py.)"""
import datetime as dt
import decimal
import json
import random

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from readers import read_all, read_deltalake, read_sluice, sluice, sluice_append, normalise, sorted_by

SPECIAL = ["plain", "with space", "a/b", "k=v", "50%", "c:d", "ünï", "", "#[x]"]


def every_type(start, n, seed=1):
    rng = random.Random(seed + start)
    ids = range(start, start + n)

    def maybe(v, p=0.15):
        return None if rng.random() < p else v

    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "flag": pa.array([maybe(rng.random() < 0.5) for _ in ids], pa.bool_()),
        "i8": pa.array([maybe(rng.randint(-128, 127)) for _ in ids], pa.int8()),
        "i16": pa.array([maybe(rng.randint(-32768, 32767)) for _ in ids], pa.int16()),
        "i32": pa.array([maybe(rng.randint(-2**31, 2**31 - 1)) for _ in ids], pa.int32()),
        "i64": pa.array([maybe(rng.randint(-2**63, 2**63 - 1)) for _ in ids], pa.int64()),
        "f32": pa.array([maybe(rng.uniform(-1e6, 1e6)) for _ in ids], pa.float32()),
        "f64": pa.array([maybe(rng.uniform(-1e12, 1e12)) for _ in ids], pa.float64()),
        "s": pa.array([maybe(rng.choice(["", "a", "ünïcödé ✓", "x" * rng.randint(30, 80)])) for _ in ids]),
        "bin": pa.array([maybe(rng.randbytes(rng.randint(0, 16))) for _ in ids], pa.binary()),
        "d": pa.array([maybe(dt.date(1969, 12, 25) + dt.timedelta(days=rng.randint(0, 30000))) for _ in ids]),
        "ts": pa.array([maybe(rng.randint(-10**15, 4 * 10**15)) for _ in ids], pa.timestamp("us", tz="UTC")),
        "ntz": pa.array([maybe(rng.randint(0, 4 * 10**15)) for _ in ids], pa.timestamp("us")),
        "dec": pa.array([maybe(decimal.Decimal(rng.randint(-10**9, 10**9)) / 1000) for _ in ids],
                        pa.decimal128(18, 3)),
        "st": pa.array([maybe({"a": maybe(rng.randint(0, 9)), "inner": maybe({"z": maybe("q")})}) for _ in ids],
                       pa.struct([("a", pa.int32()), ("inner", pa.struct([("z", pa.string())]))])),
        "arr": pa.array([maybe([maybe(str(i)) for i in range(rng.randint(0, 3))]) for _ in ids],
                        pa.list_(pa.string())),
        "arr_st": pa.array([maybe([{"k": "x", "v": maybe(1.5)}]) for _ in ids],
                           pa.list_(pa.struct([("k", pa.string()), ("v", pa.float64())]))),
        "m": pa.array([maybe([("a", rng.randint(0, 5)), ("b", None)]) for _ in ids],
                      pa.map_(pa.string(), pa.int64())),
    })


def assert_all_readers_agree(table_dir, expected, skip=()):
    """Every reader returns exactly `expected` (sorted by id)."""
    expected = sorted_by(expected)
    for name, got in read_all(table_dir, expected.schema, skip=skip).items():
        for column in got.column_names:
            assert got.column(column).equals(expected.column(column)), (
                f"{name} differs in column {column}: "
                f"{got.column(column).to_pylist()[:5]} vs {expected.column(column).to_pylist()[:5]}")


def test_every_type_unpartitioned(tmp_path):
    table_dir = tmp_path / "t"
    data = every_type(0, 3000)
    sluice_append(table_dir, data)
    protocol = DeltaTable(str(table_dir)).protocol()
    # The timestamp_ntz column needs the timestampNtz table feature, and nothing else.
    assert (protocol.min_reader_version, protocol.min_writer_version) == (3, 7)
    assert protocol.reader_features == ["timestampNtz"]
    assert_all_readers_agree(table_dir, data)


def test_without_ntz_the_protocol_is_1_2(tmp_path):
    table_dir = tmp_path / "t"
    sluice_append(table_dir, every_type(0, 100).drop_columns(["ntz"]))
    protocol = DeltaTable(str(table_dir)).protocol()
    assert (protocol.min_reader_version, protocol.min_writer_version) == (1, 2)


@pytest.mark.parametrize("partition_by", [["p_str"], ["p_date"], ["p_int"], ["p_str", "p_int"]])
def test_partitioned_with_nulls_and_special_characters(tmp_path, partition_by):
    rng = random.Random(3)
    n = 600
    data = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "p_str": pa.array([None if i % 10 == 0 else rng.choice(SPECIAL) for i in range(n)]),
        "p_date": pa.array([None if i % 7 == 0 else dt.date(2024, 2, 27) + dt.timedelta(days=i % 4)
                            for i in range(n)]),
        "p_int": pa.array([None if i % 9 == 0 else i % 3 - 1 for i in range(n)], pa.int32()),
        "v": pa.array([float(i) for i in range(n)]),
    })
    table_dir = tmp_path / "t"
    sluice_append(table_dir, data, "--partition-by", ",".join(partition_by))
    if "p_str" in partition_by:
        # An empty string partition value is null, as Spark writes it (Hive semantics).
        data = data.set_column(1, "p_str", pa.array([v or None for v in data.column("p_str").to_pylist()]))
    log = [json.loads(line) for line in (table_dir / "_delta_log" / "00000000000000000000.json").read_text().splitlines()]
    adds = [a["add"] for a in log if "add" in a]
    assert all(set(a["partitionValues"]) == set(partition_by) for a in adds)
    assert any(None in a["partitionValues"].values() for a in adds)
    assert all(part.split("=")[0] in partition_by for a in adds for part in a["path"].split("/")[:-1])
    assert_all_readers_agree(table_dir, data)


def test_checkpointed_table_and_time_travel(tmp_path):
    table_dir = tmp_path / "t"
    parts = [every_type(k * 40, 40, seed=k).drop_columns(["m"]) for k in range(26)]
    for part in parts:
        sluice_append(table_dir, part, "--checkpoint-interval", "10")
    log = table_dir / "_delta_log"
    assert (log / "00000000000000000010.checkpoint.parquet").exists()
    assert (log / "00000000000000000020.checkpoint.parquet").exists()
    assert json.loads((log / "_last_checkpoint").read_text())["version"] == 20
    assert_all_readers_agree(table_dir, pa.concat_tables(parts))
    schema = parts[0].schema
    for version in (5, 15):
        expected = sorted_by(pa.concat_tables(parts[: version + 1]))
        assert sorted_by(normalise(read_deltalake(table_dir, version), schema)).equals(expected)
        assert sorted_by(normalise(read_sluice(table_dir, "--version", version), schema)).equals(expected)


def test_schema_evolution_top_level_and_nested(tmp_path):
    table_dir = tmp_path / "t"
    first = pa.table({"id": pa.array([1, 2], pa.int64()),
                      "st": pa.array([{"a": 1}, None], pa.struct([("a", pa.int64())]))})
    sluice_append(table_dir, first)
    second = pa.table({"id": pa.array([3], pa.int64()),
                       "st": pa.array([{"a": 3, "b": "new"}], pa.struct([("a", pa.int64()), ("b", pa.string())])),
                       "note": pa.array(["hello"])})
    refused = sluice_append(table_dir, second, check=False)
    assert refused.returncode != 0
    assert "column 'st.b' (string) is not in the table; allow schema evolution" in refused.stderr
    sluice_append(table_dir, second, "--merge-schema")
    expected = pa.table({
        "id": pa.array([1, 2, 3], pa.int64()),
        "st": pa.array([{"a": 1, "b": None}, None, {"a": 3, "b": "new"}],
                       pa.struct([("a", pa.int64()), ("b", pa.string())])),
        "note": pa.array([None, None, "hello"]),
    })
    assert_all_readers_agree(table_dir, expected)


@pytest.mark.parametrize("column, data_type, message", [
    ("v", pa.string(), "column 'v' has type long in the table but string in the data; the types are incompatible"),
    ("v", pa.int16(), None),  # widening into long: accepted
    ("w", pa.int64(), "column 'w' has type integer in the table but long in the data; narrowing a column is not allowed"),
])
def test_incompatible_changes_are_refused(tmp_path, column, data_type, message):
    table_dir = tmp_path / "t"
    sluice_append(table_dir, pa.table({"id": pa.array([1], pa.int64()), "v": pa.array([1], pa.int64()),
                                       "w": pa.array([1], pa.int32())}))
    values = ["x"] if pa.types.is_string(data_type) else [2]
    result = sluice_append(table_dir, pa.table({"id": pa.array([2], pa.int64()),
                                                column: pa.array(values, data_type)}), check=False)
    version = DeltaTable(str(table_dir)).version()
    if message is None:
        assert result.returncode == 0, result.stderr
        assert version == 1
    else:
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
        assert version == 0


def test_overwrite_replaces_contents(tmp_path):
    table_dir = tmp_path / "t"
    sluice_append(table_dir, every_type(0, 50).drop_columns(["m"]))
    replacement = every_type(1000, 30).drop_columns(["m"])
    sluice_append(table_dir, replacement, "--mode", "overwrite")
    assert_all_readers_agree(table_dir, replacement)
    history = sluice("table", "history", table_dir, "--format", "json")
    ops = [json.loads(line)["operationParameters"]["mode"] for line in history.stdout.splitlines()]
    assert ops == ["Overwrite", "Append"]


def test_time_travel_by_timestamp(tmp_path):
    import time
    table_dir = tmp_path / "t"
    sluice_append(table_dir, pa.table({"id": pa.array([1], pa.int64())}))
    time.sleep(0.05)
    between = int(time.time() * 1000)
    time.sleep(0.05)
    sluice_append(table_dir, pa.table({"id": pa.array([2], pa.int64())}))
    after = time.time()
    at = read_sluice(table_dir, "--timestamp", str(between))
    assert at.column("id").to_pylist() == [1]
    # ISO form, whole seconds: the first whole second after both commits.
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(after) + 1)) + "Z"
    assert sorted(read_sluice(table_dir, "--timestamp", iso).column("id").to_pylist()) == [1, 2]
    before = sluice("table", "describe", table_dir, "--timestamp", "2000-01-01T00:00:00Z")
    assert before.returncode == 1
    assert "has no version committed at or before the given time" in before.stderr


def _truncate_like_spark(value, is_max):
    """Delta/Spark's truncateMinStringAgg and truncateMaxStringAgg, on Java's UTF-16 lengths."""
    units = value.encode("utf-16-le")
    if len(units) // 2 <= 32:
        return value
    cut = 33 if 0xD800 <= int.from_bytes(units[62:64], "little") <= 0xDBFF else 32
    if not is_max:
        return units[:2 * cut].decode("utf-16-le")
    while cut <= 64:
        if cut >= len(units) // 2:
            return value
        if units[2 * cut:2 * cut + 4] == "\U0010FFFF".encode("utf-16-le"):
            cut += 2
        elif int.from_bytes(units[2 * cut:2 * cut + 2], "little") < 0x7F:
            return units[:2 * cut].decode("utf-16-le") + "\x7f"
        else:
            return units[:2 * cut].decode("utf-16-le") + "\U0010FFFF"
    return None


def _string_bounds_model(values):
    """Delta's min/max of one file's string values: byte-wise order of the UTF-8 values, then
    cut as Spark cuts them (a longer min to a 32-unit prefix, a longer max to a prefix plus a
    tie-breaker that keeps it an upper bound)."""
    present = sorted((v for v in values if v is not None), key=lambda v: v.encode())
    if not present:
        return None, None
    return _truncate_like_spark(present[0], False), _truncate_like_spark(present[-1], True)


def test_string_stats_match_a_model_and_skip_files_in_deltalake(tmp_path):
    # sluice takes these bounds from the Parquet writer's chunk statistics (several row groups
    # per file here), which drop values over 4 KiB: the last file's bounds are such values, and
    # its max is cut with a tie-breaker (deltalake 1.6 read a missing max as null and skipped
    # the file for every filter on the column: wrong results).
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    table_dir = tmp_path / "t"
    rng = random.Random(7)
    pool = ["", "a", "ab", "é", "éa", "日本", "~", "m" * 31, "m" * 32, "m" * 33]
    written = []
    for f in range(6):
        p = chr(ord("c") + 2 * f)  # each file holds its own range of values
        choices = ([p * 5000, chr(ord(p) + 1) * 5000, p + "x"] if f == 5 else
                   [p + v for v in pool] + [p * 40, p * 5000])
        s = [None if rng.random() < 0.1 else rng.choice(choices) for _ in range(3000)]
        x = [None if rng.random() < 0.3 else p + str(rng.randint(0, 99)) for _ in range(3000)]
        written.append(s)
        data = pa.table({"s": pa.array(s, pa.string()),
                         "st": pa.array([{"x": v} for v in x], pa.struct([("x", pa.string())]))})
        sluice_append(table_dir, data, "--row-group-rows", "1000")
    adds = [json.loads(line)["add"] for f in sorted((table_dir / "_delta_log").glob("*.json"))
            for line in f.read_text().splitlines() if '"add"' in line]
    assert len(adds) == 6
    bounds = {}
    for add in adds:
        stats = json.loads(add["stats"])
        assert pq.ParquetFile(table_dir / add["path"]).metadata.num_row_groups == 3
        file = pq.read_table(table_dir / add["path"])
        for name, values in (("s", file.column("s").to_pylist()),
                             ("x", [r and r["x"] for r in file.column("st").to_pylist()])):
            model = _string_bounds_model(values)
            got = tuple((stats[k]["st"] if name == "x" else stats[k]).get(name)
                        for k in ("minValues", "maxValues"))
            assert got == model, f"{add['path']} {name}"
            if name == "s":
                bounds[add["path"]] = model
    assert bounds[adds[5]["path"]] == ("m" * 32, "n" * 32 + "\x7f")
    # deltalake prunes files by those bounds: the files left in the scan are those whose bounds
    # may hold the value, and the rows read are the ones written.
    dataset = DeltaTable(str(table_dir)).to_pyarrow_dataset()
    for value in ("eab", "g" * 40, "k~", "m" * 5000, "n" * 5000, "mx", "d", "zz"):
        expr = ds.field("s") == value
        kept = sorted(fragment.path.rsplit("/", 1)[-1] for fragment in dataset.get_fragments(filter=expr))
        may_hold = sorted(path for path, (lo, hi) in bounds.items()
                          if lo.encode() <= value.encode() <= hi.encode())
        assert kept == may_hold, value
        assert len(kept) <= 2, value
        rows = dataset.to_table(filter=expr).column("s").to_pylist()
        assert len(rows) == sum(s.count(value) for s in written), value
