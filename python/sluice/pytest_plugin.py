"""pytest plugin: `pytest --sluice <dir>` collects every `sluice test` case under <dir> as a test.

Each case of <pipeline>/tests/*.yaml is one pytest item, run through the sluice binary (found
by sluice.testing.find_binary); a failing case shows the binary's diff of expected and actual
rows. Enable it with `-p sluice.pytest_plugin` (the installed package registers it as a
pytest11 entry point).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice import testing


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sluice", "sluice pipeline tests")
    group.addoption(
        "--sluice",
        action="append",
        default=[],
        metavar="DIR",
        help="collect the `sluice test` cases of this pipeline folder (or folder of pipelines); repeatable",
    )


def _roots(config: pytest.Config) -> list[Path]:
    return [Path(d).resolve() for d in config.getoption("sluice")]


def pytest_configure(config: pytest.Config) -> None:
    roots = _roots(config)
    for root in roots:
        if not root.is_dir():
            raise pytest.UsageError(f"--sluice {root}: not a folder")
    # `pytest --sluice dir` alone collects the pipelines, not the current folder's tests.
    if roots and not config.option.file_or_dir:
        config.args = [str(r) for r in roots]


def _pipeline_of(file_path: Path) -> Path | None:
    tests = file_path.parent
    if tests.name != "tests" or not (tests.parent / "pipeline.yaml").is_file():
        return None
    return tests.parent


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    pipeline = _pipeline_of(file_path)
    if pipeline is None:
        return None
    roots = _roots(parent.config)
    resolved = file_path.resolve()
    if not any(resolved.is_relative_to(r) for r in roots):
        return None
    return SluiceFixtureFile.from_parent(parent, path=file_path, pipeline=pipeline)


class SluiceFixtureFile(pytest.File):
    def __init__(self, *, pipeline: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.pipeline = pipeline

    def collect(self):
        prefix = f"tests/{self.path.name}::"
        try:
            ids = testing.list_cases(self.pipeline)
        except testing.SluiceFixtureError as e:
            raise self.CollectError(str(e)) from None
        for case_id in ids:
            if case_id.startswith(prefix):
                yield SluiceCase.from_parent(self, name=case_id[len(prefix):], case_id=case_id)


class SluiceCaseFailed(Exception):
    pass


class SluiceCase(pytest.Item):
    def __init__(self, *, case_id: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case_id = case_id

    def runtest(self) -> None:
        outcome = testing.run_case(self.parent.pipeline, self.case_id)
        if not outcome.passed:
            raise SluiceCaseFailed(outcome.output)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (SluiceCaseFailed, testing.SluiceFixtureError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"sluice case {self.case_id}"
