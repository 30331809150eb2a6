"""`pyspark.sql` inside a sluice pipeline run: DataFrame and Column from sluice's DataFrame
layer (sluice/_define/dataframe.py), SparkSession for `SparkSession.builder.getOrCreate()`."""
from sluice._define.spark import SparkSession  # noqa: F401


def __getattr__(name):
    if name.startswith("__"):  # the import system's own probes (__path__, __all__, ...)
        raise AttributeError(name)
    if name in ("DataFrame", "Column", "Window", "GroupedData", "Row"):
        import importlib
        for module in ("dataframe", "column", "functions"):
            try:
                found = getattr(importlib.import_module("sluice._define." + module), name, None)
            except ImportError:
                found = None
            if found is not None:
                return found
    if name in ("functions", "types"):
        import importlib
        return importlib.import_module("pyspark.sql." + name)
    from sluice._define.errors import UnsupportedAttributeError
    raise UnsupportedAttributeError("pyspark.sql.{} is not supported by sluice".format(name))
