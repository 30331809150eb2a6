"""pyspark.sql.types as a pipeline sees them: DataType classes whose simpleString() is Spark's and
whose _ddl() is the type in sluice's SQL (from_json schemas, CAST, declared table schemas)."""
from __future__ import annotations

import re

__all__ = [
    "DataType", "NullType", "StringType", "BinaryType", "BooleanType", "DateType", "TimestampType",
    "TimestampNTZType", "DecimalType", "DoubleType", "FloatType", "ByteType", "ShortType",
    "IntegerType", "LongType", "ArrayType", "MapType", "StructField", "StructType", "type_ddl",
]

_SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def quote_identifier(name: str) -> str:
    """A column or field name as sluice's SQL reads it: bare when it is a plain identifier and
    not a reserved word, else in backquotes (a backquote inside doubled)."""
    if _SIMPLE_NAME.match(name) and name.upper() not in RESERVED:
        return name
    return "`" + name.replace("`", "``") + "`"


# sluice's reserved words (src/sluice/sql/parser_internal.h kReserved) and the literals a bare
# name would be read as.
RESERVED = frozenset("""ALL AND ANTI APPLY AS ASC BETWEEN BY CASE CLUSTER COLUMNS COMMENT CONSTRAINT
CROSS DELAY DESC DISTINCT ELSE END EXCEPT EXISTS FROM FULL GROUP HAVING IGNORE ILIKE IN INNER
INTERSECT IS JOIN KEYS LEFT LIKE LIMIT NATURAL NOT NULLS ON OR ORDER OUTER PARTITIONED REGEXP RIGHT
RLIKE SELECT SEMI SEQUENCE STORED TBLPROPERTIES THEN UNION USING WATERMARK WHEN WHERE WITH LOCATION
TRACK NULL TRUE FALSE INTERVAL CAST TRY_CAST STREAM DATE TIMESTAMP TIMESTAMP_NTZ""".split())


class DataType:
    """Base of the type classes; equal when their simple strings are."""

    def simpleString(self) -> str:  # noqa: N802 (Spark's name)
        return self.typeName()

    @classmethod
    def typeName(cls) -> str:  # noqa: N802
        return cls.__name__[:-4].lower()

    def _ddl(self) -> str:
        return self.simpleString().upper()

    def __eq__(self, other):
        return isinstance(other, DataType) and self.simpleString() == other.simpleString()

    def __hash__(self):
        return hash(self.simpleString())

    def __repr__(self):
        return f"{type(self).__name__}()"


class NullType(DataType):
    def simpleString(self):
        return "void"

    def _ddl(self):
        raise TypeError("NullType has no column type in sluice's SQL (Delta has no void columns)")


class StringType(DataType):
    pass


class BinaryType(DataType):
    pass


class BooleanType(DataType):
    pass


class DateType(DataType):
    pass


class TimestampType(DataType):
    pass


class TimestampNTZType(DataType):
    def simpleString(self):
        return "timestamp_ntz"


class DoubleType(DataType):
    pass


class FloatType(DataType):
    pass


class ByteType(DataType):
    def simpleString(self):
        return "tinyint"


class ShortType(DataType):
    def simpleString(self):
        return "smallint"


class IntegerType(DataType):
    def simpleString(self):
        return "int"


class LongType(DataType):
    def simpleString(self):
        return "bigint"


class DecimalType(DataType):
    def __init__(self, precision: int = 10, scale: int = 0):
        self.precision, self.scale = precision, scale

    def simpleString(self):
        return f"decimal({self.precision},{self.scale})"

    def __repr__(self):
        return f"DecimalType({self.precision}, {self.scale})"


class ArrayType(DataType):
    def __init__(self, elementType: DataType, containsNull: bool = True):  # noqa: N803
        self.elementType, self.containsNull = elementType, containsNull

    def simpleString(self):
        return f"array<{self.elementType.simpleString()}>"

    def _ddl(self):
        return f"ARRAY<{self.elementType._ddl()}>"

    def __repr__(self):
        return f"ArrayType({self.elementType!r}, {self.containsNull})"


class MapType(DataType):
    def __init__(self, keyType: DataType, valueType: DataType, valueContainsNull: bool = True):  # noqa: N803
        self.keyType, self.valueType, self.valueContainsNull = keyType, valueType, valueContainsNull

    def simpleString(self):
        return f"map<{self.keyType.simpleString()},{self.valueType.simpleString()}>"

    def _ddl(self):
        return f"MAP<{self.keyType._ddl()}, {self.valueType._ddl()}>"

    def __repr__(self):
        return f"MapType({self.keyType!r}, {self.valueType!r}, {self.valueContainsNull})"


class StructField:
    def __init__(self, name: str, dataType: DataType, nullable: bool = True, metadata: dict | None = None):  # noqa: N803
        if not isinstance(name, str) or not name:
            raise TypeError(f"StructField needs a non-empty name, not {name!r}")
        if not isinstance(dataType, DataType):
            raise TypeError(f"StructField {name!r} needs a DataType, not {dataType!r}")
        self.name, self.dataType, self.nullable, self.metadata = name, dataType, nullable, metadata or {}

    def simpleString(self):
        return f"{self.name}:{self.dataType.simpleString()}"

    def _ddl(self, separator=" "):
        not_null = "" if self.nullable else " NOT NULL"
        return f"{quote_identifier(self.name)}{separator}{self.dataType._ddl()}{not_null}"

    def __eq__(self, other):
        return isinstance(other, StructField) and (self.name, self.dataType, self.nullable) == (
            other.name, other.dataType, other.nullable)

    def __hash__(self):
        return hash((self.name, self.dataType, self.nullable))

    def __repr__(self):
        return f"StructField({self.name!r}, {self.dataType!r}, {self.nullable})"


class StructType(DataType):
    def __init__(self, fields: list[StructField] | None = None):
        self.fields = list(fields or [])
        for f in self.fields:
            if not isinstance(f, StructField):
                raise TypeError(f"StructType takes StructFields, not {f!r}")

    def add(self, field, data_type=None, nullable=True, metadata=None):
        """add(StructField) or add(name, DataType | type string, nullable)."""
        if isinstance(field, StructField):
            self.fields.append(field)
        else:
            if isinstance(data_type, str):
                data_type = parse_type(data_type)
            self.fields.append(StructField(field, data_type, nullable, metadata))
        return self

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def fieldNames(self) -> list[str]:  # noqa: N802
        return self.names

    def __iter__(self):
        return iter(self.fields)

    def __len__(self):
        return len(self.fields)

    def __getitem__(self, key):
        if isinstance(key, str):
            for f in self.fields:
                if f.name == key:
                    return f
            raise KeyError(f"no field {key!r} in {self.simpleString()}")
        return self.fields[key]

    def simpleString(self):
        return "struct<" + ",".join(f.simpleString() for f in self.fields) + ">"

    def _ddl(self):
        return "STRUCT<" + ", ".join(f._ddl(": ") for f in self.fields) + ">"

    def _schema_ddl(self) -> str:
        """The column list form: `a INT, b STRING` (from_json's schema, a table's schema)."""
        return ", ".join(f._ddl() for f in self.fields)

    def __repr__(self):
        return f"StructType({self.fields!r})"


# Spark's type names (simpleString, DDL and the Python-side aliases) -> sluice's SQL type.
_TYPE_NAMES = {
    "string": "STRING", "varchar": "STRING", "char": "STRING", "binary": "BINARY",
    "boolean": "BOOLEAN", "bool": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
    "timestamp_ltz": "TIMESTAMP", "timestamp_ntz": "TIMESTAMP_NTZ", "double": "DOUBLE",
    "float": "FLOAT", "real": "FLOAT", "tinyint": "TINYINT", "byte": "TINYINT",
    "smallint": "SMALLINT", "short": "SMALLINT", "int": "INT", "integer": "INT",
    "bigint": "BIGINT", "long": "BIGINT", "decimal": "DECIMAL", "dec": "DECIMAL", "numeric": "DECIMAL",
    "array": "ARRAY", "map": "MAP", "struct": "STRUCT",
}


def type_ddl(data_type) -> str:
    """A DataType or a Spark type string (`int`, `decimal(10,2)`, `array<string>`,
    `struct<a:int>`) as sluice's SQL spells the type."""
    if isinstance(data_type, DataType):
        return data_type._ddl()
    if not isinstance(data_type, str):
        raise TypeError(f"a type is a DataType or a type string, not {data_type!r}")
    return _ddl_of_text(data_type)


def _ddl_of_text(text: str) -> str:
    """A Spark type string, or a schema's `name type, ...` list (from_json), in sluice's SQL: only
    the type part of each `name type` pair is translated (a field may be called `date` or `long`),
    at any depth of STRUCT<...>, ARRAY<...> and MAP<...>; names are quoted as sluice reads them."""
    tokens = _TypeTokens(text)
    if tokens.done():
        raise TypeError("an empty type string")
    start = tokens.i
    try:
        ddl = _read_type(tokens)
        if tokens.done():
            return ddl
    except TypeError:
        pass
    tokens.i = start  # not one type: a field list
    fields = _read_fields(tokens, closing=None)
    if not tokens.done():
        tokens.fail("a ',' between fields")
    return fields


class _TypeTokens:
    _TOKEN = re.compile(r"\s*(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z0-9_]*|-?\d+|'(?:[^'\\]|\\.)*'|\S)")

    def __init__(self, text):
        self.text = text
        self.items = []
        pos = 0
        while True:
            m = self._TOKEN.match(text, pos)
            if not m:
                if text[pos:].strip():
                    raise TypeError(f"type string {text!r}: cannot read {text[pos:]!r}")
                break
            self.items.append(m.group(1))
            pos = m.end()
        self.i = 0

    def done(self):
        return self.i >= len(self.items)

    def peek(self):
        return self.items[self.i] if self.i < len(self.items) else ""

    def take(self):
        token = self.peek()
        self.i += 1
        return token

    def expect(self, token):
        if self.peek() != token:
            self.fail(f"'{token}'")
        self.i += 1

    def fail(self, wanted):
        got = self.peek() or "the end"
        raise TypeError(f"type string {self.text!r}: expected {wanted}, found {got!r}")


def _read_name(tokens):
    token = tokens.take()
    if token.startswith("`"):
        return token[1:-1].replace("``", "`")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token):
        tokens.i -= 1
        tokens.fail("a field name")
    return token


def _read_type(tokens):
    word = tokens.take()
    kind = _TYPE_NAMES.get(word.lower())
    if kind is None:
        tokens.i -= 1
        tokens.fail("a type name")
    if kind == "ARRAY":
        tokens.expect("<")
        element = _read_type(tokens)
        tokens.expect(">")
        return f"ARRAY<{element}>"
    if kind == "MAP":
        tokens.expect("<")
        key = _read_type(tokens)
        tokens.expect(",")
        value = _read_type(tokens)
        tokens.expect(">")
        return f"MAP<{key}, {value}>"
    if kind == "STRUCT":
        tokens.expect("<")
        if tokens.peek() == ">":
            tokens.take()
            return "STRUCT<>"
        fields = _read_fields(tokens, closing=">")
        tokens.expect(">")
        return f"STRUCT<{fields}>"
    if kind == "DECIMAL" and tokens.peek() == "(":
        tokens.take()
        precision = tokens.take()
        scale = "0"
        if tokens.peek() == ",":
            tokens.take()
            scale = tokens.take()
        tokens.expect(")")
        if not (precision.isdigit() and scale.isdigit()):
            raise TypeError(f"type string {tokens.text!r}: DECIMAL(precision, scale) takes two numbers")
        return f"DECIMAL({precision},{scale})"
    if kind == "STRING" and word.lower() in ("varchar", "char") and tokens.peek() == "(":
        tokens.take()
        tokens.take()
        tokens.expect(")")
    return kind


def _read_fields(tokens, closing):
    """`name type` or `name: type` pairs (NOT NULL, COMMENT '...'), comma separated, until `closing`
    (None: the end). Inside STRUCT<...> written `name: TYPE` as StructType._ddl does."""
    out = []
    while True:
        name = _read_name(tokens)
        if tokens.peek() == ":":
            tokens.take()
        ddl = quote_identifier(name) + (": " if closing else " ") + _read_type(tokens)
        if tokens.peek().upper() == "NOT":
            tokens.take()
            if tokens.take().upper() != "NULL":
                tokens.i -= 1
                tokens.fail("NULL after NOT")
            ddl += " NOT NULL"
        if tokens.peek().upper() == "COMMENT":
            tokens.take()
            comment = tokens.take()
            if not comment.startswith("'"):
                tokens.i -= 1
                tokens.fail("a quoted comment")
            ddl += " COMMENT " + comment
        out.append(ddl)
        if tokens.peek() != ",":
            break
        tokens.take()
    if closing is not None and tokens.peek() != closing:
        tokens.fail(f"',' or '{closing}'")
    return ", ".join(out)


def parse_type(text: str) -> DataType:
    """The DataType of a simple Spark type string (no nested types)."""
    t = text.strip().lower()
    m = re.fullmatch(r"decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", t)
    if m:
        return DecimalType(int(m.group(1)), int(m.group(2)))
    simple = {"string": StringType, "binary": BinaryType, "boolean": BooleanType, "date": DateType,
              "timestamp": TimestampType, "timestamp_ntz": TimestampNTZType, "double": DoubleType,
              "float": FloatType, "tinyint": ByteType, "byte": ByteType, "smallint": ShortType,
              "short": ShortType, "int": IntegerType, "integer": IntegerType, "bigint": LongType,
              "long": LongType}
    if t in simple:
        return simple[t]()
    raise TypeError(f"type string {text!r}: only simple type names are read here; "
                    "pass a DataType (ArrayType, MapType, StructType) for nested types")
