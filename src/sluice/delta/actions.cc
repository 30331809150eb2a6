// JSON (de)serialization of Delta log actions.
#include "sluice/delta/actions.h"

#include <limits>
#include <type_traits>

#include "sluice/common/status.h"
#include "sluice/common/text.h"

namespace sluice::delta {
namespace {

// Nesting deeper than any action line has: copying and printing JSON recurses, so a hostile
// line of 100,000 '[' must be refused before it is parsed.
constexpr int kMaxActionDepth = 64;
// Stats and schemas nest as deep as the table's structs; far deeper is hostile.
constexpr int kMaxEmbeddedDepth = 256;


using nlohmann::json;

template <typename T>
void put_optional(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

json partition_values_json(const PartitionValues& values) {
  json j = json::object();
  for (const auto& [k, v] : values) j[k] = v ? json(*v) : json(nullptr);
  return j;
}

json deletion_vector_json(const DeletionVectorDescriptor& dv) {
  json j = {{"storageType", dv.storage_type}, {"pathOrInlineDv", dv.path_or_inline_dv}};
  put_optional(j, "offset", dv.offset);
  j["sizeInBytes"] = dv.size_in_bytes;
  j["cardinality"] = dv.cardinality;
  return j;
}

struct ToJson {
  json operator()(const Protocol& p) const {
    json j = {{"minReaderVersion", p.min_reader_version},
              {"minWriterVersion", p.min_writer_version}};
    put_optional(j, "readerFeatures", p.reader_features);
    put_optional(j, "writerFeatures", p.writer_features);
    return {{"protocol", j}};
  }
  json operator()(const Metadata& m) const {
    json j = {{"id", m.id}};
    put_optional(j, "name", m.name);
    put_optional(j, "description", m.description);
    j["format"] = {{"provider", m.format.provider}, {"options", m.format.options}};
    j["schemaString"] = m.schema_string;
    j["partitionColumns"] = m.partition_columns;
    j["configuration"] = m.configuration;
    put_optional(j, "createdTime", m.created_time);
    return {{"metaData", j}};
  }
  json operator()(const Add& a) const {
    json j = {{"path", a.path},
              {"partitionValues", partition_values_json(a.partition_values)},
              {"size", a.size},
              {"modificationTime", a.modification_time},
              {"dataChange", a.data_change}};
    put_optional(j, "stats", a.stats);
    put_optional(j, "tags", a.tags);
    if (a.deletion_vector) j["deletionVector"] = deletion_vector_json(*a.deletion_vector);
    put_optional(j, "clusteringProvider", a.clustering_provider);
    return {{"add", j}};
  }
  json operator()(const Remove& r) const {
    json j = {{"path", r.path}, {"dataChange", r.data_change}};
    put_optional(j, "deletionTimestamp", r.deletion_timestamp);
    put_optional(j, "extendedFileMetadata", r.extended_file_metadata);
    if (r.partition_values) j["partitionValues"] = partition_values_json(*r.partition_values);
    put_optional(j, "size", r.size);
    if (r.deletion_vector) j["deletionVector"] = deletion_vector_json(*r.deletion_vector);
    return {{"remove", j}};
  }
  json operator()(const Txn& t) const {
    json j = {{"appId", t.app_id}, {"version", t.version}};
    put_optional(j, "lastUpdated", t.last_updated);
    return {{"txn", j}};
  }
  json operator()(const CommitInfo& c) const { return {{"commitInfo", c.value}}; }
  json operator()(const OtherAction& o) const { return {{o.kind, o.value}}; }
};

// A field's value as T. Integers are range-checked first: nlohmann converts a float or an
// unsigned number out of T's range by a cast, which is undefined behaviour (UBSan, found by
// fuzz/delta_log_fuzzer.cc); a whole-number float in range is taken, as Jackson takes it.
template <typename T>
T field_value(const json& v, const char* key) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    const auto out_of_range = [&] {
      return std::runtime_error(fmt::format("field '{}' is not an integer that fits {} bits", key,
                                            8 * sizeof(T)));
    };
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (!(d >= static_cast<double>(std::numeric_limits<T>::min()) &&
            d < -2.0 * static_cast<double>(std::numeric_limits<T>::min())) ||
          d != static_cast<double>(static_cast<int64_t>(d))) {
        throw out_of_range();
      }
      return static_cast<T>(d);
    }
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())) throw out_of_range();
      return static_cast<T>(v.get<uint64_t>());
    }
    if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          i > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        throw out_of_range();
      }
      return static_cast<T>(i);
    }
  }
  return v.get<T>();
}

// Reading is lenient about absent optional fields and strict about the required ones.
template <typename T>
std::optional<T> get_optional(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return field_value<T>(*it, key);
}

template <typename T>
T get_required(const json& j, const char* key, const char* action) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    throw std::runtime_error(fmt::format("'{}' action lacks required field '{}'", action, key));
  }
  return field_value<T>(*it, key);
}

PartitionValues partition_values_from(const json& j) {
  PartitionValues out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    out[k] = v.is_null() ? std::nullopt : std::optional<std::string>(v.get<std::string>());
  }
  return out;
}

std::optional<DeletionVectorDescriptor> deletion_vector_from(const json& body, const char* action) {
  auto it = body.find("deletionVector");
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_object()) {
    throw std::runtime_error(fmt::format("'{}' deletionVector is not a JSON object", action));
  }
  DeletionVectorDescriptor dv;
  dv.storage_type = get_required<std::string>(*it, "storageType", "deletionVector");
  dv.path_or_inline_dv = get_required<std::string>(*it, "pathOrInlineDv", "deletionVector");
  dv.offset = get_optional<int32_t>(*it, "offset");
  dv.size_in_bytes = get_required<int32_t>(*it, "sizeInBytes", "deletionVector");
  dv.cardinality = get_required<int64_t>(*it, "cardinality", "deletionVector");
  return dv;
}

Action parse_one(const json& j) {
  if (!j.is_object() || j.size() != 1) {
    throw std::runtime_error("an action must be a JSON object with exactly one key");
  }
  // Not a structured binding over items(): its key() refers into a temporary proxy.
  const std::string kind = j.begin().key();
  const nlohmann::json& body = j.begin().value();
  if (kind == "protocol") {
    Protocol p;
    p.min_reader_version = get_required<int32_t>(body, "minReaderVersion", "protocol");
    p.min_writer_version = get_required<int32_t>(body, "minWriterVersion", "protocol");
    p.reader_features = get_optional<std::vector<std::string>>(body, "readerFeatures");
    p.writer_features = get_optional<std::vector<std::string>>(body, "writerFeatures");
    return p;
  }
  if (kind == "metaData") {
    Metadata m;
    m.id = get_required<std::string>(body, "id", "metaData");
    m.name = get_optional<std::string>(body, "name");
    m.description = get_optional<std::string>(body, "description");
    if (auto f = body.find("format"); f != body.end() && f->is_object()) {
      m.format.provider = f->value("provider", "parquet");
      if (auto o = f->find("options"); o != f->end() && o->is_object()) {
        m.format.options = o->get<std::map<std::string, std::string>>();
      }
    }
    m.schema_string = get_required<std::string>(body, "schemaString", "metaData");
    if (json_nests_deeper_than(m.schema_string, kMaxEmbeddedDepth)) {
      throw std::runtime_error(fmt::format("'metaData' schemaString nests deeper than {} levels",
                                           kMaxEmbeddedDepth));
    }
    m.partition_columns =
        get_optional<std::vector<std::string>>(body, "partitionColumns")
                              .value_or(std::vector<std::string>{});
    if (auto c = body.find("configuration"); c != body.end() && c->is_object()) {
      for (const auto& [k, v] : c->items()) {
        if (!v.is_null()) m.configuration[k] = v.get<std::string>();
      }
    }
    m.created_time = get_optional<int64_t>(body, "createdTime");
    return m;
  }
  if (kind == "add") {
    Add a;
    a.path = get_required<std::string>(body, "path", "add");
    if (auto pv = body.find("partitionValues"); pv != body.end()) {
      a.partition_values = partition_values_from(*pv);
    }
    a.size = get_required<int64_t>(body, "size", "add");
    a.modification_time = get_optional<int64_t>(body, "modificationTime").value_or(0);
    a.data_change = get_optional<bool>(body, "dataChange").value_or(true);
    a.stats = get_optional<std::string>(body, "stats");
    if (a.stats && json_nests_deeper_than(*a.stats, kMaxEmbeddedDepth)) {
      throw std::runtime_error(fmt::format("'add' stats nest deeper than {} levels",
                                           kMaxEmbeddedDepth));
    }
    a.tags = get_optional<std::map<std::string, std::string>>(body, "tags");
    a.deletion_vector = deletion_vector_from(body, "add");
    a.clustering_provider = get_optional<std::string>(body, "clusteringProvider");
    return a;
  }
  if (kind == "remove") {
    Remove r;
    r.path = get_required<std::string>(body, "path", "remove");
    r.deletion_timestamp = get_optional<int64_t>(body, "deletionTimestamp");
    r.data_change = get_optional<bool>(body, "dataChange").value_or(true);
    r.extended_file_metadata = get_optional<bool>(body, "extendedFileMetadata");
    if (auto pv = body.find("partitionValues"); pv != body.end() && !pv->is_null()) {
      r.partition_values = partition_values_from(*pv);
    }
    r.size = get_optional<int64_t>(body, "size");
    r.deletion_vector = deletion_vector_from(body, "remove");
    return r;
  }
  if (kind == "txn") {
    Txn t;
    t.app_id = get_required<std::string>(body, "appId", "txn");
    t.version = get_required<int64_t>(body, "version", "txn");
    t.last_updated = get_optional<int64_t>(body, "lastUpdated");
    return t;
  }
  if (kind == "commitInfo") {
    if (!body.is_object()) throw std::runtime_error("'commitInfo' action is not a JSON object");
    return CommitInfo{body};
  }
  // Every other action (cdc, domainMetadata, checkpointMetadata, sidecar, and kinds a later
  // protocol version adds) is kept unmodelled, as Spark and delta-kernel-rs skip actions they do
  // not read: a table that needs one understood names a table feature, which
  // check_read_supported refuses. Only a body that is not an object is corruption.
  if (!body.is_object()) {
    throw std::runtime_error(fmt::format("'{}' action is not a JSON object",
                                         kind.size() > 64 ? kind.substr(0, 64) + "..." : kind));
  }
  if (kind == kDomainMetadataKind) {
    // Checked here, so that replay (which keeps the newest action per domain) and checkpoints
    // never meet one without its fields.
    get_required<std::string>(body, "domain", kDomainMetadataKind);
    get_required<std::string>(body, "configuration", kDomainMetadataKind);
    get_required<bool>(body, "removed", kDomainMetadataKind);
  }
  return OtherAction{kind, body};
}

constexpr const char* kCorruptCommitAdvice =
    "Restore the file from a backup; sluice does not read past a commit it cannot read";

}  // namespace

bool json_nests_deeper_than(std::string_view text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

OtherAction to_action(const DomainMetadata& domain) {
  return OtherAction{kDomainMetadataKind, json{{"domain", domain.domain},
                                               {"configuration", domain.configuration},
                                               {"removed", domain.removed}}};
}

arrow::Result<std::optional<DomainMetadata>> domain_metadata_of(const OtherAction& action) {
  if (action.kind != kDomainMetadataKind) return std::nullopt;
  try {
    DomainMetadata d;
    d.domain = get_required<std::string>(action.value, "domain", kDomainMetadataKind);
    d.configuration = get_required<std::string>(action.value, "configuration", kDomainMetadataKind);
    d.removed = get_required<bool>(action.value, "removed", kDomainMetadataKind);
    return d;
  } catch (const std::exception& e) {
    return invalid("malformed Delta action: {}", e.what());
  }
}

std::string file_key(const std::string& path, const std::optional<DeletionVectorDescriptor>& dv) {
  if (!dv) return path;
  return path + '\0' + dv->unique_id();
}

nlohmann::json to_json(const Action& action) { return std::visit(ToJson{}, action); }

arrow::Result<Action> action_from_json(const nlohmann::json& j) {
  try {
    return parse_one(j);
  } catch (const std::exception& e) {
    return invalid("malformed Delta action: {}", e.what());
  }
}

std::string serialize_commit(const std::vector<Action>& actions) {
  std::string out;
  for (const auto& a : actions) {
    out += to_json(a).dump();
    out += '\n';
  }
  return out;
}

arrow::Result<std::vector<Action>> parse_commit(std::string_view text, const std::string& source) {
  std::vector<Action> actions;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (json_nests_deeper_than(line, kMaxActionDepth)) {
      return invalid("{}:{}: JSON nested deeper than {} levels, which no Delta action is. {}",
                     source, line_no, kMaxActionDepth, kCorruptCommitAdvice);
    }
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return invalid("{}:{}: not valid JSON (truncated or corrupt commit file?). {}", source,
                     line_no, kCorruptCommitAdvice);
    }
    auto action = action_from_json(j);
    if (!action.ok()) {
      return invalid("{}:{}: {}. {}", source, line_no, action.status().message(),
                     kCorruptCommitAdvice);
    }
    actions.push_back(std::move(*action));
  }
  // Every commit holds at least one action (a writer with nothing to say writes no commit): an
  // empty file is one whose content was lost, and replaying it as "no change" would drop
  // what it recorded (files, progress) without a word.
  if (actions.empty()) {
    return invalid("{}: {} commit file (no actions): the commit is lost or corrupt. {}", source,
                   text.empty() ? "empty (0-byte)" : "blank", kCorruptCommitAdvice);
  }
  return actions;
}

std::string uri_encode_path(std::string_view path) { return percent_encode(path, "/="); }

arrow::Result<std::string> uri_decode_path(std::string_view path) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      out += path[i];
      continue;
    }
    if (i + 2 >= path.size() || hex(path[i + 1]) < 0 || hex(path[i + 2]) < 0) {
      return invalid("bad percent-escape in path '{}'", path);
    }
    out += static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2]));
    i += 2;
  }
  return out;
}

}  // namespace sluice::delta
