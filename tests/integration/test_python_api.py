"""The Python API (python/sluice, as `import sluice` from the source tree, driving the sluice
under test through SLUICE_BIN) against the real broker: sluice.run(once=True) runs a small
pipeline, sluice.read_table reads its tables as deltalake does (all rows, a column subset and a
filter checked against a Python model, an earlier version), a full refresh through the API
rebuilds a table without duplicating a row, and a run that fails raises SluiceError with the
binary's message and exit code. `pip install .` and the installed package are
python/tests/test_package.py's."""
import os
import sys

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from conftest import ROOT, SLUICE
from test_sql_pipeline_e2e import kafka_pipeline, produce_values

sys.path.insert(0, str(ROOT / "python"))
import sluice  # noqa: E402  (the source tree's package)

SQL = """
CREATE OR REFRESH STREAMING TABLE orders_bronze
AS SELECT * FROM STREAM read_kafka(topic => '{topic}', starting_offsets => 'earliest');

CREATE OR REFRESH STREAMING TABLE orders_silver
AS SELECT o.id, o.amount, o.country
   FROM (SELECT from_json(CAST(value AS STRING), 'id BIGINT, amount DOUBLE, country STRING') AS o
         FROM STREAM(orders_bronze));

CREATE OR REFRESH MATERIALIZED VIEW revenue_by_country
AS SELECT country, count(*) AS orders, sum(amount) AS revenue FROM orders_silver GROUP BY country;
"""

ORDERS = [{"id": i, "amount": round(1.25 * i, 2), "country": ["NL", "DE", "FR"][i % 3]} for i in range(40)]


@pytest.fixture(autouse=True)
def binary_under_test(monkeypatch):
    # The source tree has no bundled binary: the API runs the one this suite tests.
    monkeypatch.setenv("SLUICE_BIN", str(SLUICE))
    assert sluice._binary.find() == str(SLUICE)


def _rows(table, key="id"):
    return sorted(table.to_pylist(), key=lambda r: r[key])


def test_run_then_read_table_agrees_with_deltalake(tmp_path, bootstrap, new_topic):
    topic = new_topic(2)
    produce_values(bootstrap, topic, ORDERS[:25], partitions=2)
    pipe = kafka_pipeline(tmp_path, "pyapi", bootstrap)
    (pipe / "orders.sql").write_text(SQL.format(topic=topic))
    assert "OK" in sluice.validate(pipe)
    graph = sluice.graph(pipe)
    assert {d["name"] for d in graph["datasets"]} == {"orders_bronze", "orders_silver", "revenue_by_country"}

    silver = pipe / "data" / "tables" / "orders_silver"
    sluice.run(pipe, once=True)
    first_version = DeltaTable(str(silver)).version()
    produce_values(bootstrap, topic, ORDERS[25:], partitions=2)
    sluice.run(pipe, once=True)

    got = sluice.read_table(silver)
    assert _rows(got) == _rows(DeltaTable(str(silver)).to_pyarrow_table())
    assert _rows(got) == ORDERS
    # Columns in the order asked, rows where the predicate holds (model: the same test in Python).
    some = sluice.read_table(silver, columns=["amount", "id"], filter="country = 'NL' AND amount >= 10")
    assert some.column_names == ["amount", "id"]
    assert _rows(some) == [{"amount": o["amount"], "id": o["id"]} for o in ORDERS
                           if o["country"] == "NL" and o["amount"] >= 10]
    # The table as the first run left it (time travel), as deltalake reads that version.
    old = sluice.read_table(silver, version=first_version, filter="amount > 5")
    assert _rows(old) == _rows(DeltaTable(str(silver), version=first_version).to_pyarrow_table()
                               .filter(pc.greater(pc.field("amount"), 5)))
    assert _rows(old) == [o for o in ORDERS[:25] if o["amount"] > 5]

    gold = sluice.read_table(pipe / "data" / "tables" / "revenue_by_country")
    model = {}
    for o in ORDERS:
        n, s = model.get(o["country"], (0, 0.0))
        model[o["country"]] = (n + 1, s + o["amount"])
    assert {r["country"]: (r["orders"], pytest.approx(r["revenue"])) for r in gold.to_pylist()} == model

    # A full refresh of silver through the API replays bronze: the same rows, none twice.
    sluice.run(pipe, once=True, full_refresh=["orders_silver"])
    assert _rows(sluice.read_table(silver)) == ORDERS


def test_failed_run_raises_sluice_error(tmp_path, bootstrap, new_topic):
    topic = new_topic(1)
    produce_values(bootstrap, topic, [{"n": 1}, {"n": -5}])
    pipe = kafka_pipeline(tmp_path, "pyapi_fail", bootstrap)
    (pipe / "p.sql").write_text(f"""
CREATE OR REFRESH STREAMING TABLE checked (
  CONSTRAINT positive EXPECT (n > 0) ON VIOLATION FAIL UPDATE
) AS SELECT value.n FROM STREAM read_kafka(topic => '{topic}', value_format => 'json', value_schema => 'n INT');
""")
    with pytest.raises(sluice.SluiceError) as failed:
        sluice.run(pipe, once=True)
    assert failed.value.exit_code == 1
    assert "expectation 'positive' of table 'checked' failed for 1 row(s)" in failed.value.message
    assert failed.value.command[0] == str(SLUICE)
    assert not (pipe / "data" / "tables" / "checked" / "_delta_log").exists()
    # A wrong argument is refused before anything starts, not passed on half-understood.
    with pytest.raises(TypeError, match="full_refresh"):
        sluice.run(pipe, full_refresh="checked")
    assert os.environ["SLUICE_BIN"] == str(SLUICE)
