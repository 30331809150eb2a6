// Reading and writing deletion vector files and descriptors.
#include "sluice/delta/deletion_vector.h"

#include <arrow/buffer.h>
#include <arrow/io/interfaces.h>
#include <arrow/util/crc32.h>
#include <nlohmann/json.hpp>

#include <array>

#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/delta/roaring.h"

namespace sluice::delta {

namespace {

constexpr char kZ85Alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr size_t kEncodedUuidLength = 20;
constexpr char kFileFormatVersion = 1;

uint32_t read_be32(std::string_view bytes) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

void put_be32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string uuid_text(std::string_view bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kHex[static_cast<unsigned char>(bytes[i]) >> 4];
    out += kHex[static_cast<unsigned char>(bytes[i]) & 15];
  }
  return out;
}

arrow::Result<std::string> uuid_bytes(const std::string& text) {
  std::string out;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    if (text[i] == '-') continue;
    auto nibble = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    out.push_back(static_cast<char>(nibble(text[i]) * 16 + nibble(text[i + 1])));
    ++i;
  }
  if (out.size() != 16) return invalid("'{}' is not a UUID", text);
  return out;
}

std::string display_descriptor(const DeletionVectorDescriptor& dv) {
  return fmt::format("deletion vector '{}' (storage type '{}')", dv.path_or_inline_dv,
                     dv.storage_type);
}

// The bitmap bytes a descriptor names, checked against its size and CRC-32.
arrow::Result<std::string> read_bitmap_bytes(const LogStore& store,
                                             const DeletionVectorDescriptor& dv) {
  if (dv.size_in_bytes < 0) return invalid("negative sizeInBytes {}", dv.size_in_bytes);
  if (dv.storage_type == "i") {
    ARROW_ASSIGN_OR_RAISE(auto bytes, z85_decode(dv.path_or_inline_dv));
    if (bytes.size() < static_cast<size_t>(dv.size_in_bytes)) {
      return invalid("the inline bitmap has {} bytes, fewer than sizeInBytes {}", bytes.size(),
                     dv.size_in_bytes);
    }
    bytes.resize(dv.size_in_bytes);
    return bytes;
  }
  ARROW_ASSIGN_OR_RAISE(auto path, deletion_vector_path(store, dv));
  const std::string where = store.display(path);
  const int64_t offset = dv.offset.value_or(1);
  auto read = [&]() -> arrow::Result<std::string> {
    ARROW_ASSIGN_OR_RAISE(auto input, store.objects()->open_input(path.string()));
    ARROW_ASSIGN_OR_RAISE(auto buffer, input->ReadAt(offset, 8 + int64_t{dv.size_in_bytes}));
    return buffer->ToString();
  };
  auto framed = read();
  if (!framed.ok()) return with_context(framed.status(), fmt::format("file {}", where));
  const std::string& f = *framed;
  if (f.size() != 8 + static_cast<size_t>(dv.size_in_bytes)) {
    return invalid("file {} ends before the {} bytes at offset {} the descriptor names", where,
                   8 + int64_t{dv.size_in_bytes}, offset);
  }
  const uint32_t size = read_be32(f);
  if (size != static_cast<uint32_t>(dv.size_in_bytes)) {
    return invalid("file {} holds a vector of {} bytes at offset {}, the descriptor says {}",
                   where, size, offset, dv.size_in_bytes);
  }
  std::string data = f.substr(4, size);
  const uint32_t expected = read_be32(std::string_view(f).substr(4 + size));
  const uint32_t actual = arrow::internal::crc32(0, data.data(), data.size());
  if (expected != actual) {
    return invalid("file {} at offset {}: CRC-32 {:08x} does not match the stored {:08x} (corrupt "
                   "file)",
                   where, offset, actual, expected);
  }
  return data;
}

}  // namespace

std::string z85_encode(std::string_view bytes) {
  std::string padded(bytes);
  padded.resize((bytes.size() + 3) / 4 * 4, '\0');
  std::string out;
  out.reserve(padded.size() / 4 * 5);
  for (size_t i = 0; i < padded.size(); i += 4) {
    uint32_t v = read_be32(std::string_view(padded).substr(i, 4));
    char chunk[5];
    for (int k = 4; k >= 0; --k) {
      chunk[k] = kZ85Alphabet[v % 85];
      v /= 85;
    }
    out.append(chunk, 5);
  }
  return out;
}

arrow::Result<std::string> z85_decode(std::string_view text) {
  static const auto kDecode = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    for (int i = 0; i < 85; ++i) t[static_cast<unsigned char>(kZ85Alphabet[i])] = i;
    return t;
  }();
  if (text.size() % 5 != 0) {
    return invalid("'{}' is not Z85: {} characters, not a multiple of 5", text, text.size());
  }
  std::string out;
  out.reserve(text.size() / 5 * 4);
  for (size_t i = 0; i < text.size(); i += 5) {
    uint64_t v = 0;
    for (size_t k = 0; k < 5; ++k) {
      const int d = kDecode[static_cast<unsigned char>(text[i + k])];
      if (d < 0) return invalid("'{}' is not Z85: bad character '{}'", text, text[i + k]);
      v = v * 85 + d;
    }
    if (v > 0xFFFFFFFFull) return invalid("'{}' is not Z85: a group overflows 32 bits", text);
    put_be32(&out, static_cast<uint32_t>(v));
  }
  return out;
}

arrow::Result<std::filesystem::path> deletion_vector_path(const LogStore& store,
                                                          const DeletionVectorDescriptor& dv) {
  if (dv.storage_type == "u") {
    const std::string& s = dv.path_or_inline_dv;
    if (s.size() < kEncodedUuidLength) {
      return invalid("{}: shorter than the 20 characters of an encoded UUID",
                     display_descriptor(dv));
    }
    const std::string prefix = s.substr(0, s.size() - kEncodedUuidLength);
    auto uuid = z85_decode(std::string_view(s).substr(s.size() - kEncodedUuidLength));
    if (!uuid.ok()) return with_context(uuid.status(), display_descriptor(dv));
    const std::string name = "deletion_vector_" + uuid_text(*uuid) + ".bin";
    return prefix.empty() ? store.table_root() / name : store.table_root() / prefix / name;
  }
  if (dv.storage_type == "p") {
    ARROW_ASSIGN_OR_RAISE(auto decoded, uri_decode_path(dv.path_or_inline_dv));
    // file:/x, file:///x -> /x; s3://bucket/key -> bucket/key (the store's namespace).
    if (decoded.rfind("file:", 0) == 0) {
      decoded = decoded.substr(5);
      while (decoded.rfind("//", 0) == 0) decoded = decoded.substr(1);
      return std::filesystem::path(decoded);
    }
    if (auto scheme = decoded.find("://"); scheme != std::string::npos) {
      return std::filesystem::path(decoded.substr(scheme + 3));
    }
    return std::filesystem::path(decoded);
  }
  return invalid("{}: unknown storage type; the protocol defines 'u', 'p' and 'i'",
                 display_descriptor(dv));
}

arrow::Result<std::vector<uint64_t>> read_deletion_vector(const LogStore& store,
                                                          const DeletionVectorDescriptor& dv,
                                                          const std::string& data_file) {
  auto context = [&](const arrow::Status& st) {
    return with_context(st, fmt::format("{}: {} of data file {}", store.location(),
                                        display_descriptor(dv), data_file));
  };
  auto bytes = read_bitmap_bytes(store, dv);
  if (!bytes.ok()) return context(bytes.status());
  auto rows = parse_roaring_bitmap_array(*bytes, static_cast<uint64_t>(std::max<int64_t>(0, dv.cardinality)));
  if (!rows.ok()) return context(rows.status());
  if (static_cast<int64_t>(rows->size()) != dv.cardinality) {
    return context(invalid("the bitmap holds {} rows, the descriptor's cardinality is {}",
                           rows->size(), dv.cardinality));
  }
  return rows;
}

arrow::Result<DeletionVectorDescriptor> write_deletion_vector(const LogStore& store,
                                                              const std::vector<uint64_t>& rows) {
  const std::string data = serialize_roaring_bitmap_array(rows);
  std::string file(1, kFileFormatVersion);
  put_be32(&file, static_cast<uint32_t>(data.size()));
  file += data;
  put_be32(&file, arrow::internal::crc32(0, data.data(), data.size()));
  const std::string uuid = random_uuid();
  ARROW_ASSIGN_OR_RAISE(auto raw, uuid_bytes(uuid));
  const auto path = store.table_root() / ("deletion_vector_" + uuid + ".bin");
  auto put = store.objects()->put_if_absent(path.string(), file);
  if (!put.ok()) return io_failure(put.status(), "cannot write deletion vector", store.display(path));
  if (*put != storage::PutResult::kWritten) {
    return io_error("cannot write deletion vector {}: a file of that name exists",
                    store.display(path));
  }
  DeletionVectorDescriptor dv;
  dv.storage_type = "u";
  dv.path_or_inline_dv = z85_encode(raw);
  dv.offset = 1;
  dv.size_in_bytes = static_cast<int32_t>(data.size());
  dv.cardinality = static_cast<int64_t>(rows.size());
  return dv;
}

int64_t live_records(const Add& file) {
  if (!file.stats) return -1;
  auto stats = nlohmann::json::parse(*file.stats, nullptr, false);
  if (!stats.is_object()) return -1;
  auto n = stats.find("numRecords");
  if (n == stats.end() || !n->is_number_integer()) return -1;
  return n->get<int64_t>() - (file.deletion_vector ? file.deletion_vector->cardinality : 0);
}

}  // namespace sluice::delta
