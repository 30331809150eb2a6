"""The SQL the DataFrame layer renders is sluice SQL: `sluice validate` (offline, no broker) plans
a pipeline holding it, with the column names and types the programs promise."""
import os
import pathlib
import subprocess
from decimal import Decimal

from sluice._define import functions as F
from sluice._define.dataframe import DataFrame

SLUICE = pathlib.Path(os.environ.get("SLUICE_BIN", pathlib.Path(__file__).resolve().parents[3] / "build" / "sluice"))


def kafka(topic):
    return DataFrame._from_relation(f"STREAM read_kafka(topic => '{topic}')", streaming=True,
                                    columns=["key", "value", "topic", "partition", "offset", "timestamp",
                                             "timestampType", "headers"])


def stream(name):
    return DataFrame._from_relation(f"STREAM({name})", streaming=True)


def programs():
    events = (kafka("events").select(F.from_json(F.col("value").cast("string"),
                                                 "user_id STRING, kind STRING, ts TIMESTAMP, amount DOUBLE").alias("e"),
                                     "offset")
              .select("e.*", "offset").withColumn("day", F.to_date("ts")).filter(F.col("user_id").isNotNull()))
    clicks = stream("events").withWatermark("ts", "1 minute")
    buys = stream("buys").withWatermark("ts", "1 minute")
    users = DataFrame._from_relation("users", streaming=False)
    spend = DataFrame._from_relation("events", streaming=False).select("user_id", "amount")
    known_users = DataFrame._from_relation("users", streaming=False, columns=["user_id", "last_seen", "n"])
    return [
        ("STREAMING TABLE", "events", events),
        ("STREAMING TABLE", "buys", kafka("buys").select(F.from_json(F.col("value").cast("string"),
                                                                      "user_id STRING, ts TIMESTAMP").alias("b"))
         .select("b.user_id", "b.ts")),
        ("MATERIALIZED VIEW", "users", DataFrame._from_relation("events", streaming=False).groupBy("user_id")
         .agg(F.max("ts").alias("last_seen"), F.count("*").alias("n"))),
        ("STREAMING TABLE", "per_window", stream("events").withWatermark("ts", "10 minutes")
         .groupBy("kind", F.window("ts", "5 minutes", "1 minute")).agg(F.approx_count_distinct("user_id").alias("users"))
         .select("kind", "window.start", "users")),
        ("STREAMING TABLE", "sessions", stream("events").withWatermark("ts", "10 minutes")
         .groupBy("user_id", F.session_window("ts", "5 minutes")).agg(F.sum("amount").alias("spent"))),
        ("STREAMING TABLE", "first_per_user", stream("events").withWatermark("ts", "10 minutes")
         .dropDuplicatesWithinWatermark(["user_id"])),
        ("STREAMING TABLE", "matched", clicks.join(buys, (clicks.user_id == buys.user_id) &
                                                   buys.ts.between(clicks.ts, clicks.ts + F.expr("INTERVAL 10 MINUTES")),
                                                   "left").select(clicks.user_id, clicks.ts.alias("click_ts"),
                                                                  buys.ts.alias("buy_ts"))),
        ("STREAMING TABLE", "enriched", stream("events").join(F.broadcast(users), "user_id", "left")
         .withColumn("big", F.col("amount") > 100)),
        # Review fixes: field names that are type words, a Decimal literal, a dotted column name carried
        # through another withColumn, one join side's column dropped, an expr alias composed.
        ("STREAMING TABLE", "typed", kafka("typed").select(F.from_json(F.col("value").cast("string"),
                                                                       "date STRING, long DOUBLE").alias("j"))
         .select("j.*")),
        ("MATERIALIZED VIEW", "priced", spend.join(known_users, spend.user_id == known_users.user_id)
         .drop(known_users.user_id).withColumn("price.eur", F.lit(Decimal("19.99"))).withColumn("one", F.lit(1))
         .selectExpr("user_id", "amount + 1 AS a1", "`price.eur`", "n").select("user_id", (F.col("a1") * 10).alias("a10"),
                                                                            "`price.eur`", "n")),
        # Outputs named like SQL keywords in a SQL-text filter after agg (its HAVING, st).
        ("MATERIALIZED VIEW", "keyword_outputs", DataFrame._from_relation("events", streaming=False).groupBy("kind")
         .agg(F.max("day").alias("date"), F.count("*").alias("hour"), F.sum("amount").alias("interval"))
         .filter("date > DATE '2024-01-01' - INTERVAL 1 DAY AND hour > 1 AND `interval` > 0 AND kind <> 'date hour' "
                 "AND date < CAST('2030-01-01' AS DATE) AND date + INTERVAL 1 HOUR 30 MINUTES > date")),
    ]


def test_rendered_sql_plans_in_sluice(tmp_path):
    (tmp_path / "pipeline.yaml").write_text("name: df_validate\nstorage: ./data\n"
                                            "kafka:\n  default: {bootstrap.servers: '127.0.0.1:1'}\n")
    sql = "".join(f"CREATE OR REFRESH {kind} {name} AS {df._to_sql()};\n" for kind, name, df in programs())
    (tmp_path / "datasets.sql").write_text(sql)
    result = subprocess.run([str(SLUICE), "validate", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr + sql
    out = result.stdout
    assert "user_id STRING, kind STRING, ts TIMESTAMP, amount DOUBLE, offset BIGINT, day DATE" in out
    assert "kind STRING, start TIMESTAMP, users BIGINT" in out
    assert "user_id STRING, click_ts TIMESTAMP, buy_ts TIMESTAMP" in out
    assert "user_id STRING, kind STRING, ts TIMESTAMP, amount DOUBLE, offset BIGINT, day DATE, last_seen TIMESTAMP, " \
           "n BIGINT, big BOOLEAN" in out
    assert "typed (streaming table) <- kafka:typed (stream)\n      date STRING, long DOUBLE\n" in out
    assert "user_id STRING, a10 DOUBLE, price.eur DECIMAL(4,2), n BIGINT\n" in out
    assert "kind STRING, date DATE, hour BIGINT, interval DOUBLE\n" in out
