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


def replace_names(text, names):
    """SQL `text` with each bare or backquoted name that is a key of `names` (lower-cased) replaced
    by `(its SQL)`: a filter's text over an aggregation's outputs becomes its HAVING over the
    aggregates. Left alone: literals, comments, a name qualified (`t.n`) or qualifying (`n.f`), and
    a function's name (`count(`)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            start = i
            i += 1
            while i < n and text[i] != c:
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append(text[start:i])
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end + 1
            out.append(text[i:end])
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(text[i:end])
            i = end
        elif c == "`" or c.isalpha() or c == "_":
            start = i
            if c == "`":
                i += 1
                word = ""
                while i < n:
                    if text[i] == "`" and text.startswith("``", i):
                        word += "`"
                        i += 2
                    elif text[i] == "`":
                        i += 1
                        break
                    else:
                        word += text[i]
                        i += 1
            else:
                while i < n and (text[i].isalnum() or text[i] == "_"):
                    i += 1
                word = text[start:i]
            before = text[:start].rstrip()
            after = text[i:].lstrip()
            qualified = before.endswith(".") or after.startswith(".")
            called = c != "`" and after.startswith("(")
            key = word.lower()
            if key in names and not qualified and not called:
                out.append("(" + names[key] + ")")
            else:
                out.append(text[start:i])
        else:
            out.append(c)
            i += 1
    return "".join(out)
