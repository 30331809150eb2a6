// `sluice eval`: evaluates SQL expressions over the rows of an Arrow IPC file (one output
// column per expression). Used by the differential tests against DuckDB, and handy for
// trying an expression before putting it in a pipeline.
#include <CLI/CLI.hpp>
#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/ipc/api.h>
#include <fmt/format.h>

#include <fstream>
#include <iostream>

#include "sluice/exec/expression_binder.h"
#include "sluice/exec/functions/batch_clock.h"
#include "sluice/sql/parser.h"

namespace sluice::cli {

namespace {

struct EvalArgs {
  std::string input;
  std::string output;
  std::vector<std::string> exprs;
  std::string exprs_file;
};

arrow::Status run_eval(const EvalArgs& args) {
  std::vector<std::string> texts = args.exprs;
  if (!args.exprs_file.empty()) {
    std::ifstream in(args.exprs_file);
    if (!in) return arrow::Status::IOError("cannot read ", args.exprs_file);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) texts.push_back(line);
    }
  }
  ARROW_ASSIGN_OR_RAISE(auto file, arrow::io::ReadableFile::Open(args.input));
  ARROW_ASSIGN_OR_RAISE(auto reader, arrow::ipc::RecordBatchFileReader::Open(file));
  ARROW_ASSIGN_OR_RAISE(auto table, reader->ToTable());
  ARROW_ASSIGN_OR_RAISE(auto batch, table->CombineChunksToBatch());

  // Keep every SourceFile alive while its errors may be formatted.
  std::vector<sql::SourceFile> sources;
  const exec::ScopedBatchTime batch_time;  // one current_timestamp() for every expression
  sources.reserve(texts.size());
  arrow::FieldVector fields;
  arrow::ArrayVector columns;
  for (size_t i = 0; i < texts.size(); ++i) {
    sources.push_back(sql::SourceFile{fmt::format("<expr {}>", i + 1), texts[i]});
    ARROW_ASSIGN_OR_RAISE(auto ast, sql::parse_expression(sources.back()));
    exec::ExpressionBinder binder(sources.back(), batch->schema());
    ARROW_ASSIGN_OR_RAISE(auto bound, binder.bind(*ast));
    auto result = exec::evaluate(bound, *batch);
    if (!result.ok()) {
      return arrow::Status::Invalid(fmt::format("<expr {}>: {}: {}", i + 1, texts[i], result.status().message()));
    }
    if ((*result)->length() != batch->num_rows()) {
      return arrow::Status::Invalid(fmt::format("<expr {}>: {}: produced {} values for {} rows", i + 1,
                                                texts[i], (*result)->length(), batch->num_rows()));
    }
    fields.push_back(arrow::field(fmt::format("e{}", i), (*result)->type()));
    columns.push_back(*result);
  }
  auto out_schema = arrow::schema(fields);
  auto out_batch = arrow::RecordBatch::Make(out_schema, batch->num_rows(), columns);
  ARROW_ASSIGN_OR_RAISE(auto sink, arrow::io::FileOutputStream::Open(args.output));
  ARROW_ASSIGN_OR_RAISE(auto writer, arrow::ipc::MakeFileWriter(sink, out_schema));
  ARROW_RETURN_NOT_OK(writer->WriteRecordBatch(*out_batch));
  ARROW_RETURN_NOT_OK(writer->Close());
  return sink->Close();
}

}  // namespace

void add_eval_command(CLI::App& app, int* exit_code) {
  static EvalArgs args;
  auto* cmd = app.add_subcommand("eval", "Evaluate SQL expressions over an Arrow IPC file");
  cmd->add_option("--input", args.input, "Input .arrow file")->required();
  cmd->add_option("--output", args.output, "Output .arrow file (columns e0, e1, ...)")->required();
  cmd->add_option("--expr", args.exprs, "An expression (repeatable)");
  cmd->add_option("--exprs-file", args.exprs_file, "A file with one expression per line");
  cmd->callback([exit_code] {
    auto st = run_eval(args);
    if (!st.ok()) {
      std::cerr << "sluice: error: " << st.message() << "\n";
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
