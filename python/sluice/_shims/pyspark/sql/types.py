"""`pyspark.sql.types` inside a sluice pipeline run: the data types a pipeline names (schema=
of @dlt.table, casts, from_json schemas), each rendering as Spark's type string
(`simpleString()`), which sluice's SQL reads. When the DataFrame layer has its own
(sluice/_define/types.py), that one is used."""
try:
    from sluice._define.types import *  # noqa: F401,F403
    from sluice._define import types as _own
    _HAVE_OWN = True
except ImportError:
    _HAVE_OWN = False

if not _HAVE_OWN:
    class DataType:
        _name = None

        def simpleString(self):
            return self._name

        def typeName(self):
            return self._name

        def __repr__(self):
            return "{}()".format(type(self).__name__)

        def __eq__(self, other):
            return type(self) is type(other) and self.__dict__ == other.__dict__

        def __hash__(self):
            return hash(self.simpleString())

    def _atomic(class_name, spark_name):
        return type(class_name, (DataType,), {"_name": spark_name})

    StringType = _atomic("StringType", "string")
    BinaryType = _atomic("BinaryType", "binary")
    BooleanType = _atomic("BooleanType", "boolean")
    ByteType = _atomic("ByteType", "tinyint")
    ShortType = _atomic("ShortType", "smallint")
    IntegerType = _atomic("IntegerType", "int")
    LongType = _atomic("LongType", "bigint")
    FloatType = _atomic("FloatType", "float")
    DoubleType = _atomic("DoubleType", "double")
    DateType = _atomic("DateType", "date")
    TimestampType = _atomic("TimestampType", "timestamp")
    TimestampNTZType = _atomic("TimestampNTZType", "timestamp_ntz")
    NullType = _atomic("NullType", "void")

    class DecimalType(DataType):
        def __init__(self, precision=10, scale=0):
            self.precision, self.scale = precision, scale

        def simpleString(self):
            return "decimal({},{})".format(self.precision, self.scale)

    class ArrayType(DataType):
        def __init__(self, elementType, containsNull=True):
            self.elementType, self.containsNull = elementType, containsNull

        def simpleString(self):
            return "array<{}>".format(self.elementType.simpleString())

    class MapType(DataType):
        def __init__(self, keyType, valueType, valueContainsNull=True):
            self.keyType, self.valueType, self.valueContainsNull = keyType, valueType, valueContainsNull

        def simpleString(self):
            return "map<{},{}>".format(self.keyType.simpleString(), self.valueType.simpleString())

    class StructField:
        def __init__(self, name, dataType, nullable=True, metadata=None):
            self.name, self.dataType, self.nullable, self.metadata = name, dataType, nullable, metadata or {}

        def simpleString(self):
            return "{}:{}".format(self.name, self.dataType.simpleString())

        def __repr__(self):
            return "StructField({!r}, {!r}, {})".format(self.name, self.dataType, self.nullable)

    class StructType(DataType):
        def __init__(self, fields=None):
            self.fields = list(fields or [])

        def add(self, field, data_type=None, nullable=True, metadata=None):
            if isinstance(field, StructField):
                self.fields.append(field)
            else:
                if isinstance(data_type, str):
                    raise TypeError("StructType.add with a type string is not supported by sluice: give a DataType")
                self.fields.append(StructField(field, data_type, nullable, metadata))
            return self

        @property
        def names(self):
            return [f.name for f in self.fields]

        def fieldNames(self):
            return self.names

        def __iter__(self):
            return iter(self.fields)

        def __len__(self):
            return len(self.fields)

        def simpleString(self):
            return "struct<{}>".format(",".join(f.simpleString() for f in self.fields))
