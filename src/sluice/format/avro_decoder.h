// The Avro payload decoder for the Confluent wire format: byte 0 = 0, bytes 1-4 = the writer
// schema's id (big-endian), then the Avro binary encoding of one record.
#pragma once

#include <arrow/result.h>

#include <memory>
#include <string>

#include "sluice/format/payload_decoder.h"
#include "sluice/format/schema_registry.h"

namespace sluice::format {

// schema() is avro_to_arrow(reader schema)'s fields (+ `_rescued_data`). Each record is read
// with its writer schema (fetched from `registry` by id, planned once per id) and resolved to
// the reader schema as Avro's schema resolution says; top-level writer fields the reader does
// not have, or whose type cannot be read as the reader's, go to `_rescued_data` as JSON.
// A bad record (magic byte, unknown id, truncated, trailing bytes) is a DecodeError; a registry
// that cannot be reached fails decode() with a retryable status.
// One decoder is used by one thread at a time (it caches plans per writer id without a lock).
arrow::Result<std::unique_ptr<PayloadDecoder>> make_avro_decoder(std::shared_ptr<SchemaRegistryClient> registry,
                                                                 const std::string& reader_schema_json,
                                                                 DecoderOptions options);

}  // namespace sluice::format
