// JSON (de)serialization of Delta log actions.
#include "sluice/delta/actions.h"

#include "sluice/common/status.h"

namespace sluice::delta {
namespace {

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
    return {{"add", j}};
  }
  json operator()(const Remove& r) const {
    json j = {{"path", r.path}, {"dataChange", r.data_change}};
    put_optional(j, "deletionTimestamp", r.deletion_timestamp);
    put_optional(j, "extendedFileMetadata", r.extended_file_metadata);
    if (r.partition_values) j["partitionValues"] = partition_values_json(*r.partition_values);
    put_optional(j, "size", r.size);
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

// Reading is lenient about absent optional fields and strict about the required ones.
template <typename T>
std::optional<T> get_optional(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

template <typename T>
T get_required(const json& j, const char* key, const char* action) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    throw std::runtime_error(fmt::format("'{}' action lacks required field '{}'", action, key));
  }
  return it->get<T>();
}

PartitionValues partition_values_from(const json& j) {
  PartitionValues out;
  if (!j.is_object()) return out;
  for (const auto& [k, v] : j.items()) {
    out[k] = v.is_null() ? std::nullopt : std::optional<std::string>(v.get<std::string>());
  }
  return out;
}

Action parse_one(const json& j) {
  if (!j.is_object() || j.size() != 1) {
    throw std::runtime_error("an action must be a JSON object with exactly one key");
  }
  // Not `*j.items().begin()`: its operator* returns a reference to the temporary iterator,
  // so bindings to it dangle (caught by ASan).
  const std::string& kind = j.begin().key();
  const json& body = j.begin().value();
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
    a.tags = get_optional<std::map<std::string, std::string>>(body, "tags");
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
    return r;
  }
  if (kind == "txn") {
    Txn t;
    t.app_id = get_required<std::string>(body, "appId", "txn");
    t.version = get_required<int64_t>(body, "version", "txn");
    t.last_updated = get_optional<int64_t>(body, "lastUpdated");
    return t;
  }
  if (kind == "commitInfo") return CommitInfo{body};
  return OtherAction{kind, body};
}

}  // namespace

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
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      return invalid("{}:{}: not valid JSON (truncated or corrupt commit file?)", source, line_no);
    }
    auto action = action_from_json(j);
    if (!action.ok()) return with_context(action.status(), fmt::format("{}:{}", source, line_no));
    actions.push_back(std::move(*action));
  }
  return actions;
}

std::string uri_encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(path.size());
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' ||
        c == '=') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

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
