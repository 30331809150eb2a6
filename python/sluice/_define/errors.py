"""Errors of a pipeline's definitions, located at the .py line that made them."""
import sys

# The pipeline's .py files being run (absolute path -> index in the request), set by __main__.
PIPELINE_FILES = {}


class DefinitionError(Exception):
    """Something sluice refuses or cannot do, found while defining the pipeline. `file`/`line`
    name the pipeline .py file and line (found from the stack when not given)."""

    def __init__(self, message, file=None, line=None):
        super().__init__(message)
        self.message = message
        if file is None:
            file, line = caller_location()
        self.file = file
        self.line = line


class UnsupportedAttributeError(DefinitionError, AttributeError):
    """A name a shim module (dlt, pyspark.pipelines, ...) does not have: a located refusal when
    used, and an AttributeError, so `getattr(dlt, "x", None)` and `hasattr` answer as Python's do."""


def caller_location():
    """(index of the pipeline file, line) of the innermost frame running a pipeline file."""
    frame = sys._getframe(1)
    while frame is not None:
        index = PIPELINE_FILES.get(frame.f_code.co_filename)
        if index is not None:
            return index, frame.f_lineno
        frame = frame.f_back
    return None, None


def function_location(func):
    """(file index, line) of a decorated function: its first decorator's line."""
    code = getattr(func, "__code__", None)
    if code is not None and code.co_filename in PIPELINE_FILES:
        return PIPELINE_FILES[code.co_filename], code.co_firstlineno
    return caller_location()
