// read_kafka value decoding: decoded rows plus dead letters.
#include "sluice/format/kafka_values.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>

#include <chrono>

#include "sluice/common/status.h"
#include "sluice/common/utf8.h"
#include "sluice/format/avro_decoder.h"
#include "sluice/format/json_payload_decoder.h"
#include "sluice/format/schema_registry.h"

namespace sluice::format {

namespace cp = arrow::compute;

arrow::Result<std::unique_ptr<PayloadDecoder>> make_value_decoder(ValueFormat* format,
                                                                  std::shared_ptr<const FieldSelection> read_fields) {
  DecoderOptions options;
  options.rescued_data_column = format->rescued_data_column;
  switch (format->kind) {
    case ValueFormat::Kind::kJson:
      return make_json_decoder(format->json_schema, options, std::move(read_fields));
    case ValueFormat::Kind::kAvro: {
      if (format->registry_url.empty()) {
        return invalid("value_format => 'avro' needs schema_registry_url => 'http(s)://host:port' (Confluent wire "
                       "format: each record names its writer schema's id)");
      }
      std::map<std::string, std::string> properties;
      if (!format->registry_auth.empty()) properties["basic.auth.user.info"] = format->registry_auth;
      if (!format->registry_ca_location.empty()) properties["ssl.ca.location"] = format->registry_ca_location;
      ARROW_ASSIGN_OR_RAISE(auto registry, SchemaRegistryClient::make(format->registry_url, properties));
      if (format->avro_schema.empty()) {
        if (format->subject.empty()) {
          return invalid("value_format => 'avro' needs the reader schema: value_schema => '<Avro JSON>' or "
                         "schema_registry_subject => '<subject>' (its latest version)");
        }
        ARROW_ASSIGN_OR_RAISE(auto latest, registry->latest(format->subject));
        format->avro_schema = latest.schema;
      }
      return make_avro_decoder(registry, format->avro_schema, options);
    }
    case ValueFormat::Kind::kNone:
      break;
  }
  return invalid("no value_format to decode");
}

std::shared_ptr<arrow::Schema> decoded_source_schema(const arrow::Schema& kafka_schema, const arrow::Schema& decoded) {
  arrow::FieldVector value_fields;
  std::shared_ptr<arrow::Field> rescued;
  for (const auto& f : decoded.fields()) {
    if (f->name() == kRescuedDataColumn) {
      rescued = f;
    } else {
      value_fields.push_back(f);
    }
  }
  arrow::FieldVector fields;
  for (const auto& f : kafka_schema.fields()) {
    fields.push_back(f->name() == "value" ? arrow::field("value", arrow::struct_(value_fields)) : f);
  }
  if (rescued) fields.push_back(rescued);
  return arrow::schema(fields);
}

const std::shared_ptr<arrow::Schema>& dead_letter_schema() {
  static const auto schema = arrow::schema({
      arrow::field("topic", arrow::utf8()),
      arrow::field("partition", arrow::int32()),
      arrow::field("offset", arrow::int64()),
      arrow::field("timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
      arrow::field("key", arrow::binary()),
      arrow::field("value", arrow::binary()),
      arrow::field("error", arrow::utf8()),
      arrow::field("_dead_lettered_at", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
  });
  return schema;
}

arrow::Result<DecodedValues> decode_values(const arrow::RecordBatch& kafka_rows, PayloadDecoder& decoder,
                                           const std::shared_ptr<arrow::Schema>& output_schema) {
  auto value = kafka_rows.GetColumnByName("value");
  if (!value) return invalid("the Kafka rows have no 'value' column");
  ARROW_ASSIGN_OR_RAISE(auto decoded, decoder.decode(*value));
  const auto& d = *decoded.rows;
  // value := struct of the decoded columns (all but _rescued_data); a null value is a struct
  // of nulls, as the decoder gives it.
  arrow::ArrayVector value_children;
  arrow::FieldVector value_fields;
  std::shared_ptr<arrow::Array> rescued;
  for (int i = 0; i < d.num_columns(); ++i) {
    if (d.schema()->field(i)->name() == kRescuedDataColumn) {
      rescued = d.column(i);
    } else {
      value_children.push_back(d.column(i));
      value_fields.push_back(d.schema()->field(i));
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto value_struct, arrow::StructArray::Make(value_children, value_fields));
  arrow::ArrayVector columns;
  for (int i = 0; i < kafka_rows.num_columns(); ++i) {
    columns.push_back(kafka_rows.schema()->field(i)->name() == "value" ? value_struct : kafka_rows.column(i));
  }
  if (rescued) columns.push_back(rescued);
  auto rows = arrow::RecordBatch::Make(output_schema, kafka_rows.num_rows(), columns);
  DecodedValues out;
  if (decoded.errors.empty()) {
    out.rows = rows;
    return out;
  }
  // Undecodable records leave the batch for the dead-letter table.
  arrow::BooleanBuilder keep_builder;
  ARROW_RETURN_NOT_OK(keep_builder.AppendValues(std::vector<bool>(kafka_rows.num_rows(), true)));
  ARROW_ASSIGN_OR_RAISE(auto keep_array, keep_builder.Finish());
  auto& keep = static_cast<arrow::BooleanArray&>(*keep_array);
  auto* bits = keep.data()->GetMutableValues<uint8_t>(1);
  arrow::Int64Builder bad_rows;
  arrow::StringBuilder messages;
  std::string scratch;
  for (const auto& e : decoded.errors) {
    arrow::bit_util::ClearBit(bits, e.row);
    ARROW_RETURN_NOT_OK(bad_rows.Append(e.row));
    // A message may quote what a registry or a schema said: keep the column valid UTF-8.
    ARROW_RETURN_NOT_OK(messages.Append(valid_utf8(e.message, &scratch)));
  }
  ARROW_ASSIGN_OR_RAISE(auto kept, cp::Filter(rows, keep_array));
  out.rows = kept.record_batch();
  ARROW_ASSIGN_OR_RAISE(auto bad_indices, bad_rows.Finish());
  ARROW_ASSIGN_OR_RAISE(auto message_array, messages.Finish());
  arrow::ArrayVector dead;
  for (const char* name : {"topic", "partition", "offset", "timestamp", "key", "value"}) {
    ARROW_ASSIGN_OR_RAISE(auto taken, cp::Take(kafka_rows.GetColumnByName(name), bad_indices));
    dead.push_back(taken.make_array());
  }
  dead.push_back(message_array);
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  arrow::TimestampBuilder at(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"), arrow::default_memory_pool());
  ARROW_RETURN_NOT_OK(at.AppendValues(std::vector<int64_t>(decoded.errors.size(), now)));
  ARROW_ASSIGN_OR_RAISE(auto at_array, at.Finish());
  dead.push_back(at_array);
  out.dead_letters = arrow::RecordBatch::Make(dead_letter_schema(), static_cast<int64_t>(decoded.errors.size()), dead);
  return out;
}

}  // namespace sluice::format
