// `sluice table ...`: look at any Delta table (describe, history, files, show), and write one
// from Parquet/Arrow files (append) or copy it out (export).
#pragma once

namespace CLI {
class App;
}

namespace sluice::cli {

// Registers the `table` sub-command tree on `app`; the callbacks set the exit code.
void add_table_commands(CLI::App& app, int* exit_code);

// Registers `table optimize` on the `table` command (optimize_command.cc).
void add_optimize_command(CLI::App& table, int* exit_code);

// Registers `validate` and `graph` (the SQL pipeline graph).
void add_graph_commands(CLI::App& app, int* exit_code);

// Registers `eval` (SQL expressions over an Arrow IPC file).
void add_eval_command(CLI::App& app, int* exit_code);
void add_functions_command(CLI::App& app, int* exit_code);

// `sluice decode`: decodes a payload column (JSON or Confluent Avro) of an Arrow IPC file.
void add_decode_command(CLI::App& app, int* exit_code);

// `sluice sql`: DELETE / UPDATE / MERGE INTO and queries on Delta tables (sql_command.cc).
void add_sql_command(CLI::App& app, int* exit_code);

// `sluice catalog <dir>` (catalog_command.cc).
void add_catalog_command(CLI::App& app, int* exit_code);

// `sluice forget <dir> --where ...` (forget_command.cc).
void add_forget_command(CLI::App& app, int* exit_code);

// `sluice status <dir>` (status_command.cc).
void add_status_command(CLI::App& app, int* exit_code);

// `sluice test <dir>`: fixture cases without a broker (test_command.cc).
void add_test_command(CLI::App& app, int* exit_code);

}  // namespace sluice::cli
