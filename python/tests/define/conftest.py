"""Runs sluice's definer (`python3 -m sluice._define`) as the C++ loader does: a subprocess
with the request on stdin, the JSON answer on stdout. Plain pytest, no broker, no Spark:
`.venv/bin/python -m pytest python/tests/define`.

Until the DataFrame layer (sluice/_define/dataframe.py, another branch) is merged, a minimal
stand-in of its contract (_from_relation, _to_sql, isStreaming) is put into a temporary copy of
the package; tests that need more of it are skipped."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

PYTHON_ROOT = pathlib.Path(__file__).resolve().parents[2]
HAVE_DATAFRAME = (PYTHON_ROOT / "sluice" / "_define" / "dataframe.py").exists()

STAND_IN = '''
class DataFrame:
    """Test stand-in of the DataFrame contract (docs/decisions.md "(py)")."""
    def __init__(self, relation, streaming, columns):
        self._relation, self._streaming, self._columns = relation, streaming, columns

    @classmethod
    def _from_relation(cls, relation, *, streaming, columns=None):
        return cls(relation, streaming, columns)

    def _to_sql(self):
        return "SELECT * FROM " + self._relation

    @property
    def isStreaming(self):
        return self._streaming
'''


@pytest.fixture(scope="session")
def package_root(tmp_path_factory):
    """The folder holding the sluice package the definer runs from."""
    if HAVE_DATAFRAME:
        return PYTHON_ROOT
    root = tmp_path_factory.mktemp("python")
    shutil.copytree(PYTHON_ROOT / "sluice", root / "sluice",
                    ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (root / "sluice" / "_define" / "dataframe.py").write_text(STAND_IN)
    return root


class Definer:
    def __init__(self, root, folder):
        self.root, self.folder = root, folder

    def run(self, files, configuration=None, kafka_clusters=None, python=None):
        """Writes `files` (name -> source) into the folder and runs the definer over them."""
        paths = []
        for name, source in files.items():
            p = self.folder / name
            p.write_text(textwrap.dedent(source))
            paths.append(p)
        request = {"files": [{"path": str(p), "name": p.name} for p in paths],
                   "configuration": configuration or {},
                   "kafka_clusters": kafka_clusters if kafka_clusters is not None else {"default": "127.0.0.1:9092"},
                   "pipeline_dir": str(self.folder)}
        env = dict(os.environ, PYTHONPATH=str(self.root), PYTHONDONTWRITEBYTECODE="1")
        done = subprocess.run([python or sys.executable, "-m", "sluice._define"], input=json.dumps(request),
                              capture_output=True, text=True, env=env, timeout=60)
        return done.returncode, json.loads(done.stdout) if done.stdout else None, done.stderr

    def statements(self, files, **kwargs):
        code, answer, err = self.run(files, **kwargs)
        assert code == 0, (answer, err)
        return [[(s["line"], s["what"], s["sql"]) for s in f["statements"]] for f in answer["files"]]

    @staticmethod
    def binary():
        binary = pathlib.Path(os.environ.get("SLUICE_BIN") or PYTHON_ROOT.parent / "build" / "sluice")
        if not binary.exists():
            pytest.skip("needs the sluice binary (build/sluice or SLUICE_BIN)")
        return binary

    def validate(self, files, kafka_clusters=None, env=None):
        """Runs `sluice validate` (offline: no broker) over `files` in a pipeline folder: the
        generated SQL goes through the real parser, binder and planner. Returns its stdout."""
        binary = self.binary()
        clusters = kafka_clusters or {"default": "127.0.0.1:9092"}
        pipe = self.folder / "pipe"
        pipe.mkdir(exist_ok=True)
        (pipe / "pipeline.yaml").write_text("name: t\nstorage: ./data\nkafka:\n" + "".join(
            "  {}: {{bootstrap.servers: {}}}\n".format(c, json.dumps(s)) for c, s in clusters.items()))
        for name, source in files.items():
            (pipe / name).write_text(textwrap.dedent(source))
        env = dict(os.environ, SLUICE_PYTHONPATH=str(self.root), **(env or {}))
        done = subprocess.run([str(binary), "validate", str(pipe)], capture_output=True, text=True, env=env,
                              timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def error(self, files, **kwargs):
        code, answer, err = self.run(files, **kwargs)
        assert code == 1, (answer, err)
        return answer["error"]


@pytest.fixture
def definer(package_root, tmp_path):
    return Definer(package_root, tmp_path)
