"""Writes the deletion-vector fixture of tests/unit/delta/deletion_vector_test.cc with delta-spark:
a 10-row table with delta.enableDeletionVectors, then DELETE WHERE id IN (2, 3, 7); prints the
add action's deletionVector descriptor and the bytes of the deletion vector file it names, as
the C++ test embeds them. Run: .venv/bin/python tools/make_dv_fixture.py /tmp/dv_fixture"""
import json
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests" / "integration"))
from spark_support import spark_session  # noqa: E402


def main(path):
    shutil.rmtree(path, ignore_errors=True)
    spark = spark_session()
    spark.sql(f"CREATE TABLE delta.`{path}` (id BIGINT) USING delta "
              "TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    spark.range(0, 10).coalesce(1).write.format("delta").mode("append").save(path)
    spark.sql(f"DELETE FROM delta.`{path}` WHERE id IN (2, 3, 7)")
    log = pathlib.Path(path, "_delta_log", "00000000000000000002.json").read_text()
    for line in log.splitlines():
        action = json.loads(line)
        if "add" in action:
            print(json.dumps(action["add"]["deletionVector"]))
    for f in sorted(pathlib.Path(path).glob("deletion_vector_*.bin")):
        print(f.name)
        print(f.read_bytes().hex())


if __name__ == "__main__":
    main(sys.argv[1])
