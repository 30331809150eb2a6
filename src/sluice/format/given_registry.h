// Schemas given in place of a schema registry (a `sluice test` case's schema_registry:). While
// installed, SchemaRegistryClient::make returns an offline client that serves only these (by id,
// and a subject's latest), whatever URL the pipeline names, so a test never contacts a registry.
// Process-wide: sluice test runs one case at a time and installs them for that case only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::format {

struct GivenRegistrySchema {
  int32_t id = 0;
  std::string subject;  // empty: served by id only
  std::string schema;   // Avro JSON
};

void install_given_registry(std::vector<GivenRegistrySchema> schemas);
void clear_given_registry();

// Installs on construction, clears on destruction (however the case ends).
class GivenRegistryScope {
 public:
  explicit GivenRegistryScope(std::vector<GivenRegistrySchema> schemas) { install_given_registry(std::move(schemas)); }
  ~GivenRegistryScope() { clear_given_registry(); }
  GivenRegistryScope(const GivenRegistryScope&) = delete;
  GivenRegistryScope& operator=(const GivenRegistryScope&) = delete;
};

}  // namespace sluice::format
