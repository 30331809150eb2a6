"""Independent readers of Delta tables, normalised to comparable pyarrow Tables:
deltalake (delta-rs), Polars, DuckDB's delta extension, and sluice's own reader (export)."""
import pathlib
import subprocess
import tempfile

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from conftest import SLUICE, duckdb_connection


def sluice(*args):
    return subprocess.run([str(SLUICE), *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def sluice_append(table_dir, table, *flags, check=True):
    """Writes `table` to a temp Parquet file and appends it with `sluice table append`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "in.parquet"
        pq.write_table(table, path)
        result = sluice("table", "append", table_dir, path, *flags)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def read_sluice(table_dir, *flags):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "out.arrow"
        result = sluice("table", "export", table_dir, out, *flags)
        assert result.returncode == 0, result.stderr
        return ipc.open_file(out).read_all()


def read_deltalake(table_dir, version=None):
    from deltalake import DeltaTable
    return DeltaTable(str(table_dir), version=version).to_pyarrow_table()


def read_polars(table_dir):
    import polars as pl
    return pl.read_delta(str(table_dir)).to_arrow()


def read_duckdb(table_dir):
    con = duckdb_connection()  # kept alive until the result is read
    return con.sql(f"SELECT * FROM delta_scan('{table_dir}')").arrow().read_all()


def normalise(table, schema):
    """Casts a reader's table to `schema` (column order and physical types), so that only
    values are compared. The casts are between equivalent representations only:
    large_string/string_view -> string, large_binary -> binary, large_list -> list, and the
    time zone name of UTC timestamps (DuckDB and Polars report 'UTC' or '+00:00' forms)."""
    columns = []
    for field in schema:
        column = table.column(field.name)
        if not column.type.equals(field.type):
            column = column.cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


def sorted_by(table, key="id"):
    return table.sort_by([(key, "ascending")]).combine_chunks()


def read_all(table_dir, schema, skip=None):
    """Every reader's view of the table, normalised to `schema` and sorted by id;
    skip = {reader: {columns}} leaves out columns a reader cannot represent."""
    skip = skip or {}
    out = {}
    for name, fn in [("sluice", read_sluice), ("deltalake", read_deltalake),
                     ("polars", read_polars), ("duckdb", read_duckdb)]:
        wanted = pa.schema([f for f in schema if f.name not in skip.get(name, ())])
        out[name] = sorted_by(normalise(fn(table_dir), wanted))
    return out
