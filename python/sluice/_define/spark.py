"""The `spark` object of a pipeline file: `spark.conf.get` (pipeline.yaml `configuration`),
`spark.readStream` / `spark.read` for the sources sluice has (Kafka through read_kafka, Delta
tables of the pipeline, their change data feed through table_changes), `spark.table`,
`spark.sql`. Nothing here touches data: each read is a relation in sluice's SQL."""
import re

from . import sqltext as q
from .errors import DefinitionError

# Set by __main__ from the loader's request.
CONFIGURATION = {}
KAFKA_CLUSTERS = {}  # cluster name -> bootstrap.servers, from pipeline.yaml

# Spark's Kafka source options (case-insensitive) -> read_kafka's argument names.
_KAFKA_OPTIONS = {
    "subscribe": "topic",
    "subscribepattern": "topic_pattern",
    "startingoffsets": "starting_offsets",
    "endingoffsets": "ending_offsets",
    "startingtimestamp": "starting_timestamp",
    "startingoffsetsbytimestamp": "starting_offsets_by_timestamp",
    "endingtimestamp": "ending_timestamp",
    "endingoffsetsbytimestamp": "ending_offsets_by_timestamp",
    "maxoffsetspertrigger": "max_offsets_per_trigger",
    "failondataloss": "fail_on_data_loss",
    "includeheaders": "include_headers",
    "groupidprefix": "group_id_prefix",
}
# Options of the Delta source that the change feed or a table read takes.
_DELTA_STREAM_OPTIONS = {"readchangefeed", "startingversion", "startingtimestamp"}
_DELTA_BATCH_OPTIONS = {"readchangefeed", "startingversion", "startingtimestamp", "endingversion",
                        "endingtimestamp"}


def _dataframe_class():
    from .api import _dataframe_class as get
    return get()


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def kafka_cluster_option(servers, what, where=None):
    """kafka.bootstrap.servers as read_kafka's `cluster` argument: the pipeline.yaml cluster with
    these bootstrap servers (its TLS/SASL settings go with it), or an error saying where to put it."""
    if KAFKA_CLUSTERS is None:  # `--sql` without a pipeline.yaml: shown as written
        return ("bootstrap_servers", servers)
    wanted = sorted(s.strip() for s in servers.split(",") if s.strip())
    for cluster, known in sorted(KAFKA_CLUSTERS.items()):
        if sorted(s.strip() for s in known.split(",") if s.strip()) == wanted:
            return ("cluster", cluster)
    known = ", ".join("{}: {}".format(c, s) for c, s in sorted(KAFKA_CLUSTERS.items())) or "none"
    raise DefinitionError(
        "{}: kafka.bootstrap.servers {!r} is not the bootstrap.servers of any cluster under pipeline.yaml's "
        "kafka: (known: {}); add a cluster with these servers there (its security settings go with it) or "
        "leave the option out to read the 'default' cluster".format(what, servers, known),
        *(where or (None, None)))


class RuntimeConfig:
    """spark.conf: pipeline.yaml `configuration` values, read-only."""

    def get(self, key, *default):
        if len(default) > 1:
            raise TypeError("spark.conf.get takes a key and at most one default")
        if key in CONFIGURATION:
            return CONFIGURATION[key]
        if default:
            return default[0]
        raise DefinitionError("spark.conf.get({!r}): no such key in pipeline.yaml's configuration: (give a "
                              "default, or add it there)".format(key))

    def getAll(self):
        raise DefinitionError("spark.conf.getAll is not supported: read each key with spark.conf.get")

    def set(self, key, value):
        raise DefinitionError("spark.conf.set is not supported in a pipeline: settings come from pipeline.yaml's "
                              "configuration:")

    def unset(self, key):
        raise DefinitionError("spark.conf.unset is not supported in a pipeline")

    def isModifiable(self, key):
        return False


class _Reader:
    def __init__(self, streaming):
        self._streaming = streaming
        self._format = None
        self._options = {}  # lower-cased key -> (key as written, value)
        self._api = "spark.readStream" if streaming else "spark.read"

    def format(self, source):
        self._format = str(source).lower()
        return self

    def option(self, key, value):
        self._options[str(key).lower()] = (str(key), _text(value))
        return self

    def options(self, **options):
        for k, v in options.items():
            self.option(k, v)
        return self

    def schema(self, schema):
        raise DefinitionError("{}.schema(...) is not supported: Kafka and Delta sources have their own schema"
                              .format(self._api))

    def load(self, path=None):
        fmt = self._format
        if fmt == "kafka":
            if path is not None:
                raise DefinitionError("{}.format('kafka').load() takes no path".format(self._api))
            return self._kafka()
        if fmt in (None, "delta"):
            if path is not None:
                raise DefinitionError("{}.load({!r}): reading a Delta table by path is not supported; read a dataset "
                                      "of the pipeline with .table(name)".format(self._api, path))
            raise DefinitionError("{}.load() needs a format: 'kafka', or .table(name) for a dataset"
                                  .format(self._api))
        raise DefinitionError("{}.format({!r}) is not supported: sluice reads Kafka (format('kafka')) and the "
                              "pipeline's Delta tables (.table(name))".format(self._api, fmt))

    def table(self, name):
        if self._format not in (None, "delta"):
            raise DefinitionError("{}.format({!r}).table(...): tables are Delta; use format('delta') or none"
                                  .format(self._api, self._format))
        if not isinstance(name, str) or not name:
            raise DefinitionError("{}.table takes a dataset name".format(self._api))
        name = name[5:] if name.upper().startswith("LIVE.") else name
        known = _DELTA_STREAM_OPTIONS if self._streaming else _DELTA_BATCH_OPTIONS
        for key, (written, _) in self._options.items():
            if key not in known:
                raise DefinitionError("{}.option({!r}) is not supported for a Delta table (supported: {})".format(
                    self._api, written, ", ".join(sorted({"readChangeFeed", "startingVersion", "startingTimestamp"} |
                                                          (set() if self._streaming else
                                                           {"endingVersion", "endingTimestamp"})))))
        DataFrame = _dataframe_class()
        change_feed = self._options.get("readchangefeed", (None, "false"))[1].lower()
        if change_feed not in ("true", "false"):
            raise DefinitionError("{}.option('readChangeFeed', {!r}): say 'true' or 'false'".format(
                self._api, change_feed))
        if change_feed == "false":
            for key in ("startingversion", "startingtimestamp", "endingversion", "endingtimestamp"):
                if key in self._options:
                    raise DefinitionError("{}.option({!r}) without readChangeFeed: time travel is not supported; "
                                          "set readChangeFeed to true to read changes".format(
                                              self._api, self._options[key][0]))
            relation = "STREAM({})".format(q.ident(name)) if self._streaming else q.ident(name)
            return DataFrame._from_relation(relation, streaming=self._streaming)
        args = [q.string(name), self._bound("starting")]
        end = self._bound("ending", required=False)
        if end is not None:
            args.append(end)
        relation = "table_changes({})".format(", ".join(args))
        if self._streaming:
            relation = "STREAM " + relation
        return DataFrame._from_relation(relation, streaming=self._streaming)

    def _bound(self, which, required=True):
        version = self._options.get(which + "version")
        timestamp = self._options.get(which + "timestamp")
        if version is not None and timestamp is not None:
            raise DefinitionError("{}: give {}Version or {}Timestamp, not both".format(self._api, which, which))
        if version is not None:
            v = version[1]
            if v.lower() == "latest" and which == "starting":
                raise DefinitionError("{}.option('startingVersion', 'latest') is not supported: name a version"
                                      .format(self._api))
            if not re.fullmatch(r"\d+", v):
                raise DefinitionError("{}.option({!r}, {!r}): a version is a whole number".format(
                    self._api, version[0], v))
            return v
        if timestamp is not None:
            return q.string(timestamp[1])
        if required:
            # Spark's change feed stream without a start begins with the table's current snapshot
            # as inserts, then its changes: sluice's SQL has no such read, and version 0 would give
            # other rows (or fail once the log is cleaned up), so the start must be named.
            raise DefinitionError("{}.option('readChangeFeed', 'true') needs .option('startingVersion', n) or "
                                  ".option('startingTimestamp', '...'): a change feed read without a start (in "
                                  "Spark, the current snapshot as inserts, then the changes) is not supported"
                                  .format(self._api))
        return None

    def _kafka(self):
        args = []
        for key, (written, value) in self._options.items():
            if key == "kafka.bootstrap.servers":
                args.append(kafka_cluster_option(value, "{}.option('kafka.bootstrap.servers')".format(self._api)))
            elif key.startswith("kafka."):
                args.append(("kafka." + written[6:], value))  # librdkafka properties, checked by sluice
            elif key in _KAFKA_OPTIONS:
                args.append((_KAFKA_OPTIONS[key], value))
            else:
                raise DefinitionError("{}.format('kafka').option({!r}) is not supported (supported: subscribe, "
                                      "subscribePattern, startingOffsets, endingOffsets, startingTimestamp, "
                                      "startingOffsetsByTimestamp, endingTimestamp, endingOffsetsByTimestamp, "
                                      "maxOffsetsPerTrigger, failOnDataLoss, includeHeaders, groupIdPrefix, "
                                      "kafka.*)".format(self._api, written))
        if not any(k in ("topic", "topic_pattern") for k, _ in args):
            raise DefinitionError("{}.format('kafka') needs .option('subscribe', 'topic') or "
                                  ".option('subscribePattern', 'regex')".format(self._api))
        if not any(k in ("starting_offsets", "starting_timestamp", "starting_offsets_by_timestamp") for k, _ in args):
            # Spark's Kafka stream starts at the end when no start is given (read_kafka's default
            # is the beginning): written out, so the Python code means what it means in Spark.
            args.append(("starting_offsets", "latest"))
        if not self._streaming:
            raise DefinitionError("spark.read.format('kafka') (a batch read of Kafka) is not supported: use "
                                  "spark.readStream")
        # A key is an identifier (`kafka.client.id` in backquotes: a dotted name is not one word).
        relation = "STREAM read_kafka({})".format(", ".join("{} => {}".format(q.arg_name(k), q.string(v))
                                                            for k, v in args))
        return _dataframe_class()._from_relation(
            relation, streaming=True,
            columns=["key", "value", "topic", "partition", "offset", "timestamp", "timestampType", "headers"])


class SparkSession:
    """The `spark` of a pipeline file."""

    def __init__(self):
        self.conf = RuntimeConfig()

    @property
    def readStream(self):
        return _Reader(streaming=True)

    @property
    def read(self):
        return _Reader(streaming=False)

    def table(self, name):
        return _Reader(streaming=False).table(name)

    def sql(self, text, *args, **kwargs):
        if args or kwargs:
            raise DefinitionError("spark.sql with arguments is not supported: build the SQL text")
        if not isinstance(text, str) or not text.strip():
            raise DefinitionError("spark.sql takes a query's text")
        streaming = q.reads_a_stream(text)
        query = q.user_sql(text.strip().rstrip(";"))
        df = _dataframe_class()._from_relation("({}) AS _sql".format(query), streaming=streaming)
        # Returned as the dataset's query untouched, it is used as written (a subquery in FROM may
        # not aggregate in sluice's SQL); a DataFrame method makes a new object without this.
        df._sluice_sql_text = query
        return df

    def createDataFrame(self, *args, **kwargs):
        raise DefinitionError("spark.createDataFrame is not supported in a pipeline: data comes from Kafka or the "
                              "pipeline's tables (tests: `sluice test` fixtures)")

    @property
    def sparkContext(self):
        raise DefinitionError("spark.sparkContext is not available: sluice runs no Spark")

    def stop(self):
        pass

    class _Builder:
        def appName(self, *_):
            return self

        def master(self, *_):
            return self

        def config(self, *_, **__):
            return self

        def getOrCreate(self):
            return SPARK

    builder = _Builder()

    @classmethod
    def active(cls):
        return SPARK

    @classmethod
    def getActiveSession(cls):
        return SPARK


SPARK = SparkSession()
