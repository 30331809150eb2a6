// JSON -> Arrow (docs/decisions.md: "from_json without a document", and why RapidJSON, not
// simdjson). Structs of scalar fields (the common from_json) fill one slot per field, from the
// flat-record scanner or else RapidJSON's SAX events, appended once the record has parsed
// whole; other types (and string fields given non-strings) go through a document per record.
#include "sluice/format/json_decoder.h"

#include <arrow/api.h>
#include "sluice/format/json_record.h"

#include <cstring>
#include <string>
#include <string_view>

#include "sluice/common/status.h"
#include "sluice/format/json_flat_record.h"
#include "sluice/format/json_value_appender.h"

namespace sluice::format {

namespace {

arrow::Status append_null_struct(arrow::ArrayBuilder& builder, const arrow::DataType& type) {
  if (type.id() != arrow::Type::STRUCT) return builder.AppendNull();
  // A struct of nulls, as Spark's PERMISSIVE mode gives it.
  auto& b = static_cast<arrow::StructBuilder&>(builder);
  ARROW_RETURN_NOT_OK(b.Append());
  for (int f = 0; f < b.num_fields(); ++f) ARROW_RETURN_NOT_OK(b.field_builder(f)->AppendNull());
  return arrow::Status::OK();
}

using internal::JsonFieldIndex;
using Slot = internal::JsonSlot;

// RapidJSON SAX handler filling one Slot per decoded field of a top-level object. Values of
// unknown keys, of fields not decoded and everything nested deeper are parsed (so malformed
// text is still malformed) and dropped.
class StructSlotHandler {
 public:
  StructSlotHandler(const JsonFieldIndex& index, const std::vector<bool>& decoded, const std::vector<bool>& is_string,
                    Slot* slots)
      : index_(index), decoded_(decoded), is_string_(is_string), slots_(slots), n_(static_cast<int>(decoded.size())) {}

  void reset() {
    for (int i = 0; i < n_; ++i) slots_[i].kind = Slot::kAbsent;
    depth_ = 0;
    current_ = -1;
    needs_document_ = false;
  }
  // A string field got a non-string value: Spark keeps its JSON text, which the document path writes.
  bool needs_document() const { return needs_document_; }

  bool Null() { return scalar(Slot::kNull); }
  bool Bool(bool v) {
    if (Slot* s = take(Slot::kBool)) s->b = v;
    return depth_ > 0;
  }
  bool Int(int v) { return int64(v); }
  bool Uint(unsigned v) { return int64(v); }
  bool Int64(int64_t v) { return int64(v); }
  bool Uint64(uint64_t v) {
    if (v <= static_cast<uint64_t>(INT64_MAX)) return int64(static_cast<int64_t>(v));
    if (Slot* s = take(Slot::kUint64)) s->u = v;
    return depth_ > 0;
  }
  bool Double(double v) {
    if (Slot* s = take(Slot::kDouble)) s->d = v;
    return depth_ > 0;
  }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return false; }  // not asked for
  bool String(const char* str, rapidjson::SizeType len, bool) {
    if (Slot* s = take(Slot::kString)) {
      s->s = str;
      s->len = len;
    }
    return depth_ > 0;
  }
  bool StartObject() { return open(); }
  bool Key(const char* str, rapidjson::SizeType len, bool) {
    if (depth_ == 1) {
      current_ = index_.find(str, len);
      if (current_ >= 0 && (!decoded_[current_] || slots_[current_].kind != Slot::kAbsent)) current_ = -1;
    }
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return depth_ > 0 && open(); }  // a top-level array is not a struct: stop
  bool EndArray(rapidjson::SizeType) { return close(); }

 private:
  // The slot of the value just met when it is a decoded field's (depth 1), else null.
  Slot* take(Slot::Kind kind) {
    if (depth_ != 1 || current_ < 0) return nullptr;
    Slot* s = &slots_[current_];
    s->kind = kind;
    if (is_string_[current_] && kind != Slot::kString && kind != Slot::kNull) needs_document_ = true;
    current_ = -1;
    return s;
  }
  bool scalar(Slot::Kind kind) {
    take(kind);
    return depth_ > 0;  // a top-level scalar is not a struct: stop
  }
  bool int64(int64_t v) {
    if (Slot* s = take(Slot::kInt64)) s->i = v;
    return depth_ > 0;
  }
  bool open() {
    if (depth_ > 0) take(Slot::kContainer);
    ++depth_;
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }

  const JsonFieldIndex& index_;
  const std::vector<bool>& decoded_;
  const std::vector<bool>& is_string_;
  Slot* slots_;
  int n_;
  int depth_ = 0;
  int current_ = -1;  // the decoded field whose value comes next, or -1
  bool needs_document_ = false;
};

// Appends a slot to its field's builder as JsonValueAppender::append would the same value.
// Returns whether the value fitted (a mismatch appends null).
template <typename Builder>
arrow::Status append_int(arrow::ArrayBuilder& builder, const Slot& s, int64_t lo, int64_t hi, bool* fits) {
  if (s.kind != Slot::kInt64 || s.i < lo || s.i > hi) {
    *fits = false;
    return builder.AppendNull();
  }
  return static_cast<Builder&>(builder).Append(static_cast<typename Builder::value_type>(s.i));
}

arrow::Status append_slot(arrow::ArrayBuilder& builder, arrow::Type::type id, const Slot& s, bool* fits) {
  *fits = true;
  if (s.kind == Slot::kAbsent || s.kind == Slot::kNull) return builder.AppendNull();
  auto mismatch = [&] {
    *fits = false;
    return builder.AppendNull();
  };
  switch (id) {
    case arrow::Type::STRING:  // other kinds went through the document (needs_document)
      if (s.kind != Slot::kString) return mismatch();
      return static_cast<arrow::StringBuilder&>(builder).Append(s.s, static_cast<int32_t>(s.len));
    case arrow::Type::BOOL:
      if (s.kind != Slot::kBool) return mismatch();
      return static_cast<arrow::BooleanBuilder&>(builder).Append(s.b);
    case arrow::Type::INT8: return append_int<arrow::Int8Builder>(builder, s, INT8_MIN, INT8_MAX, fits);
    case arrow::Type::INT16: return append_int<arrow::Int16Builder>(builder, s, INT16_MIN, INT16_MAX, fits);
    case arrow::Type::INT32: return append_int<arrow::Int32Builder>(builder, s, INT32_MIN, INT32_MAX, fits);
    case arrow::Type::INT64: return append_int<arrow::Int64Builder>(builder, s, INT64_MIN, INT64_MAX, fits);
    case arrow::Type::FLOAT:
    case arrow::Type::DOUBLE: {
      double v;
      if (s.kind == Slot::kDouble) v = s.d;
      else if (s.kind == Slot::kInt64) v = static_cast<double>(s.i);
      else if (s.kind == Slot::kUint64) v = static_cast<double>(s.u);
      else return mismatch();
      if (id == arrow::Type::FLOAT) return static_cast<arrow::FloatBuilder&>(builder).Append(static_cast<float>(v));
      return static_cast<arrow::DoubleBuilder&>(builder).Append(v);
    }
    case arrow::Type::TIMESTAMP: {
      int64_t micros;
      if (s.kind == Slot::kString) {
        if (!internal::parse_timestamp(std::string_view(s.s, s.len), &micros)) return mismatch();
      } else if (s.kind == Slot::kInt64) {
        // Seconds, as Spark reads numbers; beyond the microsecond range the value does not fit.
        if (__builtin_mul_overflow(s.i, int64_t{1'000'000}, &micros)) return mismatch();
      } else {
        return mismatch();
      }
      return static_cast<arrow::TimestampBuilder&>(builder).Append(micros);
    }
    case arrow::Type::DATE32: {
      int64_t micros;
      if (s.kind != Slot::kString || s.len != 10 || !internal::parse_timestamp(std::string_view(s.s, s.len), &micros)) {
        return mismatch();
      }
      return static_cast<arrow::Date32Builder&>(builder).Append(static_cast<int32_t>(micros / 86'400'000'000LL));
    }
    default:
      return mismatch();
  }
}

arrow::Status append_slots(arrow::StructBuilder& b, const std::vector<arrow::ArrayBuilder*>& fields,
                           const std::vector<arrow::Type::type>& ids, const std::vector<Slot>& slots,
                           int64_t* mismatches) {
  ARROW_RETURN_NOT_OK(b.Append());
  for (size_t i = 0; i < fields.size(); ++i) {
    bool fits;
    ARROW_RETURN_NOT_OK(append_slot(*fields[i], ids[i], slots[i], &fits));
    *mismatches += !fits;
  }
  return arrow::Status::OK();
}

// Whether decode_json can take the SAX path: a struct whose decoded fields are all scalars.
bool decodes_from_events(const arrow::DataType& type, const std::vector<bool>& decoded) {
  if (type.id() != arrow::Type::STRUCT) return false;
  for (int i = 0; i < type.num_fields(); ++i) {
    if (decoded[i] && arrow::is_nested(type.field(i)->type()->id())) return false;
  }
  return true;
}

arrow::Result<std::shared_ptr<arrow::Array>> decode_struct_from_events(const arrow::BinaryArray& input,
                                                                       const std::shared_ptr<arrow::DataType>& type,
                                                                       const std::vector<bool>& decoded,
                                                                       JsonDecodeStats* stats) {
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
  ARROW_RETURN_NOT_OK(builder->Reserve(input.length()));
  auto& b = static_cast<arrow::StructBuilder&>(*builder);
  const int n = type->num_fields();
  std::vector<arrow::ArrayBuilder*> fields(n);
  std::vector<arrow::Type::type> ids(n);
  std::vector<bool> is_string(n);
  for (int i = 0; i < n; ++i) {
    fields[i] = b.field_builder(i);
    ids[i] = type->field(i)->type()->id();
    is_string[i] = ids[i] == arrow::Type::STRING;
    ARROW_RETURN_NOT_OK(fields[i]->Reserve(input.length()));
  }
  std::vector<std::string> names;
  for (const auto& f : type->fields()) names.push_back(f->name());
  JsonFieldIndex index(names);
  std::vector<Slot> slots(n);
  internal::FlatRecordScanner scanner(index, decoded, is_string, slots.data());
  if (input.length() > 0) {
    scanner.set_input_ascii(is_ascii(input.raw_data() + input.value_offset(0),
                                     input.value_offset(input.length()) - input.value_offset(0)));
  }
  StructSlotHandler handler(index, decoded, is_string, slots.data());
  JsonRecordParser parser;
  internal::JsonValueAppender appender(internal::KeyMatch::kCaseInsensitive);  // for needs_document
  int64_t mismatches = 0;
  for (int64_t row = 0; row < input.length(); ++row) {
    if (input.IsNull(row)) {
      ARROW_RETURN_NOT_OK(b.AppendNull());
      continue;
    }
    const std::string_view text = input.GetView(row);
    // The whole record parses before anything is appended: a malformed one leaves nothing behind.
    // The common record needs no RapidJSON; what the scanner does not vouch for, RapidJSON decides.
    if (scanner.scan(text)) {
      ARROW_RETURN_NOT_OK(append_slots(b, fields, ids, slots, &mismatches));
      continue;
    }
    handler.reset();
    if (!parser.parse_events(text, handler)) {
      if (stats) ++stats->malformed_records;
      ARROW_RETURN_NOT_OK(append_null_struct(b, *type));
      continue;
    }
    if (handler.needs_document()) {
      auto& doc = parser.parse(text);  // parsed above, so it parses again, as an object
      ARROW_RETURN_NOT_OK(b.Append());
      for (int i = 0; i < n; ++i) {
        auto it = doc.MemberEnd();
        // The first key find_field maps to this field, as the document path takes it.
        for (auto m = doc.MemberBegin(); m != doc.MemberEnd() && it == doc.MemberEnd(); ++m) {
          if (index.find(m->name.GetString(), m->name.GetStringLength()) == i) it = m;
        }
        if (!decoded[i] || it == doc.MemberEnd()) {
          ARROW_RETURN_NOT_OK(fields[i]->AppendNull());
        } else {
          ARROW_RETURN_NOT_OK(appender.append(*fields[i], *type->field(i)->type(), it->value));
        }
      }
      continue;
    }
    ARROW_RETURN_NOT_OK(append_slots(b, fields, ids, slots, &mismatches));
  }
  if (stats) stats->mismatched_fields += mismatches + appender.mismatches();
  return builder->Finish();
}

}  // namespace

arrow::Result<std::shared_ptr<arrow::Array>> decode_json(const arrow::Array& strings,
                                                         const std::shared_ptr<arrow::DataType>& type,
                                                         JsonDecodeStats* stats,
                                                         const std::vector<bool>& decoded_fields) {
  if (strings.type_id() != arrow::Type::STRING && strings.type_id() != arrow::Type::BINARY) {
    return invalid("from_json needs STRING input, not {}", strings.type()->ToString());
  }
  if (!decoded_fields.empty() && (type->id() != arrow::Type::STRUCT ||
                                  static_cast<int>(decoded_fields.size()) != type->num_fields())) {
    return invalid("from_json: {} decoded-field flags for {} (one per struct field is needed)", decoded_fields.size(),
                   type->ToString());
  }
  const std::vector<bool> all(type->num_fields(), true);
  const auto& decoded = decoded_fields.empty() ? all : decoded_fields;
  if (decodes_from_events(*type, decoded)) {
    return decode_struct_from_events(static_cast<const arrow::BinaryArray&>(strings), type, decoded, stats);
  }
  ARROW_ASSIGN_OR_RAISE(auto whole, internal::decode_json_with_document(strings, type, stats));
  if (decoded_fields.empty()) return whole;
  // A decoded nested field took the document path, which decodes every field: keep the promise
  // that the others are null.
  auto data = whole->data()->Copy();
  for (int i = 0; i < type->num_fields(); ++i) {
    if (decoded[i]) continue;
    ARROW_ASSIGN_OR_RAISE(auto nulls, arrow::MakeArrayOfNull(type->field(i)->type(), whole->length()));
    data->child_data[i] = nulls->data();
  }
  return arrow::MakeArray(data);
}

namespace internal {

arrow::Result<std::shared_ptr<arrow::Array>> decode_json_with_document(const arrow::Array& strings,
                                                                       const std::shared_ptr<arrow::DataType>& type,
                                                                       JsonDecodeStats* stats) {
  if (strings.type_id() != arrow::Type::STRING && strings.type_id() != arrow::Type::BINARY) {
    return invalid("from_json needs STRING input, not {}", strings.type()->ToString());
  }
  const auto& input = static_cast<const arrow::BinaryArray&>(strings);
  std::unique_ptr<arrow::ArrayBuilder> builder;
  ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), type, &builder));
  ARROW_RETURN_NOT_OK(builder->Reserve(input.length()));
  JsonValueAppender appender(KeyMatch::kCaseInsensitive);
  JsonRecordParser parser;
  for (int64_t i = 0; i < input.length(); ++i) {
    if (input.IsNull(i)) {
      ARROW_RETURN_NOT_OK(builder->AppendNull());
      continue;
    }
    std::string_view text = input.GetView(i);
    // Parse the whole record first, so a malformed one never leaves half-appended values.
    auto& doc = parser.parse(text);
    bool malformed = parser.failed() || (type->id() == arrow::Type::STRUCT && !doc.IsObject());
    if (malformed) {
      if (stats) ++stats->malformed_records;
      ARROW_RETURN_NOT_OK(append_null_struct(*builder, *type));
      continue;
    }
    ARROW_RETURN_NOT_OK(appender.append(*builder, *type, doc));
  }
  if (stats) stats->mismatched_fields += appender.mismatches();
  return builder->Finish();
}

}  // namespace internal

}  // namespace sluice::format
