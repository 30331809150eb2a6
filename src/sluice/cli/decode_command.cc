// `sluice decode`: decodes a payload column of an Arrow IPC file with the JSON or the Avro
// (Confluent wire format + schema registry) decoder, writing the rows plus `_error`. For
// trying a schema on sample records, and for the integration tests of the decoders.
#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "sluice/cli/table_commands.h"
#include "sluice/common/status.h"
#include "sluice/format/avro_decoder.h"
#include "sluice/format/json_payload_decoder.h"
#include "sluice/sql/types.h"

namespace sluice::cli {

namespace {

struct DecodeArgs {
  std::string format;
  std::string input;
  std::string column = "value";
  std::string output;
  std::string schema;
  std::string registry;
  std::string subject;
  std::string reader_schema;
  std::string registry_auth;
};

arrow::Result<std::unique_ptr<format::PayloadDecoder>> make_decoder(const DecodeArgs& args) {
  if (args.format == "json") {
    if (args.schema.empty()) return invalid("--format json needs --schema 'a INT, b STRING'");
    if (!args.registry.empty() || !args.subject.empty() || !args.reader_schema.empty()) {
      return invalid("--registry, --subject and --reader-schema are for --format avro");
    }
    ARROW_ASSIGN_OR_RAISE(auto schema, sql::parse_ddl_schema(args.schema));
    return format::make_json_decoder(schema, {});
  }
  if (args.format != "avro") return invalid("--format must be json or avro, not '{}'", args.format);
  if (!args.schema.empty()) return invalid("--schema is for --format json; Avro takes --subject or --reader-schema");
  if (args.registry.empty()) return invalid("--format avro needs --registry URL (writer schemas come from it)");
  if (args.subject.empty() == args.reader_schema.empty()) {
    return invalid("--format avro needs exactly one of --subject S (its latest version is the reader schema) or "
                   "--reader-schema file.avsc");
  }
  std::map<std::string, std::string> props;
  if (!args.registry_auth.empty()) props["basic.auth.user.info"] = args.registry_auth;
  ARROW_ASSIGN_OR_RAISE(auto registry, format::SchemaRegistryClient::make(args.registry, props));
  std::string reader;
  if (!args.subject.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto latest, registry->latest(args.subject));
    reader = latest.schema;
  } else {
    std::ifstream in(args.reader_schema);
    if (!in) return arrow::Status::IOError("cannot read --reader-schema file ", args.reader_schema);
    std::stringstream text;
    text << in.rdbuf();
    reader = text.str();
  }
  return format::make_avro_decoder(registry, reader, {});
}

arrow::Status run_decode(const DecodeArgs& args) {
  ARROW_ASSIGN_OR_RAISE(auto decoder, make_decoder(args));
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(args.input));
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  ARROW_ASSIGN_OR_RAISE(auto table, reader->ToTable());
  ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());
  auto column = batch->GetColumnByName(args.column);
  if (!column) {
    return invalid("{} has no column '{}' (columns: {})", args.input, args.column,
                   fmt::join(batch->schema()->field_names(), ", "));
  }
  ARROW_ASSIGN_OR_RAISE(auto decoded, decoder->decode(*column));
  arrow::StringBuilder errors;
  size_t next = 0;
  for (int64_t row = 0; row < decoded.rows->num_rows(); ++row) {
    if (next < decoded.errors.size() && decoded.errors[next].row == row) {
      ARROW_RETURN_NOT_OK(errors.Append(decoded.errors[next++].message));
    } else {
      ARROW_RETURN_NOT_OK(errors.AppendNull());
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto error_array, errors.Finish());
  ARROW_ASSIGN_OR_RAISE(auto out, decoded.rows->AddColumn(decoded.rows->num_columns(), "_error", error_array));
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::FileOutputStream::Open(args.output));
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, out->schema()));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*out));
  ARROW_RETURN_NOT_OK(writer->Close());
  ARROW_RETURN_NOT_OK(sink->Close());
  std::cout << fmt::format("{} rows decoded, {} errors -> {}\n", out->num_rows(), decoded.errors.size(), args.output);
  return arrow::Status::OK();
}

}  // namespace

void add_decode_command(CLI::App& app, int* exit_code) {
  static DecodeArgs args;
  auto* cmd = app.add_subcommand("decode", "Decode a JSON or Avro payload column of an Arrow IPC file");
  cmd->add_option("--format", args.format, "json or avro")->required();
  cmd->add_option("--input", args.input, "Input .arrow file")->required();
  cmd->add_option("--column", args.column, "The payload column (default: value)");
  cmd->add_option("--output", args.output, "Output .arrow file: decoded columns, _rescued_data, _error")->required();
  cmd->add_option("--schema", args.schema, "JSON: the columns, as SQL DDL ('a INT, b STRING')");
  cmd->add_option("--registry", args.registry, "Avro: schema registry URL (Confluent API root)");
  cmd->add_option("--subject", args.subject, "Avro: the subject whose latest version is the reader schema");
  cmd->add_option("--reader-schema", args.reader_schema, "Avro: a file with the reader schema (.avsc)");
  cmd->add_option("--registry-auth", args.registry_auth, "Avro: basic auth 'user:password' for the registry");
  cmd->callback([exit_code] {
    auto st = run_decode(args);
    if (!st.ok()) {
      std::cerr << "sluice: error: " << st.message() << "\n";
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
