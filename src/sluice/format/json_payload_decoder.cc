// JSON payloads -> Arrow rows + `_rescued_data` + per-record errors (RapidJSON, builders reused).
#include "sluice/format/json_payload_decoder.h"

#include <arrow/api.h>
#include <fmt/format.h>
#include "sluice/format/json_record.h"
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>
#include <vector>

#include "sluice/common/status.h"
#include "sluice/format/json_value_appender.h"

namespace sluice::format {

namespace {

const char* json_type_name(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType: return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType: return "a boolean";
    case rapidjson::kObjectType: return "an object";
    case rapidjson::kArrayType: return "an array";
    case rapidjson::kStringType: return "a string";
    case rapidjson::kNumberType: return "a number";
  }
  return "a value";
}

class JsonPayloadDecoder final : public PayloadDecoder {
 public:
  JsonPayloadDecoder(std::shared_ptr<arrow::Schema> columns, std::shared_ptr<arrow::Schema> out_schema,
                     DecoderOptions options, std::shared_ptr<const FieldSelection> read_fields)
      : columns_(std::move(columns)),
        row_type_(arrow::struct_(columns_->fields())),
        out_schema_(std::move(out_schema)),
        options_(options),
        read_fields_(std::move(read_fields)) {}

  std::shared_ptr<arrow::Schema> schema() const override { return out_schema_; }

  arrow::Result<DecodedBatch> decode(const arrow::Array& payloads) override {
    if (payloads.type_id() != arrow::Type::STRING && payloads.type_id() != arrow::Type::BINARY) {
      return invalid("the JSON decoder needs a binary or string column, not {}", payloads.type()->ToString());
    }
    const auto& input = static_cast<const arrow::BinaryArray&>(payloads);
    const int n = columns_->num_fields();
    std::vector<std::unique_ptr<arrow::ArrayBuilder>> builders(n);
    for (int i = 0; i < n; ++i) {
      if (read_fields_ && !read_fields_->fields[i].read()) continue;  // all null: made at the end
      ARROW_RETURN_NOT_OK(arrow::MakeBuilder(arrow::default_memory_pool(), columns_->field(i)->type(), &builders[i]));
      ARROW_RETURN_NOT_OK(builders[i]->Reserve(input.length()));
    }
    arrow::StringBuilder rescued;
    DecodedBatch out;
    internal::JsonValueAppender appender(internal::KeyMatch::kExact);
    std::vector<const rapidjson::Value*> found(n);
    // Rescued values are written once per record into one reused buffer.
    rapidjson::StringBuffer rescue_text;
    rapidjson::Writer<rapidjson::StringBuffer> rescue_writer;

    auto append_null_row = [&]() -> arrow::Status {
      for (auto& b : builders) {
        if (b) ARROW_RETURN_NOT_OK(b->AppendNull());
      }
      return options_.rescued_data_column ? rescued.AppendNull() : arrow::Status::OK();
    };

    for (int64_t row = 0; row < input.length(); ++row) {
      if (input.IsNull(row)) {
        ARROW_RETURN_NOT_OK(append_null_row());
        continue;
      }
      std::string_view text = input.GetView(row);
      // Parse the whole record first, so a malformed one never leaves half-appended values.
      auto& doc = parser_.parse(text);
      if (parser_.failed()) {
        out.errors.push_back({row, parser_.error()});
        ARROW_RETURN_NOT_OK(append_null_row());
        continue;
      }
      if (!doc.IsObject()) {
        out.errors.push_back({row, fmt::format("JSON record is {}, not an object", json_type_name(doc))});
        ARROW_RETURN_NOT_OK(append_null_row());
        continue;
      }
      std::fill(found.begin(), found.end(), nullptr);
      if (read_fields_) {
        // Only the fields read: the first value of each, no rescue (nobody reads it).
        for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
          int i = internal::find_field(*row_type_, std::string_view(it->name.GetString(), it->name.GetStringLength()),
                                       internal::KeyMatch::kExact);
          if (i >= 0 && !found[i]) found[i] = &it->value;
        }
        for (int i = 0; i < n; ++i) {
          const auto& only = read_fields_->fields[i];
          if (!only.read()) continue;
          if (!found[i]) {
            ARROW_RETURN_NOT_OK(builders[i]->AppendNull());
          } else {
            ARROW_RETURN_NOT_OK(appender.append(*builders[i], *columns_->field(i)->type(), *found[i], &only));
          }
        }
        if (options_.rescued_data_column) ARROW_RETURN_NOT_OK(rescued.AppendNull());
        continue;
      }
      rescue_text.Clear();
      rescue_writer.Reset(rescue_text);
      bool any_rescued = false;
      auto rescue = [&](const rapidjson::Value& key, const rapidjson::Value& value) {
        if (!any_rescued) rescue_writer.StartObject();
        any_rescued = true;
        rescue_writer.Key(key.GetString(), key.GetStringLength());
        value.Accept(rescue_writer);
      };
      for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
        std::string_view key(it->name.GetString(), it->name.GetStringLength());
        int i = internal::find_field(*row_type_, key, internal::KeyMatch::kExact);
        if (i < 0 || found[i]) {
          rescue(it->name, it->value);  // unknown, differs in case, or a duplicate key
        } else {
          found[i] = &it->value;
        }
      }
      for (int i = 0; i < n; ++i) {
        if (!found[i]) {
          ARROW_RETURN_NOT_OK(builders[i]->AppendNull());
          continue;
        }
        int64_t mismatches = appender.mismatches() + appender.unknown_keys();
        ARROW_RETURN_NOT_OK(appender.append(*builders[i], *columns_->field(i)->type(), *found[i]));
        if (appender.mismatches() + appender.unknown_keys() != mismatches) {
          // Something inside did not fit: keep the whole original value, under its column name.
          rescue(doc.FindMember(columns_->field(i)->name().c_str())->name, *found[i]);
        }
      }
      if (options_.rescued_data_column) {
        if (any_rescued) {
          rescue_writer.EndObject();
          ARROW_RETURN_NOT_OK(rescued.Append(rescue_text.GetString(), static_cast<int32_t>(rescue_text.GetSize())));
        } else {
          ARROW_RETURN_NOT_OK(rescued.AppendNull());
        }
      }
    }

    arrow::ArrayVector arrays(n);
    for (int i = 0; i < n; ++i) {
      if (builders[i]) {
        ARROW_RETURN_NOT_OK(builders[i]->Finish(&arrays[i]));
      } else {
        ARROW_ASSIGN_OR_RAISE(arrays[i], arrow::MakeArrayOfNull(columns_->field(i)->type(), input.length()));
      }
    }
    if (options_.rescued_data_column) {
      std::shared_ptr<arrow::Array> r;
      ARROW_RETURN_NOT_OK(rescued.Finish(&r));
      arrays.push_back(std::move(r));
    }
    out.rows = arrow::RecordBatch::Make(out_schema_, input.length(), std::move(arrays));
    return out;
  }

 private:
  std::shared_ptr<arrow::Schema> columns_;
  std::shared_ptr<arrow::DataType> row_type_;
  std::shared_ptr<arrow::Schema> out_schema_;
  DecoderOptions options_;
  std::shared_ptr<const FieldSelection> read_fields_;  // null: every column, with rescue
  JsonRecordParser parser_;
};

}  // namespace

arrow::Result<std::unique_ptr<PayloadDecoder>> make_json_decoder(std::shared_ptr<arrow::Schema> schema,
                                                                 DecoderOptions options,
                                                                 std::shared_ptr<const FieldSelection> read_fields) {
  if (!schema) return invalid("the JSON decoder needs a schema");
  if (read_fields && read_fields->use == FieldSelection::Use::kWhole) read_fields = nullptr;
  if (read_fields && (read_fields->use != FieldSelection::Use::kSome ||
                      static_cast<int>(read_fields->fields.size()) != schema->num_fields())) {
    return invalid("the JSON decoder's field selection has {} fields, its schema {}: select from the schema",
                   read_fields->fields.size(), schema->num_fields());
  }
  if (schema->GetFieldIndex(kRescuedDataColumn) >= 0) {
    return invalid("the schema already has a column named {}: rename it", kRescuedDataColumn);
  }
  auto out = schema;
  if (options.rescued_data_column) {
    ARROW_ASSIGN_OR_RAISE(out, schema->AddField(schema->num_fields(), arrow::field(kRescuedDataColumn, arrow::utf8())));
  }
  return std::make_unique<JsonPayloadDecoder>(std::move(schema), std::move(out), options, std::move(read_fields));
}

}  // namespace sluice::format
