// `sluice functions`: the SQL function catalog (name, aliases, arity, family, result type,
// intended differences from Spark) as JSON lines, for scripts/gen-functions-doc.py and users.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <iostream>

#include "sluice/cli/table_commands.h"
#include "sluice/exec/functions/function_registry.h"

namespace sluice::cli {

void add_functions_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("functions", "List the SQL functions sluice runs, one JSON object a line");
  cmd->callback([exit_code] {
    const auto& registry = exec::FunctionRegistry::instance();
    for (const auto& def : registry.definitions()) {
      nlohmann::json row = {{"name", def.name},       {"aliases", def.aliases},
                            {"min_args", def.min_args}, {"max_args", def.max_args == exec::kVariadic ? -1 : def.max_args},
                            {"family", def.family},   {"returns", def.returns},
                            {"differs", def.differs}};
      std::cout << row.dump() << "\n";
    }
    if (!registry.duplicates().empty()) {
      std::cerr << "sluice: error: functions defined twice: " << registry.duplicates().front() << "\n";
      *exit_code = 1;
    }
  });
}

}  // namespace sluice::cli
