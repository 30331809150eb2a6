// Deletion vectors (PROTOCOL.md "Deletion Vectors"): the rows of a data file marked deleted,
// stored beside the table ('u': deletion_vector_<uuid>.bin under an optional random prefix,
// the UUID Z85-encoded in the descriptor), at an absolute path ('p') or inline ('i'). A file
// holds a version byte (1), then per vector: its size (int32 big-endian), a portable
// RoaringBitmapArray (roaring.h) and its CRC-32 (big-endian); a descriptor's offset points
// at the size.
#pragma once

#include <arrow/result.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/delta/actions.h"
#include "sluice/delta/log_store.h"

namespace sluice::delta {

// Z85 (ZeroMQ RFC 32): 4 bytes as 5 characters. encode pads `bytes` with zeros to a multiple of
// 4 (as Spark does for inline vectors); decode needs a multiple of 5 characters.
std::string z85_encode(std::string_view bytes);
arrow::Result<std::string> z85_decode(std::string_view text);

// The file a 'u' or 'p' descriptor names, in the store's namespace.
arrow::Result<std::filesystem::path> deletion_vector_path(const LogStore& store,
                                                          const DeletionVectorDescriptor& dv);

// The deleted row indexes (ascending) of `data_file`, checked against the descriptor's size,
// CRC-32 and cardinality; errors name the data file and the vector's file.
arrow::Result<std::vector<uint64_t>> read_deletion_vector(const LogStore& store,
                                                          const DeletionVectorDescriptor& dv,
                                                          const std::string& data_file);

// Writes `rows` (ascending, distinct, non-empty) as a new deletion_vector_<uuid>.bin at the
// table root and returns its descriptor (storage 'u', offset 1).
arrow::Result<DeletionVectorDescriptor> write_deletion_vector(const LogStore& store,
                                                              const std::vector<uint64_t>& rows);

// The rows of a file as `file` and its deletion vector leave them: numRecords from the stats
// minus the vector's cardinality; -1 when the stats lack numRecords.
int64_t live_records(const Add& file);

}  // namespace sluice::delta
