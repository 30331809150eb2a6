"""`pyspark.sql` inside a sluice pipeline run: DataFrame and Column from sluice's DataFrame
layer (sluice/_define/dataframe.py), SparkSession for `SparkSession.builder.getOrCreate()`."""
from sluice._define.spark import SparkSession  # noqa: F401


def __getattr__(name):
    if name in ("DataFrame", "Column", "Window", "GroupedData"):
        from sluice._define import dataframe
        try:
            return getattr(dataframe, name)
        except AttributeError:
            pass
        if name in ("Column", "Window"):
            from sluice._define import functions
            if hasattr(functions, name):
                return getattr(functions, name)
    if name in ("functions", "types"):
        import importlib
        return importlib.import_module("pyspark.sql." + name)
    from sluice._define.errors import DefinitionError
    raise DefinitionError("pyspark.sql.{} is not supported by sluice".format(name))
