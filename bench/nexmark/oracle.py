"""Independent oracle for the Nexmark queries: DuckDB over the generated JSON lines (the very
bytes produced to Kafka), with the queries written again in DuckDB SQL from the Nexmark
definitions, plus the one piece of streaming semantics a triggered run has: a window is emitted
only once the watermark (the highest event time read minus the 4-second delay) reaches its end.
The topic has one partition (see nexmark_bench.py), so events arrive in event-time order and no
row is late.
"""
import duckdb

DELAY_US = 4_000_000
TUMBLE_US = 10_000_000
HOP_US = 2_000_000

_SCHEMA = """{
  'event_type': 'INTEGER',
  'person': 'STRUCT(id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR, city VARCHAR, state VARCHAR, dateTime VARCHAR, extra VARCHAR)',
  'auction': 'STRUCT(id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT, reserve BIGINT, dateTime VARCHAR, expires VARCHAR, seller BIGINT, category BIGINT, extra VARCHAR)',
  'bid': 'STRUCT(auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, dateTime VARCHAR, extra VARCHAR)'
}"""


def _us(col):
    return f"epoch_us(strptime({col}, '%Y-%m-%dT%H:%M:%S.%gZ'))"


def connect(events_path):
    """A DuckDB connection with the tables person, auction, bid (times as epoch microseconds)."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE TABLE ev AS SELECT * FROM read_ndjson('{events_path}', columns = {_SCHEMA})")
    con.execute(f"""CREATE TABLE person AS SELECT p.id, p.name, p.emailAddress, p.creditCard, p.city, p.state,
                      {_us('p.dateTime')} AS ts, p.extra FROM (SELECT person AS p FROM ev WHERE event_type = 0)""")
    con.execute(f"""CREATE TABLE auction AS SELECT a.id, a.itemName, a.description, a.initialBid, a.reserve,
                      {_us('a.dateTime')} AS ts, {_us('a.expires')} AS expires, a.seller, a.category, a.extra
                    FROM (SELECT auction AS a FROM ev WHERE event_type = 1)""")
    con.execute(f"""CREATE TABLE bid AS SELECT b.auction, b.bidder, b.price, b.channel, b.url,
                      {_us('b.dateTime')} AS ts, b.extra FROM (SELECT bid AS b FROM ev WHERE event_type = 2)""")
    con.execute("DROP TABLE ev")
    return con


def _wm(table):
    return f"((SELECT max(ts) FROM {table}) - {DELAY_US})"


# Each query: the expected rows, with timestamps as epoch microseconds and doubles rounded.
QUERIES = {
    "q0": "SELECT auction, bidder, price, channel, url, ts AS dateTime, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908 * price AS price, ts AS dateTime, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q3": """SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P ON A.seller = P.id
             WHERE A.category = 10 AND P.state IN ('OR', 'ID', 'CA')""",
    "q4": """SELECT category, avg(final) AS avg_final FROM (
               SELECT A.id, A.category, max(B.price) AS final FROM auction A JOIN bid B ON A.id = B.auction
               WHERE B.ts BETWEEN A.ts AND A.expires GROUP BY A.id, A.category) GROUP BY category""",
    # Sliding windows [s, s + 10 s) every 2 s, those whose end the watermark reached.
    "q5": f"""WITH w AS (
                SELECT auction, s AS starttime FROM (
                  SELECT auction, unnest(generate_series(ts - ts % {HOP_US} - {TUMBLE_US - HOP_US},
                                                         ts - ts % {HOP_US}, {HOP_US})) AS s FROM bid)
                WHERE s + {TUMBLE_US} <= {_wm('bid')}),
              c AS (SELECT auction, starttime, count(*) AS num FROM w GROUP BY auction, starttime)
              SELECT c.auction, c.num, c.starttime FROM c
              JOIN (SELECT starttime, max(num) AS maxn FROM c GROUP BY starttime) m USING (starttime)
              WHERE c.num >= m.maxn""",
    "q7": f"""WITH m AS (
                SELECT ts - ts % {TUMBLE_US} + {TUMBLE_US} AS window_end, max(price) AS maxprice FROM bid
                GROUP BY window_end HAVING window_end <= {_wm('bid')})
              SELECT B.auction, B.bidder, B.price, B.ts AS dateTime, B.extra FROM bid B JOIN m
                ON B.price = m.maxprice AND B.ts BETWEEN m.window_end - {TUMBLE_US} AND m.window_end""",
    "q8": f"""WITH p AS (
                SELECT DISTINCT id, name, ts - ts % {TUMBLE_US} AS starttime FROM person
                WHERE ts - ts % {TUMBLE_US} + {TUMBLE_US} <= {_wm('person')}),
              a AS (
                SELECT DISTINCT seller, ts - ts % {TUMBLE_US} AS starttime FROM auction
                WHERE ts - ts % {TUMBLE_US} + {TUMBLE_US} <= {_wm('auction')})
              SELECT p.id, p.name, p.starttime FROM p JOIN a ON p.id = a.seller AND p.starttime = a.starttime""",
}


def compare(con, query, actual):
    """(expected rows, actual rows, rows only in expected, rows only in actual) for a pyarrow
    table `actual` (sluice's output), as multisets."""
    import pyarrow as pa
    import pyarrow.compute as pc
    cols, exact = {}, []
    for name, col in zip(actual.column_names, actual.columns):
        if pa.types.is_timestamp(col.type):
            col = pc.cast(pc.cast(col, pa.timestamp("us", tz="UTC")), pa.int64())
        cols[name] = col
        # Doubles (and decimals) are compared as DECIMAL(38, 6) after rounding on both sides.
        rounded = pa.types.is_floating(col.type) or pa.types.is_decimal(col.type)
        exact.append(rounded)
    con.register("actual_raw", pa.table(cols))
    con.execute(f"CREATE OR REPLACE TEMP TABLE expected_raw AS {QUERIES[query]}")

    def select(table):
        names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
        if len(names) != len(exact):
            raise ValueError(f"{query}: sluice's table has {len(exact)} columns, the oracle {len(names)}")
        return ", ".join(f'round("{n}"::DOUBLE, 6)::DECIMAL(38, 6)' if r else f'"{n}"' for n, r in zip(names, exact))

    con.execute(f"CREATE OR REPLACE TEMP TABLE actual_rows AS SELECT {select('actual_raw')} FROM actual_raw")
    con.execute(f"CREATE OR REPLACE TEMP TABLE expected_rows AS SELECT {select('expected_raw')} FROM expected_raw")
    con.unregister("actual_raw")
    n_exp = con.execute("SELECT count(*) FROM expected_rows").fetchone()[0]
    n_act = con.execute("SELECT count(*) FROM actual_rows").fetchone()[0]
    missing = con.execute("SELECT count(*) FROM (SELECT * FROM expected_rows EXCEPT ALL SELECT * FROM actual_rows)").fetchone()[0]
    extra = con.execute("SELECT count(*) FROM (SELECT * FROM actual_rows EXCEPT ALL SELECT * FROM expected_rows)").fetchone()[0]
    return n_exp, n_act, missing, extra
