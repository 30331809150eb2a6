"""`pyspark.sql.window` inside a sluice pipeline run (from the DataFrame layer when it has it)."""
from pyspark.sql import functions as _F


def __getattr__(name):
    if name.startswith("__"):  # the import system's own probes (__path__, __all__, ...)
        raise AttributeError(name)
    if name == "Window" and hasattr(_F, "Window"):
        return _F.Window
    from sluice._define.errors import UnsupportedAttributeError
    raise UnsupportedAttributeError("pyspark.sql.window.{} is not supported by sluice".format(name))
