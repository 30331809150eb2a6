#!/usr/bin/env python3
"""Writes docs/functions.md: every Spark built-in function with its status in sluice.

Inputs, all generated, none typed by hand:
  * `sluice functions` (the function registry: names, aliases, arity, family, result type,
    intended differences), from the binary at $SLUICE_BIN or build/sluice;
  * docs/functions/spark-builtins.txt: Spark's `SHOW FUNCTIONS`, written by this script with
    --refresh-spark (starts one local Spark session; committed so the doc builds without Spark);
  * docs/functions/spark-differential.json: the per-function outcome of
    tests/integration/test_spark_functions.py, written by this script with --run-tests (runs that
    module with SLUICE_FUNCTIONS_RESULTS set).

    .venv/bin/python scripts/gen-functions-doc.py [--refresh-spark] [--run-tests]
"""
import argparse
import json
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "functions"
SPARK_LIST = DATA / "spark-builtins.txt"
RESULTS = DATA / "spark-differential.json"
OUT = ROOT / "docs" / "functions.md"
SLUICE = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "build" / "sluice"))

# Bound outside the scalar registry: aggregates (exec/select_plan.cc) and CAST syntax.
AGGREGATES = {"count", "sum", "avg", "mean", "min", "max", "first", "last", "stddev", "stddev_samp",
              "approx_count_distinct", "count_if", "bool_and", "bool_or", "every", "some", "any", "any_value",
              "collect_list", "collect_set", "max_by", "min_by", "percentile_approx", "approx_percentile"}
# Where an aggregate runs, when not everywhere ("GROUP BY and windows").
AGGREGATE_WHERE = {n: "GROUP BY of materialized views (refreshed fully) and of streaming windows (the window "
                      "keeps its rows); refused over a stream without a window and without GROUP BY"
                   for n in ("collect_list", "collect_set", "max_by", "min_by", "percentile_approx",
                             "approx_percentile")}
for n in ("percentile_approx", "approx_percentile"):
    AGGREGATE_WHERE[n] = ("exact: the value at rank ceil(p * n) of the group's n values, within Spark's error "
                          "bound (n / accuracy ranks), and compared with Spark within that bound; "
                          + AGGREGATE_WHERE[n])
for n in ("collect_list", "collect_set"):
    AGGREGATE_WHERE[n] = "order unspecified, as in Spark (compared as a multiset); " + AGGREGATE_WHERE[n]
SYNTAX = {"cast": "CAST(x AS type)", "try_cast": "TRY_CAST(x AS type)"}


def refresh_spark_list():
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    from spark_support import spark_session

    names = sorted({r[0] for r in spark_session().sql("SHOW FUNCTIONS").collect()
                    if re.fullmatch(r"[a-z_][a-z0-9_]*", r[0])})
    DATA.mkdir(parents=True, exist_ok=True)
    SPARK_LIST.write_text("\n".join(names) + "\n")


def run_tests():
    env = dict(os.environ, SLUICE_FUNCTIONS_RESULTS=str(RESULTS))
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", str(ROOT / "tests" / "integration" / "test_spark_functions.py"),
                    "-k", "match_spark"], env=env, cwd=ROOT, check=False)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--refresh-spark", action="store_true", help="re-read Spark's SHOW FUNCTIONS")
    parser.add_argument("--run-tests", action="store_true", help="re-run the differential test first")
    args = parser.parse_args()
    if args.refresh_spark or not SPARK_LIST.exists():
        refresh_spark_list()
    if args.run_tests:
        run_tests()
    registry = [json.loads(line) for line in subprocess.run([str(SLUICE), "functions"], capture_output=True,
                                                            text=True, check=True).stdout.splitlines()]
    by_name = {}
    for d in registry:
        for n in [d["name"], *d["aliases"]]:
            by_name[n] = d
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    spark = SPARK_LIST.read_text().split()

    rows, counts = [], {"supported": 0, "differs": 0, "untested": 0, "missing": 0}
    for name in spark:
        d = by_name.get(name)
        tested = results.get(name) or (results.get(d["name"]) if d else None)
        if d:
            if tested and tested["status"] == "same":
                status, key = "supported", "supported"
            elif tested:
                status, key = "differs: " + "; ".join(tested["notes"]), "differs"
            else:
                status, key = "supported, not compared with Spark yet", "untested"
            arity = str(d["min_args"]) if d["min_args"] == d["max_args"] else \
                f"{d['min_args']}..{'n' if d['max_args'] < 0 else d['max_args']}"
            note = d["differs"]
            rows.append((name, status, d["family"], arity, d["returns"], note))
        elif name in AGGREGATES:
            if tested:
                key = "supported" if tested["status"] == "same" else "differs"
                status = "supported" if key == "supported" else "differs: " + "; ".join(tested["notes"])
                rows.append((name, status, "aggregate", "", "", AGGREGATE_WHERE.get(name, "GROUP BY and windows")))
            else:
                key = "untested"
                rows.append((name, "supported, not compared with Spark yet", "aggregate", "", "",
                             AGGREGATE_WHERE.get(name, "GROUP BY and windows")))
        elif name in SYNTAX:
            counts["untested"] += 1
            rows.append((name, "supported, not compared with Spark yet", "syntax", "", "", SYNTAX[name]))
            continue
        else:
            key = "missing"
            rows.append((name, "missing", "", "", "", ""))
        counts[key] += 1
    extra = sorted(n for n in by_name if n not in set(spark))

    lines = [
        "# SQL functions",
        "",
        "Generated by `scripts/gen-functions-doc.py` from sluice's function registry (`sluice functions`),",
        "Spark's `SHOW FUNCTIONS` (`docs/functions/spark-builtins.txt`) and the outcome of the differential",
        "test against Spark (`tests/integration/test_spark_functions.py`, `docs/functions/spark-differential.json`).",
        "Do not edit by hand.",
        "",
        "Semantics are Spark 4's with ANSI mode on (its default) and the session time zone UTC: integer",
        "overflow, `element_at` out of bounds and a STRING that is not a number compared with a number are",
        "errors; a STRING compared with a number is cast to BIGINT (against an integral type) or DOUBLE",
        "(against a fractional one), whitespace trimmed. *supported* means every expression of the",
        "differential test gave Spark's values and result type on inputs with NULLs, empty strings, Unicode,",
        "extremes, pre-1970 instants and daylight-saving edges.",
        "",
        f"Of Spark's {len(spark)} built-ins: {counts['supported']} supported and matching Spark, "
        f"{counts['differs']} differing, {counts['untested']} supported but not compared with Spark yet, "
        f"{counts['missing']} missing.",
        "",
        "| function | status | family | arguments | result | intended difference |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
    lines += ["", "Names sluice also accepts that Spark does not have: " + ", ".join(f"`{n}`" for n in extra) + ".", ""]
    OUT.write_text("\n".join(lines))
    print(f"{OUT}: {counts}")


if __name__ == "__main__":
    main()
