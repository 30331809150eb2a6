"""What a pipeline's Python files declared, in declaration order: each entry becomes one SQL
statement, built once every file has run (a dataset's function is called then, as DLT calls
it when it resolves the graph)."""


class Entry:
    def __init__(self, file, line, what, build):
        self.file = file    # index of the pipeline .py file
        self.line = line    # line of the decorator or call
        self.what = what    # "@dlt.table events_silver", for errors
        self.build = build  # () -> SQL text


class Registry:
    def __init__(self):
        self.entries = []
        self.names = {}  # dataset or sink name -> kind word, for errors and flows' targets

    def add(self, file, line, what, build):
        self.entries.append(Entry(file, line, what, build))


REGISTRY = Registry()
