// Schema registry client over cpp-httplib (HTTP and HTTPS, with OpenSSL) and nlohmann-json.
#include "sluice/format/schema_registry.h"

#include <httplib.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <optional>
#include <vector>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/format/given_registry.h"

namespace sluice::format {

namespace {

constexpr int kTimeoutSeconds = 10;

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

arrow::Result<RegisteredSchema> parse_schema_response(const std::string& body, const std::string& what,
                                                      int32_t id_if_absent) {
  try {
    auto j = nlohmann::json::parse(body);
    RegisteredSchema out;
    out.id = j.contains("id") ? j.at("id").get<int32_t>() : id_if_absent;
    out.schema = j.at("schema").get<std::string>();
    if (j.contains("schemaType") && j.at("schemaType").is_string() && j.at("schemaType") != "AVRO") {
      return invalid("{}: the schema is {}, not AVRO", what, j.at("schemaType").get<std::string>());
    }
    return out;
  } catch (const nlohmann::json::exception& e) {
    return invalid("{}: unexpected response from the registry ({}): {}", what, e.what(), body.substr(0, 200));
  }
}

}  // namespace

namespace {

// given_registry.h: the installed schemas, or none.
std::mutex given_mutex;
std::optional<std::vector<GivenRegistrySchema>> given_schemas;  // guarded by given_mutex

std::optional<std::vector<GivenRegistrySchema>> given_registry() {
  std::lock_guard<std::mutex> lock(given_mutex);
  return given_schemas;
}

}  // namespace

void install_given_registry(std::vector<GivenRegistrySchema> schemas) {
  std::lock_guard<std::mutex> lock(given_mutex);
  given_schemas = std::move(schemas);
}

void clear_given_registry() {
  std::lock_guard<std::mutex> lock(given_mutex);
  given_schemas.reset();
}

arrow::Result<std::shared_ptr<SchemaRegistryClient>> SchemaRegistryClient::make(
    const std::string& url, const std::map<std::string, std::string>& properties) {
  std::shared_ptr<SchemaRegistryClient> client(new SchemaRegistryClient());
  if (auto given = given_registry()) {
    // A test's schemas stand in for the registry: an offline client, never a request.
    for (const auto& g : *given) client->add_schema(g.id, g.schema);
    return client;
  }
  client->url_ = url;
  const bool https = url.rfind("https://", 0) == 0;
  if (!url.empty()) {
    if (!https && url.rfind("http://", 0) != 0) {
      return invalid("schema registry URL '{}' must start with http:// or https://",
                     url_without_password(url));
    }
    const size_t scheme = https ? 8 : 7;
    size_t path = url.find('/', scheme);
    client->host_url_ = url.substr(0, path);
    client->path_prefix_ = path == std::string::npos ? "" : url.substr(path);
    while (!client->path_prefix_.empty() && client->path_prefix_.back() == '/') client->path_prefix_.pop_back();
    if (client->host_url_.size() <= scheme) {
      return invalid("schema registry URL '{}' has no host", url_without_password(url));
    }
  }
  for (const auto& [key, value] : properties) {
    if (key == "basic.auth.user.info") {
      size_t colon = value.find(':');
      if (colon == std::string::npos) return invalid("basic.auth.user.info must be 'user:password'");
      client->user_ = value.substr(0, colon);
      client->password_ = value.substr(colon + 1);
    } else if (key == "ssl.ca.location") {
      if (!https) {
        return invalid("schema registry URL '{}' is plain http: its CA file {} would not be used; "
                       "use the registry's https:// URL or drop the CA file",
                       url_without_password(url), value);
      }
      if (!std::ifstream(value)) {
        return invalid("schema registry CA file {} cannot be read: give the PEM file of the CA "
                       "that signed the registry's certificate", value);
      }
      client->ca_location_ = value;
    } else if (key != "basic.auth.credentials.source") {
      return invalid("unknown schema registry property '{}' (known: basic.auth.user.info, "
                     "ssl.ca.location)", key);
    }
  }
  return client;
}

arrow::Result<std::string> SchemaRegistryClient::get(const std::string& path, const std::string& what) {
  return request(path, std::nullopt, what);
}

arrow::Result<std::string> SchemaRegistryClient::request(const std::string& path, const std::optional<std::string>& body,
                                                         const std::string& what) {
  const char* method = body ? "POST" : "GET";
  if (url_.empty()) {
    if (given_registry()) {
      return arrow::Status::KeyError(fmt::format("{}: not among the test case's schema_registry: schemas (the "
                                                 "registry is never asked in a test)", what));
    }
    return arrow::Status::KeyError(fmt::format("{}: not found (offline registry client)", what));
  }
  const std::string full = url_without_password(url_ + path);  // shown in errors
  try {
    httplib::Client http(host_url_);
    http.set_connection_timeout(kTimeoutSeconds);
    http.set_read_timeout(kTimeoutSeconds);
    http.enable_server_certificate_verification(true);  // and the host name (httplib checks both)
    if (!ca_location_.empty()) http.set_ca_cert_path(ca_location_);
    if (!user_.empty()) http.set_basic_auth(user_, password_);
    httplib::Headers headers = {{"Accept", "application/vnd.schemaregistry.v1+json, application/json"}};
    auto res = body ? http.Post(path_prefix_ + path, headers, *body, "application/vnd.schemaregistry.v1+json")
                    : http.Get(path_prefix_ + path, headers);
    if (!res && res.error() == httplib::Error::SSLServerVerification) {
      return invalid(
          "{}: the schema registry's TLS certificate at {} is not trusted ({}); {}", what, full,
          X509_verify_cert_error_string(http.get_openssl_verify_result()),
          ca_location_.empty()
              ? "if it is signed by a private CA, give that CA's PEM file (read_kafka's "
                "schema_registry_ca_location, sluice decode --registry-ca)"
              : fmt::format("the CA file {} did not sign it, or it does not name this host", ca_location_));
    }
    if (!res) {
      // A TLS port answering plain HTTP closes the connection: the read fails.
      const bool maybe_tls = res.error() == httplib::Error::Read && host_url_.rfind("http://", 0) == 0;
      return mark_retryable(io_error("{}: cannot reach schema registry at {}: {}{}", what, full,
                                     httplib::to_string(res.error()),
                                     maybe_tls ? " (if the registry serves HTTPS, use an https:// URL)" : ""));
    }
    if (res->status == 401 || res->status == 403) {
      return invalid("{}: the schema registry at {} refused the request (HTTP {}: authentication "
                     "failed); {}", what, full, res->status,
                     user_.empty() ? "it needs credentials: set SLUICE_REGISTRY_AUTH or give a "
                                     "file holding 'user:password' (read_kafka's "
                                     "schema_registry_auth_file, sluice decode --registry-auth-file)"
                                   : "check the user and password given for the registry");
    }
    if (res->status == 404) {
      return arrow::Status::KeyError(fmt::format("{}: not found in schema registry ({} {} -> HTTP 404: {})", what,
                                                 method, full, res->body.substr(0, 200)));
    }
    if (res->status == 409 || res->status == 422) {  // POST: incompatible or invalid schema
      return invalid("{}: the schema registry at {} refused the schema (HTTP {}: {})", what, full, res->status,
                     res->body.substr(0, 300));
    }
    if (res->status != 200) {
      auto st = io_error("{}: schema registry {} {} -> HTTP {}: {}", what, method, full, res->status,
                         res->body.substr(0, 200));
      // A registry that is overloaded or restarting may answer later; a refusal will not.
      return res->status >= 500 || res->status == 429 ? mark_retryable(st) : st;
    }
    return res->body;
  } catch (const std::exception& e) {
    return io_error("{}: schema registry {} {} failed: {}", what, method, full, e.what());
  }
}

arrow::Result<RegisteredSchema> SchemaRegistryClient::schema_by_id(int32_t id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = by_id_.find(id); it != by_id_.end()) return it->second;
  }
  const std::string what = fmt::format("schema id {}", id);
  ARROW_ASSIGN_OR_RAISE(auto body, get(fmt::format("/schemas/ids/{}", id), what));
  ARROW_ASSIGN_OR_RAISE(auto schema, parse_schema_response(body, what, id));
  schema.id = id;
  std::lock_guard<std::mutex> lock(mutex_);
  by_id_.emplace(id, schema);
  return schema;
}

arrow::Result<RegisteredSchema> SchemaRegistryClient::latest(const std::string& subject) {
  const std::string what = fmt::format("latest version of subject '{}'", subject);
  if (url_.empty()) {
    if (auto given = given_registry()) {  // the highest id given for the subject
      std::optional<RegisteredSchema> found;
      for (const auto& g : *given) {
        if (g.subject == subject && (!found || g.id > found->id)) found = RegisteredSchema{g.id, g.schema};
      }
      if (found) return *found;
      return arrow::Status::KeyError(fmt::format("{}: the test case's schema_registry: gives no schema for subject "
                                                 "'{}'", what, subject));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto body, get(fmt::format("/subjects/{}/versions/latest", url_encode(subject)), what));
  ARROW_ASSIGN_OR_RAISE(auto schema, parse_schema_response(body, what, -1));
  if (schema.id < 0) return invalid("{}: the registry's answer has no schema id", what);
  std::lock_guard<std::mutex> lock(mutex_);
  by_id_.emplace(schema.id, schema);
  return schema;
}

arrow::Result<int32_t> SchemaRegistryClient::register_schema(const std::string& subject, const std::string& schema) {
  const std::string what = fmt::format("registering the schema of subject '{}'", subject);
  const auto body = nlohmann::json{{"schema", schema}, {"schemaType", "AVRO"}}.dump();
  ARROW_ASSIGN_OR_RAISE(auto answer, request(fmt::format("/subjects/{}/versions", url_encode(subject)), body, what));
  auto j = nlohmann::json::parse(answer, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_number_integer()) {
    return invalid("{}: unexpected response from the registry: {}", what, answer.substr(0, 200));
  }
  const auto id = j["id"].get<int32_t>();
  std::lock_guard<std::mutex> lock(mutex_);
  by_id_[id] = RegisteredSchema{id, schema};
  return id;
}

arrow::Result<std::string> read_registry_auth_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return invalid("cannot read {} {}", what, path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  if (line.find(':') == std::string::npos) {
    return invalid("{} {}: its first line must be 'user:password'", what, path);
  }
  remember_secret(line.substr(line.find(':') + 1));
  return line;
}

void SchemaRegistryClient::add_schema(int32_t id, std::string schema) {
  std::lock_guard<std::mutex> lock(mutex_);
  by_id_[id] = RegisteredSchema{id, std::move(schema)};
}

}  // namespace sluice::format
