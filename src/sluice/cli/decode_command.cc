// `sluice decode`: decodes a payload column of an Arrow IPC file with the JSON or the Avro
// (Confluent wire format + schema registry) decoder, writing the rows plus `_error`. For
// trying a schema on sample records, and for the integration tests of the decoders.
#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string_view>

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
  std::string registry_auth;       // refused: a password on the command line is in the process list
  std::string registry_auth_file;  // a file holding 'user:password'
  std::string registry_ca;         // https registry: the CA's PEM file
};

// The registry's 'user:password': from --registry-auth-file, else $SLUICE_REGISTRY_AUTH, else none.
// Never from the command line itself (ps and /proc/<pid>/cmdline show every argument), and never
// echoed in an error.
arrow::Result<std::string> registry_credentials(const DecodeArgs& args) {
  if (!args.registry_auth.empty()) {
    return invalid("--registry-auth would put the password in the process list (ps, /proc/<pid>/cmdline): "
                   "write 'user:password' to a file only you can read and pass --registry-auth-file FILE, "
                   "or set SLUICE_REGISTRY_AUTH");
  }
  if (!args.registry_auth_file.empty()) {
    return format::read_registry_auth_file(args.registry_auth_file, "--registry-auth-file");
  }
  if (const char* env = std::getenv("SLUICE_REGISTRY_AUTH"); env != nullptr && *env != '\0') {
    if (std::string_view(env).find(':') == std::string_view::npos) {
      return invalid("SLUICE_REGISTRY_AUTH must be 'user:password'");
    }
    return std::string(env);
  }
  return std::string();
}

arrow::Result<std::unique_ptr<format::PayloadDecoder>> make_decoder(const DecodeArgs& args) {
  if (args.format == "json") {
    if (args.schema.empty()) return invalid("--format json needs --schema 'a INT, b STRING'");
    if (!args.registry.empty() || !args.subject.empty() || !args.reader_schema.empty() ||
        !args.registry_auth.empty() || !args.registry_auth_file.empty() || !args.registry_ca.empty()) {
      return invalid("--registry, --subject, --reader-schema, --registry-auth-file and --registry-ca are for "
                     "--format avro");
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
  ARROW_ASSIGN_OR_RAISE(auto credentials, registry_credentials(args));
  if (!credentials.empty()) props["basic.auth.user.info"] = std::move(credentials);
  if (!args.registry_ca.empty()) props["ssl.ca.location"] = args.registry_ca;
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
  cmd->add_option("--registry-auth-file", args.registry_auth_file,
                  "Avro: a file whose first line is the registry's basic auth 'user:password' "
                  "(or set SLUICE_REGISTRY_AUTH)");
  cmd->add_option("--registry-ca", args.registry_ca,
                  "Avro: the PEM file of the CA that signed an https registry's certificate "
                  "(default: the system's CA store)");
  cmd->add_option("--registry-auth", args.registry_auth,
                  "Refused: a password on the command line is visible to every user; use --registry-auth-file");
  cmd->callback([exit_code] {
    auto st = run_decode(args);
    if (!st.ok()) {
      std::cerr << "sluice: error: " << st.message() << "\n";
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
