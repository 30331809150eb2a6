// Confluent-framed Avro -> Arrow builders: per writer id a resolution plan (a flat vector of
// steps), each record first checked against it without appending, then appended.
#include "sluice/format/avro_decoder.h"

#include <arrow/api.h>
#include <arrow/util/decimal.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include "sluice/format/json_record.h"
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "sluice/common/nesting.h"
#include "sluice/common/status.h"
#include "sluice/common/utf8.h"
#include "sluice/format/avro_schema.h"

namespace sluice::format {

namespace {

// Zero-sized items (null, empty records) cost no bytes, so a block's item count alone could
// make a tiny record loop for ages: more items than bytes left is refused above this.
constexpr int64_t kMaxZeroSizeItems = 1 << 20;

// Bounds-checked reads over one record's bytes. Every read returns false instead of reading
// past `end`.
struct Cursor {
  const uint8_t* p;
  const uint8_t* end;

  int64_t remaining() const { return end - p; }

  bool read_long(int64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) return false;
      uint8_t b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *out = static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));  // zigzag
        return true;
      }
    }
    return false;  // more than 10 bytes
  }
  bool read_int(int32_t* out) {
    int64_t v;
    if (!read_long(&v) || v < INT32_MIN || v > INT32_MAX) return false;
    *out = static_cast<int32_t>(v);
    return true;
  }
  bool read_bytes(std::string_view* out) {
    int64_t n;
    if (!read_long(&n) || n < 0 || n > remaining()) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return true;
  }
  bool read_fixed(int32_t n, std::string_view* out) {
    if (n > remaining()) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    p += n;
    return true;
  }
  template <typename T>
  bool read_le(T* out) {
    if (static_cast<int64_t>(sizeof(T)) > remaining()) return false;
    std::memcpy(out, p, sizeof(T));  // Avro floats are little-endian, as is every target we build for
    p += sizeof(T);
    return true;
  }
  bool read_bool(bool* out) {
    if (p >= end || *p > 1) return false;
    *out = *p++ == 1;
    return true;
  }
  // An array or map block header: the item count (0 ends), its byte size skipped over.
  bool read_block_count(int64_t* count) {
    if (!read_long(count)) return false;
    if (*count < 0) {
      int64_t size;
      if (*count == INT64_MIN || !read_long(&size) || size < 0) return false;
      *count = -*count;
    }
    return *count <= remaining() || *count <= kMaxZeroSizeItems;
  }
};

enum class Op : uint8_t {
  kFail,          // the writer's value cannot be read as the reader's type
  kSkip,          // a value nobody wants
  kNull,          // writer null
  kBool,
  kIntToInt32,
  kIntToInt64,
  kIntToFloat,
  kIntToDouble,
  kLongToInt64,
  kLongToFloat,
  kLongToDouble,
  kFloatToFloat,
  kFloatToDouble,
  kDoubleToDouble,
  kBytes,         // string or bytes into a binary builder
  kString,        // string or bytes into a string builder, invalid UTF-8 replaced by U+FFFD
  kEnum,          // symbol index -> the writer's symbol
  kFixed,
  kDecimalBytes,
  kDecimalFixed,
  kDate,
  kTimeMillis,    // int millis -> time64[us]
  kTimeMicros,
  kTimestampMillis,  // long millis -> timestamp[us]
  kTimestampMicros,
  kRecord,
  kArray,
  kMap,
  kWriterUnion,   // branch index, then that branch's step
  kUnionMember,   // a reader union that is a struct of members: one member set
  kDefault,       // the reader field is not in the writer: its default
};

struct FieldStep {
  int reader_field = -1;  // -1: not read (skipped, or rescued at the top level)
  int step = -1;          // how to read the writer field (kSkip when not read)
};

struct Step {
  Op op = Op::kFail;
  int writer_node = -1;
  int child = -1;                      // array items, map values, union member
  int member = 0, member_count = 0;    // kUnionMember
  int32_t size = 0;                    // kFixed, kDecimalFixed
  int32_t precision = 0;               // decimals
  std::vector<FieldStep> fields;       // kRecord, in writer order
  std::vector<FieldStep> defaults;     // kRecord: reader fields missing in the writer
  std::vector<int> branches;           // kWriterUnion: a step per writer branch
  std::shared_ptr<arrow::Array> default_value;  // kDefault: one value
  std::string message;                 // kFail
};

// How one writer schema's records become rows of the reader schema.
struct WriterPlan {
  std::shared_ptr<const AvroSchema> writer;
  std::vector<Step> steps;
  int root = -1;
  std::string error;  // set when no record of this writer can be read
};

std::string kind_name(const AvroSchema& s, int node) {
  const auto& n = s.node(node);
  static const char* kNames[] = {"null", "boolean", "int", "long", "float", "double", "bytes",
                                 "string", "record", "enum", "array", "map", "union", "fixed"};
  std::string name = kNames[static_cast<int>(n.kind)];
  if (!n.name.empty()) name += " " + n.name;
  return name;
}

// Appends a field's JSON default (Avro's JSON encoding) to a builder of the reader's type.
arrow::Status append_json_default(arrow::ArrayBuilder& b, const AvroSchema& s, int node, const nlohmann::json& j) {
  const auto& n = s.node(node);
  if (n.kind == AvroKind::kUnion) {
    // A union's default belongs to its first branch.
    const auto& first = s.node(n.children[0]);
    if (first.kind == AvroKind::kNull || j.is_null()) return b.AppendNull();
    if (b.type()->id() == arrow::Type::STRUCT && nullable_union_branch(s, node) < 0) {
      auto& sb = static_cast<arrow::StructBuilder&>(b);
      ARROW_RETURN_NOT_OK(sb.Append());
      int member = 0;
      for (int c : n.children) {
        if (s.node(c).kind == AvroKind::kNull) continue;
        if (c == n.children[0]) {
          ARROW_RETURN_NOT_OK(append_json_default(*sb.field_builder(member), s, c, j));
        } else {
          ARROW_RETURN_NOT_OK(sb.field_builder(member)->AppendNull());
        }
        ++member;
      }
      return arrow::Status::OK();
    }
    return append_json_default(b, s, n.children[0], j);
  }
  if (j.is_null()) return b.AppendNull();
  auto latin1 = [](const std::string& text) {
    // Avro writes bytes defaults as a string whose code points are the byte values.
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) {
        out += static_cast<char>(c);
      } else if ((c & 0xe0) == 0xc0 && i + 1 < text.size()) {
        out += static_cast<char>(((c & 0x1f) << 6) | (static_cast<unsigned char>(text[++i]) & 0x3f));
      }
    }
    return out;
  };
  try {
    switch (b.type()->id()) {
      case arrow::Type::BOOL: return static_cast<arrow::BooleanBuilder&>(b).Append(j.get<bool>());
      case arrow::Type::INT32: return static_cast<arrow::Int32Builder&>(b).Append(j.get<int32_t>());
      case arrow::Type::INT64: return static_cast<arrow::Int64Builder&>(b).Append(j.get<int64_t>());
      case arrow::Type::FLOAT: return static_cast<arrow::FloatBuilder&>(b).Append(j.get<float>());
      case arrow::Type::DOUBLE: return static_cast<arrow::DoubleBuilder&>(b).Append(j.get<double>());
      case arrow::Type::DATE32: return static_cast<arrow::Date32Builder&>(b).Append(j.get<int32_t>());
      case arrow::Type::TIME64:
      case arrow::Type::TIMESTAMP: {  // int64 micros in both; *-millis defaults are milliseconds
        int64_t v = j.get<int64_t>();
        if ((n.logical == AvroLogical::kTimeMillis || n.logical == AvroLogical::kTimestampMillis ||
             n.logical == AvroLogical::kLocalTimestampMillis) && __builtin_mul_overflow(v, int64_t{1000}, &v)) {
          return invalid("millisecond default {} is out of range", j.get<int64_t>());
        }
        if (b.type()->id() == arrow::Type::TIME64) return static_cast<arrow::Time64Builder&>(b).Append(v);
        return static_cast<arrow::TimestampBuilder&>(b).Append(v);
      }
      case arrow::Type::STRING: return static_cast<arrow::StringBuilder&>(b).Append(j.get<std::string>());
      case arrow::Type::BINARY: return static_cast<arrow::BinaryBuilder&>(b).Append(latin1(j.get<std::string>()));
      case arrow::Type::FIXED_SIZE_BINARY: {
        std::string bytes = latin1(j.get<std::string>());
        if (static_cast<int32_t>(bytes.size()) != n.fixed_size) return invalid("default of the wrong size");
        return static_cast<arrow::FixedSizeBinaryBuilder&>(b).Append(bytes);
      }
      case arrow::Type::DECIMAL128: {
        std::string bytes = latin1(j.get<std::string>());
        if (bytes.empty() || bytes.size() > 16) return invalid("decimal default of {} bytes", bytes.size());
        ARROW_ASSIGN_OR_RAISE(auto v, arrow::Decimal128::FromBigEndian(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                                      static_cast<int32_t>(bytes.size())));
        return static_cast<arrow::Decimal128Builder&>(b).Append(v);
      }
      case arrow::Type::LIST: {
        auto& lb = static_cast<arrow::ListBuilder&>(b);
        ARROW_RETURN_NOT_OK(lb.Append());
        for (const auto& item : j) ARROW_RETURN_NOT_OK(append_json_default(*lb.value_builder(), s, n.children[0], item));
        return arrow::Status::OK();
      }
      case arrow::Type::MAP: {
        auto& mb = static_cast<arrow::MapBuilder&>(b);
        ARROW_RETURN_NOT_OK(mb.Append());
        for (const auto& [k, v] : j.items()) {
          ARROW_RETURN_NOT_OK(static_cast<arrow::StringBuilder&>(*mb.key_builder()).Append(k));
          ARROW_RETURN_NOT_OK(append_json_default(*mb.item_builder(), s, n.children[0], v));
        }
        return arrow::Status::OK();
      }
      case arrow::Type::STRUCT: {
        auto& sb = static_cast<arrow::StructBuilder&>(b);
        ARROW_RETURN_NOT_OK(sb.Append());
        for (size_t i = 0; i < n.fields.size(); ++i) {
          const auto& f = n.fields[i];
          auto it = j.find(f.name);
          if (it != j.end()) {
            ARROW_RETURN_NOT_OK(append_json_default(*sb.field_builder(static_cast<int>(i)), s, f.node, *it));
          } else if (f.has_default) {
            ARROW_RETURN_NOT_OK(append_json_default(*sb.field_builder(static_cast<int>(i)), s, f.node,
                                                    nlohmann::json::parse(f.default_json)));
          } else {
            ARROW_RETURN_NOT_OK(sb.field_builder(static_cast<int>(i))->AppendNull());
          }
        }
        return arrow::Status::OK();
      }
      default: return invalid("a default for {} is not supported", b.type()->ToString());
    }
  } catch (const nlohmann::json::exception& e) {
    return invalid("default {} does not fit {}: {}", j.dump(), kind_name(s, node), e.what());
  }
}

// Builds the steps that read a writer schema as the reader schema (Avro schema resolution).
class Planner {
 public:
  Planner(const AvroSchema& writer, const AvroSchema& reader, std::vector<Step>* steps)
      : w_(writer), r_(reader), steps_(*steps) {}

  int add(Step s) {
    steps_.push_back(std::move(s));
    return static_cast<int>(steps_.size() - 1);
  }

  int fail(int w, int r) {
    Step s;
    s.op = Op::kFail;
    s.writer_node = w;
    s.message = fmt::format("writer type {} cannot be read as reader type {}", kind_name(w_, w), kind_name(r_, r));
    return add(std::move(s));
  }

  int skip(int w) {
    Step s;
    s.op = Op::kSkip;
    s.writer_node = w;
    return add(std::move(s));
  }

  bool is_fail(int step) const { return steps_[static_cast<size_t>(step)].op == Op::kFail; }

  // The reader union's only non-null branch, or -1.
  int single_branch(int r) const {
    int found = -1;
    for (int c : r_.node(r).children) {
      if (r_.node(c).kind == AvroKind::kNull) continue;
      if (found >= 0) return -1;
      found = c;
    }
    return found;
  }

  arrow::Result<int> resolve(int w, int r) {
    const AvroNode& wn = w_.node(w);
    const AvroNode& rn = r_.node(r);
    if (wn.kind == AvroKind::kUnion) {
      Step s;
      s.op = Op::kWriterUnion;
      s.writer_node = w;
      for (int branch : wn.children) {
        ARROW_ASSIGN_OR_RAISE(int b, resolve(branch, r));
        s.branches.push_back(b);
      }
      return add(std::move(s));
    }
    if (wn.kind == AvroKind::kNull) {
      Step s;
      s.op = Op::kNull;
      s.writer_node = w;
      return add(std::move(s));
    }
    if (rn.kind == AvroKind::kUnion) {
      if (int only = single_branch(r); only >= 0) return resolve(w, only);
      // A struct of members: the first reader branch the writer's type resolves to.
      int member = 0, count = 0;
      for (int c : rn.children) count += r_.node(c).kind != AvroKind::kNull;
      for (int c : rn.children) {
        if (r_.node(c).kind == AvroKind::kNull) continue;
        size_t mark = steps_.size();
        ARROW_ASSIGN_OR_RAISE(int child, resolve(w, c));
        if (!is_fail(child)) {
          Step s;
          s.op = Op::kUnionMember;
          s.writer_node = w;
          s.child = child;
          s.member = member;
          s.member_count = count;
          return add(std::move(s));
        }
        steps_.resize(mark);
        ++member;
      }
      return fail(w, r);
    }
    Step s;
    s.writer_node = w;
    const AvroKind wk = wn.kind, rk = rn.kind;
    auto with = [&](Op op) {
      s.op = op;
      return add(std::move(s));
    };
    // A reader decimal (bytes or fixed) reads a writer decimal of the same scale.
    auto decimal = [&]() -> arrow::Result<int> {
      if (wn.logical != AvroLogical::kDecimal || wn.scale != rn.scale) return fail(w, r);
      s.precision = rn.precision;
      if (wk == AvroKind::kBytes) return with(Op::kDecimalBytes);
      if (wk != AvroKind::kFixed) return fail(w, r);
      s.size = wn.fixed_size;
      return with(Op::kDecimalFixed);
    };
    switch (rk) {
      case AvroKind::kNull: return fail(w, r);
      case AvroKind::kBoolean: return wk == AvroKind::kBoolean ? with(Op::kBool) : fail(w, r);
      case AvroKind::kInt:
        if (wk != AvroKind::kInt) return fail(w, r);
        if (rn.logical == AvroLogical::kDate) return with(Op::kDate);
        if (rn.logical == AvroLogical::kTimeMillis) return with(Op::kTimeMillis);
        return with(Op::kIntToInt32);
      case AvroKind::kLong: {
        if (rn.logical == AvroLogical::kTimeMicros) return wk == AvroKind::kLong ? with(Op::kTimeMicros) : fail(w, r);
        bool ts = rn.logical == AvroLogical::kTimestampMillis || rn.logical == AvroLogical::kTimestampMicros ||
                  rn.logical == AvroLogical::kLocalTimestampMillis || rn.logical == AvroLogical::kLocalTimestampMicros;
        if (ts) {
          if (wk != AvroKind::kLong) return fail(w, r);
          // The writer's unit when it says one, else the reader's.
          AvroLogical unit = wn.logical != AvroLogical::kNone ? wn.logical : rn.logical;
          bool millis = unit == AvroLogical::kTimestampMillis || unit == AvroLogical::kLocalTimestampMillis;
          return with(millis ? Op::kTimestampMillis : Op::kTimestampMicros);
        }
        if (wk == AvroKind::kInt) return with(Op::kIntToInt64);
        return wk == AvroKind::kLong ? with(Op::kLongToInt64) : fail(w, r);
      }
      case AvroKind::kFloat:
        if (wk == AvroKind::kInt) return with(Op::kIntToFloat);
        if (wk == AvroKind::kLong) return with(Op::kLongToFloat);
        return wk == AvroKind::kFloat ? with(Op::kFloatToFloat) : fail(w, r);
      case AvroKind::kDouble:
        if (wk == AvroKind::kInt) return with(Op::kIntToDouble);
        if (wk == AvroKind::kLong) return with(Op::kLongToDouble);
        if (wk == AvroKind::kFloat) return with(Op::kFloatToDouble);
        return wk == AvroKind::kDouble ? with(Op::kDoubleToDouble) : fail(w, r);
      case AvroKind::kBytes:
      case AvroKind::kString:
        if (rn.logical == AvroLogical::kDecimal) return decimal();
        if (rk == AvroKind::kString && wk == AvroKind::kEnum) return with(Op::kEnum);
        if (wk != AvroKind::kBytes && wk != AvroKind::kString) return fail(w, r);
        return with(rk == AvroKind::kString ? Op::kString : Op::kBytes);
      case AvroKind::kEnum:
        return wk == AvroKind::kEnum ? with(Op::kEnum) : wk == AvroKind::kString ? with(Op::kString) : fail(w, r);
      case AvroKind::kFixed:
        if (rn.logical == AvroLogical::kDecimal) return decimal();
        if (wk != AvroKind::kFixed || wn.fixed_size != rn.fixed_size) return fail(w, r);
        s.size = wn.fixed_size;
        return with(Op::kFixed);
      case AvroKind::kArray:
      case AvroKind::kMap: {
        if (wk != rk) return fail(w, r);
        ARROW_ASSIGN_OR_RAISE(int child, resolve(wn.children[0], rn.children[0]));
        s.child = child;
        return with(rk == AvroKind::kArray ? Op::kArray : Op::kMap);
      }
      case AvroKind::kRecord:
        if (wk != AvroKind::kRecord) return fail(w, r);
        return record(w, r, /*top_level=*/false);
      case AvroKind::kUnion: break;
    }
    return fail(w, r);
  }

  // At the top level a field whose types do not resolve is rescued rather than failing every
  // record; inside, it fails the records that carry it.
  arrow::Result<int> record(int w, int r, bool top_level) {
    const AvroNode& wn = w_.node(w);
    const AvroNode& rn = r_.node(r);
    Step s;
    s.op = Op::kRecord;
    s.writer_node = w;
    std::vector<bool> seen(rn.fields.size(), false);
    for (const auto& wf : wn.fields) {
      FieldStep fs;
      for (size_t i = 0; i < rn.fields.size(); ++i) {
        if (rn.fields[i].name == wf.name) fs.reader_field = static_cast<int>(i);
      }
      if (fs.reader_field >= 0) {
        ARROW_ASSIGN_OR_RAISE(fs.step, resolve(wf.node, rn.fields[static_cast<size_t>(fs.reader_field)].node));
        if (top_level && is_fail(fs.step)) {
          fs.reader_field = -1;  // rescued; the reader column stays null
          fs.step = skip(wf.node);
        } else {
          seen[static_cast<size_t>(fs.reader_field)] = true;
        }
      } else {
        fs.step = skip(wf.node);
      }
      s.fields.push_back(fs);
    }
    for (size_t i = 0; i < rn.fields.size(); ++i) {
      if (seen[i]) continue;
      const auto& rf = rn.fields[i];
      // Rescued-but-present fields are null, not defaulted: the writer did have a value.
      bool rescued = false;
      for (const auto& wf : wn.fields) rescued |= wf.name == rf.name;
      if (!rf.has_default || rescued) {
        s.defaults.push_back({static_cast<int>(i), -1});
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto type, avro_to_arrow(r_, rf.node));
      std::unique_ptr<arrow::ArrayBuilder> b;
      ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &b));
      nlohmann::json dj;
      try {
        dj = nlohmann::json::parse(rf.default_json);
      } catch (const nlohmann::json::exception& e) {
        return invalid("reader field '{}': default is not JSON: {}", rf.name, e.what());
      }
      auto st = append_json_default(*b, r_, rf.node, dj);
      if (!st.ok()) return invalid("reader field '{}': {}", rf.name, st.message());
      Step d;
      d.op = Op::kDefault;
      ARROW_RETURN_NOT_OK(b->Finish(&d.default_value));
      s.defaults.push_back({static_cast<int>(i), add(std::move(d))});
    }
    return add(std::move(s));
  }

 private:
  const AvroSchema& w_;
  const AvroSchema& r_;
  std::vector<Step>& steps_;
};

arrow::Status truncated(const char* what) { return arrow::Status::Invalid(what); }

// Skips one writer value, checking every length and index.
arrow::Status skip_value(const AvroSchema& s, int node, Cursor& c) {
  const AvroNode& n = s.node(node);
  std::string_view sv;
  int64_t v;
  switch (n.kind) {
    case AvroKind::kNull: return arrow::Status::OK();
    case AvroKind::kBoolean: {
      bool b;
      return c.read_bool(&b) ? arrow::Status::OK() : truncated("bad boolean");
    }
    case AvroKind::kInt:
    case AvroKind::kLong:
    case AvroKind::kEnum:
      if (!c.read_long(&v)) return truncated("truncated or overlong varint");
      if (n.kind == AvroKind::kEnum && (v < 0 || v >= static_cast<int64_t>(n.symbols.size()))) {
        return invalid("enum {} index {} out of range", n.name, v);
      }
      return arrow::Status::OK();
    case AvroKind::kFloat: return c.read_fixed(4, &sv) ? arrow::Status::OK() : truncated("truncated float");
    case AvroKind::kDouble: return c.read_fixed(8, &sv) ? arrow::Status::OK() : truncated("truncated double");
    case AvroKind::kBytes:
    case AvroKind::kString: return c.read_bytes(&sv) ? arrow::Status::OK() : truncated("bad length or truncated bytes");
    case AvroKind::kFixed: return c.read_fixed(n.fixed_size, &sv) ? arrow::Status::OK() : truncated("truncated fixed");
    case AvroKind::kRecord:
      for (const auto& f : n.fields) ARROW_RETURN_NOT_OK(skip_value(s, f.node, c));
      return arrow::Status::OK();
    case AvroKind::kArray:
    case AvroKind::kMap:
      for (;;) {
        int64_t count;
        if (!c.read_block_count(&count)) return truncated("bad array/map block count");
        if (count == 0) return arrow::Status::OK();
        for (int64_t i = 0; i < count; ++i) {
          if (n.kind == AvroKind::kMap && !c.read_bytes(&sv)) return truncated("truncated map key");
          ARROW_RETURN_NOT_OK(skip_value(s, n.children[0], c));
        }
      }
    case AvroKind::kUnion:
      if (!c.read_long(&v)) return truncated("truncated union index");
      if (v < 0 || v >= static_cast<int64_t>(n.children.size())) return invalid("union branch {} out of range", v);
      return skip_value(s, n.children[static_cast<size_t>(v)], c);
  }
  return arrow::Status::OK();
}

// Writes one writer value as JSON (for `_rescued_data`): unions as their branch's value, bytes
// as ISO-8859-1 text (Avro's JSON encoding).
void write_json(const AvroSchema& s, int node, Cursor& c, rapidjson::Writer<rapidjson::StringBuffer>& out) {
  const AvroNode& n = s.node(node);
  std::string_view sv;
  int64_t v = 0;
  switch (n.kind) {
    case AvroKind::kNull: out.Null(); return;
    case AvroKind::kBoolean: {
      bool b = false;
      c.read_bool(&b);
      out.Bool(b);
      return;
    }
    case AvroKind::kInt:
    case AvroKind::kLong: c.read_long(&v); out.Int64(v); return;
    case AvroKind::kEnum:
      c.read_long(&v);
      out.String(n.symbols[static_cast<size_t>(v)].c_str());
      return;
    case AvroKind::kFloat: {
      float f = 0;
      c.read_le(&f);
      if (std::isfinite(f)) out.Double(f); else out.Null();
      return;
    }
    case AvroKind::kDouble: {
      double d = 0;
      c.read_le(&d);
      if (std::isfinite(d)) out.Double(d); else out.Null();
      return;
    }
    case AvroKind::kString: {
      c.read_bytes(&sv);
      std::string scratch;
      sv = valid_utf8(sv, &scratch);
      out.String(sv.data(), static_cast<rapidjson::SizeType>(sv.size()));
      return;
    }
    case AvroKind::kBytes:
    case AvroKind::kFixed: {
      if (n.kind == AvroKind::kBytes) c.read_bytes(&sv); else c.read_fixed(n.fixed_size, &sv);
      std::string text;
      for (unsigned char ch : sv) {
        if (ch < 0x80) {
          text += static_cast<char>(ch);
        } else {
          text += static_cast<char>(0xc0 | (ch >> 6));
          text += static_cast<char>(0x80 | (ch & 0x3f));
        }
      }
      out.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
      return;
    }
    case AvroKind::kRecord:
      out.StartObject();
      for (const auto& f : n.fields) {
        out.Key(f.name.data(), static_cast<rapidjson::SizeType>(f.name.size()));
        write_json(s, f.node, c, out);
      }
      out.EndObject();
      return;
    case AvroKind::kArray:
    case AvroKind::kMap:
      if (n.kind == AvroKind::kArray) out.StartArray(); else out.StartObject();
      for (;;) {
        int64_t count = 0;
        if (!c.read_block_count(&count) || count == 0) break;
        for (int64_t i = 0; i < count; ++i) {
          if (n.kind == AvroKind::kMap) {
            c.read_bytes(&sv);
            std::string scratch;
            sv = valid_utf8(sv, &scratch);
            out.Key(sv.data(), static_cast<rapidjson::SizeType>(sv.size()));
          }
          write_json(s, n.children[0], c, out);
        }
      }
      if (n.kind == AvroKind::kArray) out.EndArray(); else out.EndObject();
      return;
    case AvroKind::kUnion:
      c.read_long(&v);
      write_json(s, n.children[static_cast<size_t>(v)], c, out);
      return;
  }
}

class AvroPayloadDecoder final : public PayloadDecoder {
 public:
  AvroPayloadDecoder(std::shared_ptr<SchemaRegistryClient> registry, std::shared_ptr<const AvroSchema> reader,
                     std::shared_ptr<arrow::DataType> row_type, std::shared_ptr<arrow::Schema> out_schema,
                     DecoderOptions options)
      : registry_(std::move(registry)),
        reader_(std::move(reader)),
        row_type_(std::move(row_type)),
        out_schema_(std::move(out_schema)),
        options_(options) {}

  std::shared_ptr<arrow::Schema> schema() const override { return out_schema_; }

  arrow::Result<DecodedBatch> decode(const arrow::Array& payloads) override {
    if (payloads.type_id() != arrow::Type::STRING && payloads.type_id() != arrow::Type::BINARY) {
      return invalid("the Avro decoder needs a binary column, not {}", payloads.type()->ToString());
    }
    const auto& input = static_cast<const arrow::BinaryArray&>(payloads);
    std::unique_ptr<arrow::ArrayBuilder> builder;
    ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), row_type_, &builder));
    auto& rows = static_cast<arrow::StructBuilder&>(*builder);
    ARROW_RETURN_NOT_OK(rows.Reserve(input.length()));
    arrow::StringBuilder rescued;
    DecodedBatch out;
    std::unordered_map<int32_t, std::string> missing_ids;  // ids the registry does not have, this batch
    auto null_row = [&]() -> arrow::Status {
      ARROW_RETURN_NOT_OK(rows.AppendNull());
      return options_.rescued_data_column ? rescued.AppendNull() : arrow::Status::OK();
    };
    auto error_row = [&](int64_t row, std::string message) -> arrow::Status {
      out.errors.push_back({row, std::move(message)});
      return null_row();
    };

    for (int64_t row = 0; row < input.length(); ++row) {
      if (input.IsNull(row)) {
        ARROW_RETURN_NOT_OK(null_row());
        continue;
      }
      std::string_view bytes = input.GetView(row);
      if (bytes.size() < 5) {
        ARROW_RETURN_NOT_OK(error_row(row, fmt::format("Avro record of {} bytes is shorter than the 5-byte "
                                                       "Confluent header", bytes.size())));
        continue;
      }
      if (bytes[0] != 0) {
        ARROW_RETURN_NOT_OK(error_row(row, fmt::format("Avro record starts with magic byte {}, not 0: not in the "
                                                       "Confluent wire format", static_cast<uint8_t>(bytes[0]))));
        continue;
      }
      const auto* u = reinterpret_cast<const uint8_t*>(bytes.data());
      const int32_t id = static_cast<int32_t>((uint32_t{u[1]} << 24) | (uint32_t{u[2]} << 16) |
                                              (uint32_t{u[3]} << 8) | uint32_t{u[4]});
      if (auto m = missing_ids.find(id); m != missing_ids.end()) {
        ARROW_RETURN_NOT_OK(error_row(row, m->second));
        continue;
      }
      auto plan_result = plan_for(id);
      if (!plan_result.ok()) {
        if (is_retryable(plan_result.status())) return plan_result.status();
        std::string message = fmt::format("schema id {}: {}", id, plan_result.status().message());
        if (plan_result.status().IsKeyError()) missing_ids.emplace(id, message);
        ARROW_RETURN_NOT_OK(error_row(row, std::move(message)));
        continue;
      }
      const WriterPlan& plan = **plan_result;
      if (!plan.error.empty()) {
        ARROW_RETURN_NOT_OK(error_row(row, fmt::format("schema id {}: {}", id, plan.error)));
        continue;
      }
      // Check the whole record first, so a bad one never leaves half-appended values.
      Cursor check{u + 5, u + bytes.size()};
      auto st = run<false>(plan, plan.root, check, nullptr);
      if (st.ok() && check.p != check.end) {
        st = invalid("{} trailing bytes after the record", check.end - check.p);
      }
      if (!st.ok()) {
        ARROW_RETURN_NOT_OK(error_row(row, fmt::format("schema id {}: bad Avro record at byte {}: {}", id,
                                                       5 + (check.p - (u + 5)), st.message())));
        continue;
      }
      Cursor c{u + 5, u + bytes.size()};
      ARROW_RETURN_NOT_OK(run<true>(plan, plan.root, c, &rows));
      if (options_.rescued_data_column) ARROW_RETURN_NOT_OK(append_rescued(plan, u + 5, u + bytes.size(), rescued));
    }
    std::shared_ptr<arrow::Array> struct_array;
    ARROW_RETURN_NOT_OK(rows.Finish(&struct_array));
    // Flatten folds the row nulls (error and null records) into every column.
    ARROW_ASSIGN_OR_RAISE(auto columns, static_cast<const arrow::StructArray&>(*struct_array).Flatten());
    if (options_.rescued_data_column) {
      std::shared_ptr<arrow::Array> r;
      ARROW_RETURN_NOT_OK(rescued.Finish(&r));
      columns.push_back(std::move(r));
    }
    out.rows = arrow::RecordBatch::Make(out_schema_, input.length(), std::move(columns));
    return out;
  }

 private:
  arrow::Result<const WriterPlan*> plan_for(int32_t id) {
    if (auto it = plans_.find(id); it != plans_.end()) return it->second.get();
    ARROW_ASSIGN_OR_RAISE(auto registered, registry_->schema_by_id(id));
    auto plan = std::make_unique<WriterPlan>();
    auto writer = parse_avro_schema(registered.schema);
    if (!writer.ok()) {
      plan->error = fmt::format("writer schema: {}", writer.status().message());
    } else if ((*writer)->node((*writer)->root).kind != AvroKind::kRecord) {
      plan->writer = *writer;
      plan->error = fmt::format("writer schema is a {}, not a record", kind_name(**writer, (*writer)->root));
    } else {
      plan->writer = *writer;
      Planner planner(*plan->writer, *reader_, &plan->steps);
      auto root = planner.record(plan->writer->root, reader_->root, /*top_level=*/true);
      if (!root.ok()) {
        plan->error = fmt::format("cannot read the writer schema as the reader schema: {}", root.status().message());
      } else {
        plan->root = *root;
      }
    }
    auto* raw = plan.get();
    plans_.emplace(id, std::move(plan));
    return raw;
  }

  // Walks the record again for the top-level writer fields nobody reads.
  arrow::Status append_rescued(const WriterPlan& plan, const uint8_t* begin, const uint8_t* end,
                               arrow::StringBuilder& rescued) {
    const Step& root = plan.steps[static_cast<size_t>(plan.root)];
    const AvroNode& wn = plan.writer->node(root.writer_node);
    bool any = false;
    for (const auto& fs : root.fields) any |= fs.reader_field < 0;
    if (!any) return rescued.AppendNull();
    text_.Clear();
    json_.Reset(text_);
    json_.StartObject();
    Cursor c{begin, end};
    for (size_t i = 0; i < root.fields.size(); ++i) {
      const auto& wf = wn.fields[i];
      if (root.fields[i].reader_field < 0) {
        json_.Key(wf.name.data(), static_cast<rapidjson::SizeType>(wf.name.size()));
        write_json(*plan.writer, wf.node, c, json_);
      } else {
        ARROW_RETURN_NOT_OK(skip_value(*plan.writer, wf.node, c));
      }
    }
    json_.EndObject();
    return rescued.Append(text_.GetString(), static_cast<int32_t>(text_.GetSize()));
  }

  // With kAppend false, only checks that the bytes decode (b is null); with kAppend true,
  // appends to b, which has the step's reader type.
  template <bool kAppend>
  arrow::Status run(const WriterPlan& plan, int index, Cursor& c, arrow::ArrayBuilder* b) {
    const Step& s = plan.steps[static_cast<size_t>(index)];
    const AvroSchema& w = *plan.writer;
    int64_t l = 0;
    int32_t i = 0;
    std::string_view sv;
    switch (s.op) {
      case Op::kFail: return arrow::Status::Invalid(s.message);
      case Op::kSkip: return skip_value(w, s.writer_node, c);
      case Op::kNull:
        if constexpr (kAppend) return b->AppendNull();
        return arrow::Status::OK();
      case Op::kBool: {
        bool v;
        if (!c.read_bool(&v)) return truncated("bad boolean");
        if constexpr (kAppend) return static_cast<arrow::BooleanBuilder*>(b)->Append(v);
        return arrow::Status::OK();
      }
      case Op::kIntToInt32:
      case Op::kDate:
        if (!c.read_int(&i)) return truncated("truncated or out-of-range int");
        if constexpr (kAppend) {
          if (s.op == Op::kDate) return static_cast<arrow::Date32Builder*>(b)->Append(i);
          return static_cast<arrow::Int32Builder*>(b)->Append(i);
        }
        return arrow::Status::OK();
      case Op::kIntToInt64:
      case Op::kIntToFloat:
      case Op::kIntToDouble:
      case Op::kTimeMillis:
        if (!c.read_int(&i)) return truncated("truncated or out-of-range int");
        if constexpr (kAppend) {
          if (s.op == Op::kIntToInt64) return static_cast<arrow::Int64Builder*>(b)->Append(i);
          if (s.op == Op::kIntToFloat) return static_cast<arrow::FloatBuilder*>(b)->Append(static_cast<float>(i));
          if (s.op == Op::kIntToDouble) return static_cast<arrow::DoubleBuilder*>(b)->Append(i);
          return static_cast<arrow::Time64Builder*>(b)->Append(int64_t{i} * 1000);
        }
        return arrow::Status::OK();
      case Op::kLongToInt64:
      case Op::kLongToFloat:
      case Op::kLongToDouble:
      case Op::kTimeMicros:
      case Op::kTimestampMicros:
        if (!c.read_long(&l)) return truncated("truncated or overlong varint");
        if constexpr (kAppend) {
          if (s.op == Op::kLongToInt64) return static_cast<arrow::Int64Builder*>(b)->Append(l);
          if (s.op == Op::kLongToFloat) return static_cast<arrow::FloatBuilder*>(b)->Append(static_cast<float>(l));
          if (s.op == Op::kLongToDouble) return static_cast<arrow::DoubleBuilder*>(b)->Append(static_cast<double>(l));
          if (s.op == Op::kTimeMicros) return static_cast<arrow::Time64Builder*>(b)->Append(l);
          return static_cast<arrow::TimestampBuilder*>(b)->Append(l);
        }
        return arrow::Status::OK();
      case Op::kTimestampMillis:
        if (!c.read_long(&l)) return truncated("truncated or overlong varint");
        if (l > INT64_MAX / 1000 || l < INT64_MIN / 1000) return invalid("timestamp-millis {} out of range", l);
        if constexpr (kAppend) return static_cast<arrow::TimestampBuilder*>(b)->Append(l * 1000);
        return arrow::Status::OK();
      case Op::kFloatToFloat:
      case Op::kFloatToDouble: {
        float f;
        if (!c.read_le(&f)) return truncated("truncated float");
        if constexpr (kAppend) {
          if (s.op == Op::kFloatToFloat) return static_cast<arrow::FloatBuilder*>(b)->Append(f);
          return static_cast<arrow::DoubleBuilder*>(b)->Append(f);
        }
        return arrow::Status::OK();
      }
      case Op::kDoubleToDouble: {
        double d;
        if (!c.read_le(&d)) return truncated("truncated double");
        if constexpr (kAppend) return static_cast<arrow::DoubleBuilder*>(b)->Append(d);
        return arrow::Status::OK();
      }
      case Op::kBytes:
        if (!c.read_bytes(&sv)) return truncated("bad length or truncated string/bytes");
        if constexpr (kAppend) return static_cast<arrow::BinaryBuilder*>(b)->Append(sv);
        return arrow::Status::OK();
      case Op::kString:
        if (!c.read_bytes(&sv)) return truncated("bad length or truncated string/bytes");
        if constexpr (kAppend) return static_cast<arrow::StringBuilder*>(b)->Append(valid_utf8(sv, &utf8_scratch_));
        return arrow::Status::OK();
      case Op::kEnum: {
        const auto& symbols = w.node(s.writer_node).symbols;
        if (!c.read_long(&l)) return truncated("truncated enum index");
        if (l < 0 || l >= static_cast<int64_t>(symbols.size())) return invalid("enum index {} out of range", l);
        if constexpr (kAppend) return static_cast<arrow::StringBuilder*>(b)->Append(symbols[static_cast<size_t>(l)]);
        return arrow::Status::OK();
      }
      case Op::kFixed:
        if (!c.read_fixed(s.size, &sv)) return truncated("truncated fixed");
        if constexpr (kAppend) return static_cast<arrow::FixedSizeBinaryBuilder*>(b)->Append(sv);
        return arrow::Status::OK();
      case Op::kDecimalBytes:
      case Op::kDecimalFixed: {
        bool ok = s.op == Op::kDecimalBytes ? c.read_bytes(&sv) : c.read_fixed(s.size, &sv);
        if (!ok) return truncated("truncated decimal");
        if (sv.empty() || sv.size() > 16) return invalid("decimal of {} bytes (1 to 16 supported)", sv.size());
        ARROW_ASSIGN_OR_RAISE(auto v, arrow::Decimal128::FromBigEndian(reinterpret_cast<const uint8_t*>(sv.data()),
                                                                      static_cast<int32_t>(sv.size())));
        if (!v.FitsInPrecision(s.precision)) return invalid("decimal {} exceeds precision {}", v.ToIntegerString(), s.precision);
        if constexpr (kAppend) return static_cast<arrow::Decimal128Builder*>(b)->Append(v);
        return arrow::Status::OK();
      }
      case Op::kRecord: {
        arrow::StructBuilder* sb = static_cast<arrow::StructBuilder*>(b);
        if constexpr (kAppend) ARROW_RETURN_NOT_OK(sb->Append());
        for (const auto& f : s.fields) {
          arrow::ArrayBuilder* child = nullptr;
          if constexpr (kAppend) {
            if (f.reader_field >= 0) child = sb->field_builder(f.reader_field);
          }
          if (f.reader_field < 0) {
            ARROW_RETURN_NOT_OK(skip_value(w, plan.steps[static_cast<size_t>(f.step)].writer_node, c));
          } else {
            ARROW_RETURN_NOT_OK(run<kAppend>(plan, f.step, c, child));
          }
        }
        if constexpr (kAppend) {
          for (const auto& d : s.defaults) {
            auto* child = sb->field_builder(d.reader_field);
            if (d.step < 0) {
              ARROW_RETURN_NOT_OK(child->AppendNull());
            } else {
              ARROW_RETURN_NOT_OK(child->AppendArraySlice(*plan.steps[static_cast<size_t>(d.step)].default_value->data(), 0, 1));
            }
          }
        }
        return arrow::Status::OK();
      }
      case Op::kArray:
      case Op::kMap: {
        arrow::ArrayBuilder* items = nullptr;
        arrow::StringBuilder* keys = nullptr;
        if constexpr (kAppend) {
          if (s.op == Op::kArray) {
            auto* lb = static_cast<arrow::ListBuilder*>(b);
            ARROW_RETURN_NOT_OK(lb->Append());
            items = lb->value_builder();
          } else {
            auto* mb = static_cast<arrow::MapBuilder*>(b);
            ARROW_RETURN_NOT_OK(mb->Append());
            keys = static_cast<arrow::StringBuilder*>(mb->key_builder());
            items = mb->item_builder();
          }
        }
        for (;;) {
          int64_t count;
          if (!c.read_block_count(&count)) return truncated("bad array/map block count");
          if (count == 0) return arrow::Status::OK();
          for (int64_t k = 0; k < count; ++k) {
            if (s.op == Op::kMap) {
              if (!c.read_bytes(&sv)) return truncated("truncated map key");
              if constexpr (kAppend) ARROW_RETURN_NOT_OK(keys->Append(valid_utf8(sv, &utf8_scratch_)));
            }
            ARROW_RETURN_NOT_OK(run<kAppend>(plan, s.child, c, items));
          }
        }
      }
      case Op::kWriterUnion:
        if (!c.read_long(&l)) return truncated("truncated union index");
        if (l < 0 || l >= static_cast<int64_t>(s.branches.size())) return invalid("union branch {} out of range", l);
        return run<kAppend>(plan, s.branches[static_cast<size_t>(l)], c, b);
      case Op::kUnionMember: {
        arrow::StructBuilder* sb = static_cast<arrow::StructBuilder*>(b);
        if constexpr (kAppend) {
          ARROW_RETURN_NOT_OK(sb->Append());
          for (int m = 0; m < s.member_count; ++m) {
            if (m != s.member) ARROW_RETURN_NOT_OK(sb->field_builder(m)->AppendNull());
          }
          return run<kAppend>(plan, s.child, c, sb->field_builder(s.member));
        }
        return run<kAppend>(plan, s.child, c, nullptr);
      }
      case Op::kDefault:
        if constexpr (kAppend) return b->AppendArraySlice(*s.default_value->data(), 0, 1);
        return arrow::Status::OK();
    }
    return arrow::Status::OK();
  }

  std::shared_ptr<SchemaRegistryClient> registry_;
  std::shared_ptr<const AvroSchema> reader_;
  std::shared_ptr<arrow::DataType> row_type_;
  std::shared_ptr<arrow::Schema> out_schema_;
  DecoderOptions options_;
  std::string utf8_scratch_;  // a string value whose invalid UTF-8 was replaced
  std::unordered_map<int32_t, std::unique_ptr<WriterPlan>> plans_;  // by writer schema id
  rapidjson::StringBuffer text_;                                    // reused for `_rescued_data`
  rapidjson::Writer<rapidjson::StringBuffer> json_;
};

}  // namespace

arrow::Result<std::unique_ptr<PayloadDecoder>> make_avro_decoder(std::shared_ptr<SchemaRegistryClient> registry,
                                                                 const std::string& reader_schema_json,
                                                                 DecoderOptions options) {
  if (!registry) return invalid("the Avro decoder needs a schema registry client");
  auto parsed = parse_avro_schema(reader_schema_json);
  if (!parsed.ok()) return with_context(parsed.status(), "reader schema");
  const auto& reader = *parsed;
  if (reader->node(reader->root).kind != AvroKind::kRecord) {
    return invalid("reader schema must be a record, not {}", kind_name(*reader, reader->root));
  }
  ARROW_ASSIGN_OR_RAISE(auto row_type, avro_to_arrow(*reader));
  if (int depth = nesting_depth(*row_type); depth > kMaxNestingDepth) {
    return invalid("reader schema: its records, arrays and maps nest {} levels deep (the record itself included); "
                   "sluice reads at most {} (deeper columns are not readable by every Delta reader): flatten the "
                   "schema", depth, kMaxNestingDepth);
  }
  auto out = arrow::schema(row_type->fields());
  if (out->GetFieldIndex(kRescuedDataColumn) >= 0) {
    return invalid("the reader schema already has a field named {}: rename it", kRescuedDataColumn);
  }
  if (options.rescued_data_column) {
    ARROW_ASSIGN_OR_RAISE(out, out->AddField(out->num_fields(), arrow::field(kRescuedDataColumn, arrow::utf8())));
  }
  return std::make_unique<AvroPayloadDecoder>(std::move(registry), reader, std::move(row_type), std::move(out),
                                              options);
}

}  // namespace sluice::format
