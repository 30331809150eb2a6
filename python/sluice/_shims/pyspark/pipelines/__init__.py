"""`from pyspark import pipelines as dp` inside a sluice pipeline run: Spark Declarative
Pipelines' API, where it differs from DLT's only in names (sluice/_define/api.py)."""
from sluice._define import api as _api
from sluice._define.api import expect, expect_all, expect_all_or_drop, expect_all_or_fail, expect_or_drop, expect_or_fail  # noqa: F401


def table(query_function=None, **kwargs):
    return _api.table(query_function, _api="@dp.table", **kwargs)


def materialized_view(query_function=None, **kwargs):
    return _api.table(query_function, _api="@dp.materialized_view", _kind="materialized_view", **kwargs)


def temporary_view(query_function=None, **kwargs):
    return _api.view(query_function, _api="@dp.temporary_view", **kwargs)


def append_flow(target, **kwargs):
    return _api.append_flow(target, _api="@dp.append_flow", **kwargs)


def create_streaming_table(name, **kwargs):
    return _api.create_streaming_table(name, _api="dp.create_streaming_table", **kwargs)


def create_sink(name, format, options=None):
    return _api.create_sink(name, format, options, _api="dp.create_sink")


def create_auto_cdc_flow(*args, **kwargs):
    return _api.create_auto_cdc_flow(*args, _api="dp.create_auto_cdc_flow", **kwargs)


def __getattr__(name):
    if name.startswith("__"):  # the import system's own probes (__path__, __all__, ...)
        raise AttributeError(name)
    from sluice._define.errors import UnsupportedAttributeError
    raise UnsupportedAttributeError("pyspark.pipelines.{} is not supported by sluice".format(name))
