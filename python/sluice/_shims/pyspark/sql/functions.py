"""`from pyspark.sql import functions as F` inside a sluice pipeline run: the functions of
sluice's DataFrame layer (sluice/_define/functions.py), which render sluice SQL."""
from sluice._define import functions as _functions

globals().update({k: getattr(_functions, k) for k in dir(_functions) if not k.startswith("_")})


def __getattr__(name):
    if name.startswith("__"):  # the import system's own probes (__path__, __all__, ...)
        raise AttributeError(name)
    from sluice._define.errors import UnsupportedAttributeError
    raise UnsupportedAttributeError("pyspark.sql.functions.{} is not supported by sluice (see `sluice functions` for the "
                          "SQL functions it has; F.expr('...') takes SQL)".format(name))
