"""`pyspark` inside a sluice pipeline run: only what pipeline code uses (`pyspark.pipelines`,
`pyspark.sql.functions`, `pyspark.sql.types`, `pyspark.sql.DataFrame`); sluice runs no Spark.
The real pyspark stays importable everywhere else (this folder is on sys.path only in the
definer's process)."""
__version__ = "4.0.0+sluice"
