// New-table protocol and metadata.
#include "sluice/delta/table.h"

#include <arrow/type.h>

#include "sluice/common/ids.h"
#include "sluice/delta/schema.h"

namespace sluice::delta {

Protocol protocol_for_schema(const arrow::Schema& schema) {
  Protocol p;
  if (uses_timestamp_ntz(schema)) {
    p.min_reader_version = 3;
    p.min_writer_version = 7;
    p.reader_features = std::vector<std::string>{"timestampNtz"};
    p.writer_features = std::vector<std::string>{"timestampNtz"};
  }
  return p;
}

arrow::Result<Metadata> new_table_metadata(const arrow::Schema& schema, std::string name,
                                           std::optional<std::string> description,
                                           std::vector<std::string> partition_columns) {
  Metadata m;
  m.id = random_uuid();
  m.name = std::move(name);
  m.description = std::move(description);
  ARROW_ASSIGN_OR_RAISE(m.schema_string, to_delta_schema_string(schema));
  m.partition_columns = std::move(partition_columns);
  m.created_time = now_millis();
  return m;
}

arrow::Result<std::shared_ptr<const Snapshot>> load_latest_if_exists(const LogStore& store) {
  ARROW_ASSIGN_OR_RAISE(auto latest, store.latest_version());
  if (!latest) return std::shared_ptr<const Snapshot>{};
  return Snapshot::load(store, *latest);
}

}  // namespace sluice::delta
