"""The definer: runs a pipeline's Python files (DLT's `dlt` API, Spark's `pyspark.pipelines`)
and turns the datasets they declare into SQL in sluice's dialect, which the C++ loader feeds to
the same parser, binder and planner as .sql files. Python only defines the graph; it never
sees a record. Standard library only: it runs under whatever python3 the user has."""
