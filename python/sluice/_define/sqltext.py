"""Rendering names and values as sluice SQL text."""
import re

_SIMPLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# sluice's reserved words (src/sluice/sql/parser_internal.h kReserved) and the words that
# start a clause of a CREATE statement: such a name is written in backquotes.
_RESERVED = {
    "ALL", "AND", "ANTI", "APPLY", "AS", "ASC", "BETWEEN", "BY", "CASE", "CLUSTER", "COLUMNS",
    "COMMENT", "CONSTRAINT", "CROSS", "DELAY", "DESC", "DISTINCT", "ELSE", "END", "EXCEPT",
    "EXISTS", "FROM", "FULL", "GROUP", "HAVING", "IGNORE", "ILIKE", "IN", "INNER", "INTERSECT",
    "IS", "JOIN", "KEYS", "LEFT", "LIKE", "LIMIT", "NATURAL", "NOT", "NULLS", "ON", "OR", "ORDER",
    "OUTER", "PARTITIONED", "REGEXP", "RIGHT", "RLIKE", "SELECT", "SEMI", "SEQUENCE", "STORED",
    "TBLPROPERTIES", "THEN", "UNION", "USING", "WATERMARK", "WHEN", "WHERE", "WITH", "LOCATION",
    "TRACK", "OPTIONS", "NULL", "TRUE", "FALSE", "INTO", "INSERT", "STREAM", "LIVE", "TABLE",
    "VIEW", "FLOW", "SINK", "CREATE", "REFRESH",
}


def ident(name):
    """A dataset, column or constraint name as SQL: bare when it is a plain word, else in
    backquotes (a backquote in it doubled)."""
    if _SIMPLE.match(name) and name.upper() not in _RESERVED:
        return name
    return "`" + name.replace("`", "``") + "`"


def string(value):
    """A string literal holding exactly `value` (sluice reads backslash escapes, as Spark)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def name_list(names):
    return ", ".join(ident(n) for n in names)


def arg_name(name):
    """A function's named-argument key (`topic`, `cluster`, `kafka.client.id`): bare when it is
    one word (a keyword is fine before `=>`), else in backquotes."""
    if _SIMPLE.match(name):
        return name
    return "`" + name.replace("`", "``") + "`"


def _words_outside_literals(text):
    """The bare words of SQL `text`, skipping string literals ('...' and "..." with backslash
    escapes), backquoted names and comments (-- to the line's end, /* ... */)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"`":
            i += 1
            while i < n and text[i] != c:
                i += 2 if text[i] == "\\" and c != "`" else 1
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c.isalpha() or c == "_":
            start = i
            while i < n and (text[i].isalnum() or text[i] == "_"):
                i += 1
            yield text[start:i]
        else:
            i += 1


def reads_a_stream(text):
    """Whether a query's SQL reads a stream: STREAM is a reserved word of sluice's SQL, so a bare
    STREAM outside literals, names and comments is its stream read (`STREAM(t)`, `STREAM t`,
    `STREAM read_kafka(...)`, `STREAM table_changes(...)`)."""
    return any(w.upper() == "STREAM" for w in _words_outside_literals(text))


def user_sql(text):
    """SQL text a user wrote, to embed in a one-line statement: a `--` comment in it would
    swallow what follows, so the text then ends with a newline."""
    return text + "\n" if "--" in text else text


# What sluice's parser reads as other than a column (src/sluice/sql/parser_expressions.cc):
# typed literals (DATE '...'), interval units after INTERVAL's amounts, a CAST's type.
_TYPED_LITERALS = {"DATE", "TIMESTAMP", "TIMESTAMP_NTZ"}
_INTERVAL_UNITS = {
    "YEAR", "YEARS", "MONTH", "MONTHS", "WEEK", "WEEKS", "DAY", "DAYS", "HOUR", "HOURS", "MINUTE", "MINUTES",
    "SECOND", "SECONDS", "MILLISECOND", "MILLISECONDS", "MICROSECOND", "MICROSECONDS"}
# The types whose name takes parameters (src/sluice/sql/types.cc): <...> after ARRAY/MAP/STRUCT,
# (...) after a DECIMAL's or a string type's name; after any other a `<` or `(` is not the type's.
_ANGLE_TYPES = {"ARRAY", "MAP", "STRUCT"}
_PAREN_TYPES = {"DECIMAL", "DEC", "NUMERIC", "STRING", "VARCHAR", "CHAR", "TEXT"}
_OPS = ("<=>", "=>", "<>", "!=", "<=", ">=", "||", "::")
_NUMBER_SUFFIXES = "LlDdFfSsYy"


def _is_word_char(c):
    return c.isalnum() or c == "_" or ord(c) >= 0x80


def _tokens(text):
    """SQL `text` as sluice's lexer splits it (src/sluice/sql/lexer.cc): a list of (kind, raw text,
    value) with kind one of space (also comments), string, quoted (a backquoted name; value is the
    name), number, word, op, param (`${...}`). The raw texts put together are `text`."""
    out, i, n = [], 0, len(text)
    while i < n:
        c, start = text[i], i
        if c.isspace():
            while i < n and text[i].isspace():
                i += 1
            out.append(("space", text[start:i], None))
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
            out.append(("space", text[start:i], None))
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(("space", text[start:i], None))
        elif c in "'\"`":
            i += 1
            value = ""
            while i < n:
                if text[i] == c and text.startswith(c + c, i):  # a doubled quote stands for itself
                    value += c
                    i += 2
                elif text[i] == c:
                    i += 1
                    break
                elif text[i] == "\\" and c != "`" and i + 1 < n:
                    value += text[i + 1]
                    i += 2
                else:
                    value += text[i]
                    i += 1
            out.append(("quoted" if c == "`" else "string", text[start:i], value))
        elif text.startswith("${", i):  # a parameter, one token to its `}`
            end = text.find("}", i)
            i = n if end < 0 else end + 1
            out.append(("param", text[start:i], None))
        elif c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            while i < n and text[i].isdigit():
                i += 1
            if i < n and text[i] == ".":
                i += 1
                while i < n and text[i].isdigit():
                    i += 1
            if i < n and text[i] in "eE":
                j = i + 1
                if j < n and text[j] in "+-":
                    j += 1
                if j < n and text[j].isdigit():
                    i = j
                    while i < n and text[i].isdigit():
                        i += 1
            if i < n and text[i] in _NUMBER_SUFFIXES and not (i + 1 < n and text[i + 1].isalnum()):
                i += 1
            out.append(("number", text[start:i], None))
        elif _is_word_char(c):
            while i < n and _is_word_char(text[i]):
                i += 1
            out.append(("word", text[start:i], text[start:i]))
        else:
            op = next((o for o in _OPS if text.startswith(o, i)), c)
            i += len(op)
            out.append(("op", op, op))
    return out


def _not_columns(tokens):
    """Indexes (into `tokens`, significant ones only) of words sluice's parser reads as something
    other than a column: a typed literal's type word, INTERVAL and its units, a CAST's (or ::'s) type,
    EXTRACT's field."""
    skip = set()
    k = len(tokens)

    def word(j, *values):
        return j < k and tokens[j][0] == "word" and (not values or tokens[j][1].upper() in values)

    def kind(j, what, value=None):
        return j < k and tokens[j][0] == what and (value is None or tokens[j][1] == value)

    def skip_type(j):
        """Marks the type that starts at j (a name, <...> and (...) parts, WITH/WITHOUT TIME ZONE);
        returns the index after it."""
        if not kind(j, "word"):
            return j
        skip.add(j)
        name = tokens[j][1].upper()
        j += 1
        if (name in _ANGLE_TYPES and kind(j, "op", "<")) or (name in _PAREN_TYPES and kind(j, "op", "(")):
            depth = 0  # ARRAY<...>, STRUCT<a: INT>, DECIMAL(10, 2)
            while j < k:
                if kind(j, "op", "<") or kind(j, "op", "("):
                    depth += 1
                elif kind(j, "op", ">") or kind(j, "op", ")"):
                    depth -= 1
                elif kind(j, "word") or kind(j, "quoted"):
                    skip.add(j)
                j += 1
                if depth == 0:
                    break
        while name.startswith("TIMESTAMP") and word(j, "WITH", "WITHOUT", "TIME", "ZONE", "LOCAL"):
            skip.add(j)
            j += 1
        return j

    casts = []  # paren depth of each CAST( open around the position
    depth = 0
    j = 0
    while j < k:
        kind_, raw, _ = tokens[j]
        if kind_ == "op" and raw == "(":
            depth += 1
        elif kind_ == "op" and raw == ")":
            if casts and casts[-1] == depth:
                casts.pop()
            depth -= 1
        elif kind_ == "op" and raw == "::":
            j = skip_type(j + 1)
            continue
        elif kind_ == "word":
            up = raw.upper()
            if up in _TYPED_LITERALS and kind(j + 1, "string"):
                skip.add(j)
            elif up in ("CAST", "TRY_CAST") and kind(j + 1, "op", "("):
                casts.append(depth + 1)
            elif up == "AS" and casts and casts[-1] == depth:
                skip.add(j)
                j = skip_type(j + 1)
                continue
            elif up == "EXTRACT" and kind(j + 1, "op", "(") and (kind(j + 2, "word") or kind(j + 2, "string")):
                skip.update((j, j + 2))
                j += 3
                continue
            elif up == "INTERVAL":
                skip.add(j)
                j += 1
                if kind(j, "string") and not word(j + 1, *_INTERVAL_UNITS):
                    j += 1
                    continue
                while True:  # amount unit [amount unit ...], as Parser::interval reads them
                    if kind(j, "op", "-") and kind(j + 1, "number"):
                        j += 1
                    if not (kind(j, "number") or kind(j, "string")) or not word(j + 1, *_INTERVAL_UNITS):
                        break
                    skip.add(j + 1)
                    j += 2
                    if not (kind(j, "number") or (kind(j, "string") and word(j + 1, *_INTERVAL_UNITS))):
                        break
                continue
        j += 1
    return skip


def replace_names(text, names):
    """SQL `text` with each column reference to a key of `names` (lower-cased; bare or backquoted)
    replaced by `(its SQL)`: a filter's text over an aggregation's outputs becomes its HAVING over
    the aggregates. The text is split as sluice's lexer splits it and only what its parser reads as
    a column is replaced: not literals, comments or parameters (`${n}`), not a name qualified (`t.n`)
    or qualifying (`n.f`), a JSON path's field (`p:n`), a function's name (`count(`) or a named
    argument (`n =>`), nor a word that is part of
    a typed literal (`DATE '2024-01-01'`), an interval (`INTERVAL 1 HOUR`), a CAST's type or
    EXTRACT's field, whatever outputs are named so."""
    tokens = _tokens(text)
    significant = [t for t in tokens if t[0] != "space"]
    skip = _not_columns(significant)
    out, j = [], 0
    for t in tokens:
        if t[0] == "space":
            out.append(t[1])
            continue
        before = significant[j - 1] if j > 0 else None
        after = significant[j + 1] if j + 1 < len(significant) else None
        replace = False
        if t[0] in ("word", "quoted") and j not in skip and t[2].lower() in names:
            qualified = (before is not None and before[1] == ".") or (after is not None and after[1] == ".")
            called = t[0] == "word" and after is not None and after[1] == "("
            named_arg = after is not None and after[1] == "=>"
            json_field = before is not None and before[0] == "op" and before[1] == ":"  # p:n reads field n of p
            replace = not (qualified or called or named_arg or json_field)
        out.append("(" + names[t[2].lower()] + ")" if replace else t[1])
        j += 1
    return "".join(out)
