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
