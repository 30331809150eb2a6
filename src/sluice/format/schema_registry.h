// A client of a Confluent-compatible schema registry (Confluent, Apicurio's ccompat API,
// Karapace): schemas by id and a subject's latest version, cached by id; registering a schema
// under a subject (a Kafka sink writing Avro).
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace sluice::format {

struct RegisteredSchema {
  int32_t id = 0;
  std::string schema;  // the schema text (Avro JSON)
};

// Thread-safe: any thread may call any method. `mutex_` guards `by_id_`; HTTP requests run
// outside the lock, each on its own connection.
class SchemaRegistryClient {
 public:
  // `url` is the API root, e.g. http://127.0.0.1:8081 or https://host/apis/ccompat/v7; an
  // empty url makes an offline client that knows only the schemas given to add_schema (for
  // tests and embedding). Properties: `basic.auth.user.info` = "user:password";
  // `ssl.ca.location` = the PEM file of the CA that signed an https registry's certificate
  // (default: the system's CA store).
  static arrow::Result<std::shared_ptr<SchemaRegistryClient>> make(
      const std::string& url, const std::map<std::string, std::string>& properties = {});

  // GET /schemas/ids/{id}, cached. A schema the registry does not have is KeyError; a
  // registry that cannot be reached is an IOError marked retryable; an untrusted certificate
  // or refused credentials are Invalid (no retry changes them).
  arrow::Result<RegisteredSchema> schema_by_id(int32_t id);
  // GET /subjects/{subject}/versions/latest (not cached: the latest version changes).
  arrow::Result<RegisteredSchema> latest(const std::string& subject);
  // POST /subjects/{subject}/versions: registers `schema` (Avro JSON) under `subject` (the
  // registry returns the existing id when the subject has it already) and returns its id. A
  // schema the subject's compatibility rule refuses is Invalid, naming the registry's reason.
  arrow::Result<int32_t> register_schema(const std::string& subject, const std::string& schema);
  // Puts a schema in the cache as if the registry had returned it.
  void add_schema(int32_t id, std::string schema);

  const std::string& url() const { return url_; }

 private:
  SchemaRegistryClient() = default;
  arrow::Result<std::string> get(const std::string& path, const std::string& what);
  // GET, or POST of `body` when given.
  arrow::Result<std::string> request(const std::string& path, const std::optional<std::string>& body,
                                     const std::string& what);

  std::string url_;          // as given, for messages
  std::string host_url_;     // scheme://host:port
  std::string path_prefix_;  // e.g. /apis/ccompat/v7
  std::string user_, password_;
  std::string ca_location_;  // https: the CA file; empty: the system's CA store
  std::mutex mutex_;
  std::unordered_map<int32_t, RegisteredSchema> by_id_;  // guarded by mutex_
};

// The registry's "user:password" from the first line of `path` (`what` names the setting
// in errors); the value is remembered as a secret, so no message shows it.
arrow::Result<std::string> read_registry_auth_file(const std::string& path, const std::string& what);

}  // namespace sluice::format
