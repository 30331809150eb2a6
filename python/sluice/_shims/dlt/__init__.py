"""`import dlt` inside a sluice pipeline run (the definer puts sluice/_shims first on sys.path
for its own process only): DLT's Python API, mapped onto sluice's SQL (sluice/_define/api.py)."""
from sluice._define.api import (  # noqa: F401
    append_flow,
    apply_changes,
    create_auto_cdc_flow,
    create_sink,
    create_streaming_table,
    expect,
    expect_all,
    expect_all_or_drop,
    expect_all_or_fail,
    expect_or_drop,
    expect_or_fail,
    read,
    read_stream,
    table,
    view,
)


def create_target_table(*args, **kwargs):
    """DLT's deprecated name of create_streaming_table."""
    return create_streaming_table(*args, _api="dlt.create_target_table", **kwargs)


def apply_changes_from_snapshot(*args, **kwargs):
    from sluice._define.errors import UnsupportedAttributeError
    raise UnsupportedAttributeError("dlt.apply_changes_from_snapshot is not supported: sluice's CDC flows read a change "
                          "stream (dlt.apply_changes / dlt.create_auto_cdc_flow)")


create_auto_cdc_from_snapshot_flow = apply_changes_from_snapshot


def __getattr__(name):
    if name.startswith("__"):  # the import system's own probes (__path__, __all__, ...)
        raise AttributeError(name)
    from sluice._define.errors import UnsupportedAttributeError
    raise UnsupportedAttributeError("dlt.{} is not supported by sluice".format(name))
