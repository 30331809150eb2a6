// The sluice command line: `sluice run <pipeline-dir> [--once]`, `sluice version` (or --version).
#include <CLI/CLI.hpp>
#include <arrow/compute/initialize.h>
#include <fmt/format.h>

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <csignal>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "sluice/cli/progress_display.h"
#include "sluice/cli/serve_command.h"
#include "sluice/cli/table_commands.h"
#include "sluice/common/failpoint.h"
#include "sluice/common/ids.h"
#include "sluice/common/status.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/pipeline_identity.h"
#include "sluice/pipeline/run_lock.h"
#include "sluice/pipeline/run_progress.h"
#include "sluice/pipeline/runner.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"

namespace {

std::atomic<bool> g_stop{false};

// The first SIGINT/SIGTERM asks the run to stop cleanly (the update in progress commits what it
// has read); a second one takes the signal's default action at once, as a second Ctrl-C does in
// Spark: a run waiting on a store that does not answer (curl's 120 s per request) still ends, and
// what it has not committed is read again by the next run (exactly once: a kill is a crash).
void on_signal(int sig) {
  if (g_stop.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

// Arrow's default pool (mimalloc, inside libarrow) keeps freed pages resident for its purge
// delay (10 ms) and purges them only when it next runs through its arenas: with bronze and
// silver writing at once that held 60-100 MiB of freed Parquet and batch buffers at the peak
// (BENCHMARKS.md, rss). mimalloc reads its options from the environment when libarrow is
// loaded, before main, so the setting can only take effect in a fresh image: set it and exec
// this program again, once. A MIMALLOC_PURGE_DELAY the user set is kept; if the exec fails the
// run goes on with mimalloc's default.
// The same exec turns off transparent huge pages for mimalloc's arenas (MIMALLOC_ALLOW_THP=0):
// with memory purged at once, reusing a purged range faulted in and zeroed a whole 2 MiB page
// (perf: clear_page_erms under do_huge_pmd_anonymous_page, ~9 % of the bench's samples); with
// 4 KiB pages only what is touched is zeroed (docs/decisions.md "mimalloc without transparent
// huge pages"). Each variable is set unless the user set that one; with both set, no exec.
void purge_freed_memory_at_once(char** argv) {
  // After the exec both are set: it happens once.
  bool changed = false;
  for (const char* name : {"MIMALLOC_PURGE_DELAY", "MIMALLOC_ALLOW_THP"}) {
    if (std::getenv(name) == nullptr && setenv(name, "0", 1) == 0) changed = true;
  }
  if (changed) execv("/proc/self/exe", argv);
}

int fail(const arrow::Status& status) {
  std::cerr << "sluice: error: " << status.message() << "\n";
  return 1;
}

std::string report_lines(const std::vector<sluice::pipeline::IngestReport>& reports) {
  std::string out;
  for (const auto& r : reports) {
    out += fmt::format("{} <- kafka topic '{}': {} rows in {} commit(s), table version {}\n",
                       r.table, r.topic, r.rows_written, r.commits, r.table_version);
  }
  return out;
}

// One line per dataset and update: rows in and out, and where the rows that did not reach the
// table went (dropped, quarantined, dead-lettered, late, duplicate), with expectation failures.
std::string summary_line(const sluice::pipeline::DatasetReport& r) {
  std::string line = fmt::format("{} ({}): {} rows read, {} written, {} dropped", r.dataset, r.kind, r.rows_read,
                                 r.rows_written, r.rows_dropped);
  if (r.rows_quarantined) line += fmt::format(", {} quarantined into {}_quarantine", r.rows_quarantined, r.dataset);
  if (r.rows_dead_lettered) {
    line += fmt::format(", {} dead-lettered into {}_dead_letter", r.rows_dead_lettered, r.dataset);
  }
  if (r.rows_late) line += fmt::format(", {} late", r.rows_late);
  if (r.rows_duplicate) line += fmt::format(", {} duplicate", r.rows_duplicate);
  line += r.kind == "sink" ? fmt::format(", upstream version {}", r.version) : fmt::format(", table version {}", r.version);
  if (r.refresh_mode == "none") line += " (up to date: " + r.refresh_reason + ")";
  std::string expectations;
  for (const auto& [name, n] : r.expectation_failures) expectations += fmt::format(" {}:{} failed", name, n);
  if (!expectations.empty()) line += ";" + expectations;
  return line + "\n";
}

// `--serve [ADDR:PORT]` and its token: the server answers beside the run (serve_command.h).
struct ServeRequest {
  std::optional<std::string> listen;  // set: serve
  std::optional<std::string> token;
};

// The summary table's rows for a pipeline.yaml bronze list.
std::vector<sluice::pipeline::DatasetReport> dataset_reports(const std::vector<sluice::pipeline::IngestReport>& reports) {
  std::vector<sluice::pipeline::DatasetReport> out;
  for (const auto& r : reports) {
    sluice::pipeline::DatasetReport d;
    d.dataset = r.table;
    d.kind = "streaming table";
    d.rows_read = r.rows_read;
    d.rows_written = r.rows_written;
    out.push_back(std::move(d));
  }
  return out;
}

int run_command(const std::string& dir, bool once, const std::string& bootstrap_override,
                std::vector<std::string> full_refresh, const sluice::pipeline::RunCommand& command,
                const ServeRequest& serve, sluice::cli::ProgressMode progress_mode) {
  const int64_t started_micros = sluice::now_millis() * 1000;
  auto config = sluice::pipeline::load_pipeline_config(dir);
  if (!config.ok()) return fail(config.status());
  if (!bootstrap_override.empty()) {
    for (auto& [name, props] : config->kafka) props["bootstrap.servers"] = bootstrap_override;
  }
  auto sql = sluice::pipeline::load_sql_sources(*config);
  if (!sql.ok()) return fail(sql.status());
  std::optional<sluice::pipeline::Graph> graph;
  if (!sql->empty()) {
    auto built = sluice::pipeline::build_graph(std::move(*sql));
    if (!built.ok()) return fail(built.status());
    graph = std::move(*built);
  } else if (config->bronze.empty()) {
    return fail(arrow::Status::Invalid(fmt::format(
        "pipeline '{}' defines no tables: add .sql files or a 'bronze:' list", config->name)));
  }
  const bool continuous = !once && config->mode == sluice::pipeline::Mode::kContinuous;
  auto shows_progress = sluice::cli::shows_progress(progress_mode, continuous, isatty(STDERR_FILENO) == 1);
  if (!shows_progress.ok()) return fail(shows_progress.status());
  auto frame_per_report = sluice::cli::frame_per_report(std::getenv("SLUICE_TEST_PROGRESS_FRAMES"));
  if (!frame_per_report.ok()) return fail(frame_per_report.status());
  // Before anything touches the storage: one run at a time (or a scale-out), then the
  // pipeline's stable id, which every progress id is built from.
  sluice::pipeline::RunShape shape;
  shape.continuous = continuous;
  shape.bronze_list = !config->bronze.empty();
  shape.full_refresh = !full_refresh.empty();
  shape.sql_reads_scale_out = graph && sluice::pipeline::every_kafka_read_joins_a_group(*graph);
  const auto lock_mode = sluice::pipeline::run_lock_mode(shape);
  if (lock_mode == sluice::pipeline::RunLockMode::kShared && !config->alerts.rules.empty()) {
    // Every worker would evaluate its own share (its partitions' pass rates and lag) and send
    // its own alerts: N workers, N alerts, flapping figures. Refused until the figures are combined.
    return fail(arrow::Status::Invalid(fmt::format(
        "{}: alerts are not supported in a scale-out run yet (every read_kafka joins a consumer group, so "
        "several processes may run this pipeline, each seeing only its own partitions and each sending its own "
        "alerts); remove 'alerts:' or run a single process (a read_kafka without group_mode => 'subscribe', or --once)",
        config->alerts.rules.front().where)));
  }
  // stdout may be a pipe whose reader has gone (the demo's filter, `| head`): a run must still
  // stop cleanly and commit what it read rather than die of SIGPIPE in a print. Writes to it then
  // fail (EPIPE) and std::cout drops the rest; the tables and the event log are unaffected.
  std::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM end the run cleanly: the update in progress commits what it has read. Set
  // before the run lock is taken: a signal between taking it and the first update must release
  // it (an object store's lease would otherwise be left to expire) rather than kill the process.
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto lock = sluice::pipeline::RunLock::acquire(*config, lock_mode, command);
  if (!lock.ok()) return fail(lock.status());
  sluice::fail_point("run_after_lock");
  if (g_stop) {
    std::cout << "sluice: stopped before the first update\n";
    return 0;
  }
  if (auto st = sluice::pipeline::open_pipeline_storage(
          *config, sluice::pipeline::pipeline_layout(*config, graph ? &*graph : nullptr));
      !st.ok()) {
    return fail(st);
  }
  // The server reads only committed state (event log, Delta logs) on its own threads; it is
  // stopped when the run ends. One that cannot start stops the run before it begins.
  std::unique_ptr<sluice::server::HttpServer> server;
  if (serve.listen) {
    auto started = sluice::cli::start_pipeline_server(*config, *serve.listen, serve.token, started_micros);
    if (!started.ok()) return fail(started.status());
    server = std::move(*started);
  }
  sluice::pipeline::IngestOptions options;
  options.stop = &g_stop;
  options.full_refresh = full_refresh;
  if (config->commit_max_rows) options.commit_rows = *config->commit_max_rows;
  if (config->commit_max_bytes) options.commit_bytes = *config->commit_max_bytes;
  if (config->commit_handoff_bytes) options.handoff_bytes = *config->commit_handoff_bytes;
  if (config->commit_interval) options.commit_interval = *config->commit_interval;
  // A triggered run on a terminal: live progress on stderr while it runs, a summary table at
  // its end (progress_display.h). Nothing of it otherwise: stdout and stderr stay as they were.
  sluice::pipeline::RunProgress progress;
  std::unique_ptr<sluice::cli::ProgressDisplay> display;
  if (*shows_progress) {
    options.progress = &progress;
    display = std::make_unique<sluice::cli::ProgressDisplay>(progress, STDERR_FILENO, config->name);
    if (*frame_per_report) progress.set_on_report([d = display.get()] { d->redraw(); });
  }
  // The summary table's rows: collected only when the display shows them, which is only on a
  // triggered run (one update), so a continuous run keeps nothing from update to update.
  std::vector<sluice::pipeline::DatasetReport> summary;
  // One update: the skeleton's bronze tables, then the SQL datasets in dependency order.
  auto update = [&]() -> arrow::Status {
    // While the display redraws stderr, stdout (often the same terminal) is held back until it
    // has stopped: a line written between two frames would be drawn over.
    std::string held;
    if (!config->bronze.empty()) {
      auto reports = sluice::pipeline::run_pipeline_once(*config, options);
      if (display && (!reports.ok() || !graph)) display->stop();
      ARROW_RETURN_NOT_OK(reports.status());
      held = report_lines(*reports);
      if (display) {
        for (auto& r : dataset_reports(*reports)) summary.push_back(std::move(r));
      }
    }
    if (graph) {
      if (!display) {
        std::cout << held;
        std::cout.flush();
        held.clear();
      }
      auto reports = sluice::pipeline::run_sql_pipeline_once(*config, *graph, options);
      if (display) display->stop();
      std::cout << held;
      std::cout.flush();
      ARROW_RETURN_NOT_OK(reports.status());
      for (const auto& r : *reports) std::cout << summary_line(r);
      if (display) summary.insert(summary.end(), reports->begin(), reports->end());
    } else {
      std::cout << held;
    }
    std::cout.flush();
    options.full_refresh.clear();  // only the first update resets
    return arrow::Status::OK();
  };
  sluice::fail_point("run_before_first_update");
  if (g_stop) {  // a signal while the storage was opened or the server started
    std::cout << "sluice: stopped before the first update\n";
    return 0;
  }
  if (!continuous) {
    const auto update_started = std::chrono::steady_clock::now();
    if (display) display->start();
    auto st = update();
    if (!st.ok()) return fail(st);
    if (display) {
      std::cerr << sluice::cli::summary_table(config->name, summary, std::chrono::steady_clock::now() - update_started);
      std::cerr.flush();
    }
    return 0;
  }
  // Continuous: one update per trigger interval until a signal; retryable errors (broker away)
  // are reported and retried, others stop the pipeline. Flows with group_mode => 'subscribe'
  // stay in their consumer groups between updates; leaving them at the end hands their
  // partitions to the other members.
  options.group_members = sluice::pipeline::make_kafka_group_members();
  options.snapshots = std::make_shared<sluice::delta::SnapshotCache>();  // the run lock is held
  options.trigger_limit = sluice::pipeline::TriggerLimit::kOneTrigger;  // the next comes at once
  if (graph && config->bronze.empty()) {
    // SQL pipelines: every dataset in its own loop, downstream woken by upstream commits.
    std::mutex print_mutex;
    sluice::pipeline::ContinuousOptions continuous;
    continuous.trigger_interval = config->trigger_interval;
    continuous.on_report = [&](const sluice::pipeline::DatasetReport& r) {
      std::lock_guard lock(print_mutex);
      std::cout << summary_line(r);
      std::cout.flush();
    };
    continuous.leads = [&lock] { return (*lock)->leads(); };
    auto st = sluice::pipeline::run_sql_pipeline_continuous(*config, *graph, options, continuous);
    options.group_members.reset();
    if (!st.ok()) return fail(st);
    std::cout << "sluice: stopped\n";
    return 0;
  }
  while (!g_stop) {
    auto started = std::chrono::steady_clock::now();
    auto st = update();
    if (!st.ok()) {
      if (!sluice::is_retryable(st)) return fail(st);
      std::cerr << "sluice: warning: " << st.message() << " (retrying)\n";
    }
    while (!g_stop && std::chrono::steady_clock::now() - started < config->trigger_interval) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  options.group_members.reset();
  std::cout << "sluice: stopped\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  purge_freed_memory_at_once(argv);
  // librdkafka takes its fetch buffers (tens of MB a second) from glibc malloc, which by
  // default hands large blocks back to the kernel on free and faults fresh zeroed pages in on
  // the next fetch: blocks up to 32 MiB come from the heap, and up to 128 MiB of freed heap
  // per arena stays (BENCHMARKS.md, window bench).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  CLI::App app{"sluice: declarative streaming pipelines from Kafka into Delta Lake tables"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "sluice " SLUICE_VERSION);

  auto* run = app.add_subcommand("run", "Run a pipeline folder (pipeline.yaml)");
  std::string dir;
  bool once = false;
  std::string bootstrap;
  run->add_option("pipeline-dir", dir, "Folder holding pipeline.yaml")->required();
  run->add_flag("--once", once, "Triggered run: process what is available now, then exit");
  std::string progress_text = "auto";
  run->add_option("--progress", progress_text,
                  "Live progress of a triggered run on stderr and a summary at its end: auto (when stderr is a "
                  "terminal), always or never")
      ->check(CLI::Validator(
          [](std::string& input) -> std::string {
            auto mode = sluice::cli::parse_progress_mode(input);
            return mode.ok() ? std::string() : mode.status().message();
          },
          "never|auto|always"));
  std::vector<std::string> full_refresh;
  run->add_option("--full-refresh", full_refresh,
                  "Reset these streaming tables and reprocess them from their sources (no name: all)")
      ->expected(0, -1)
      ->default_str("*");
  run->add_option("--bootstrap-servers", bootstrap,
                  "Override bootstrap.servers of every Kafka cluster in pipeline.yaml");
  ServeRequest serve;
  std::string serve_listen;
  std::string serve_token;
  // A bare `--serve` is rewritten to `--serve=<default>` before parsing (below), so it never
  // takes the next argument as its address.
  run->add_option("--serve", serve_listen,
                  "Serve the JSON API and /metrics while the pipeline runs: --serve (127.0.0.1:8080) or "
                  "--serve=ADDR:PORT (port 0: any free port); the address attaches with '=' only");
  run->add_option("--serve-token", serve_token,
                  "Bearer token every request to the server must send (required off loopback). Visible to "
                  "other users in `ps`: prefer the SLUICE_SERVE_TOKEN environment variable");

  app.add_subcommand("version", "Print the version")->callback([] {
    std::cout << "sluice " SLUICE_VERSION "\n";
  });

  int exit_code = 0;
  sluice::cli::add_table_commands(app, &exit_code);
  sluice::cli::add_eval_command(app, &exit_code);
  sluice::cli::add_functions_command(app, &exit_code);
  sluice::cli::add_decode_command(app, &exit_code);
  sluice::cli::add_graph_commands(app, &exit_code);
  sluice::cli::add_sql_command(app, &exit_code);
  sluice::cli::add_catalog_command(app, &exit_code);
  sluice::cli::add_forget_command(app, &exit_code);
  sluice::cli::add_status_command(app, &exit_code);
  sluice::cli::add_serve_command(app, &exit_code);
  sluice::cli::add_test_command(app, &exit_code);

  if (auto st = arrow::compute::Initialize(); !st.ok()) return fail(st);
  // `--serve` takes its address only as `--serve=ADDR:PORT`: a bare `--serve` is the default
  // address and never swallows the next argument (`run --serve pipe --once`).
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
    if (args[i] != "--serve") continue;
    if (i + 1 < args.size() && sluice::server::parse_listen_address(args[i + 1]).ok()) {
      return fail(arrow::Status::Invalid(fmt::format(
          "'--serve {0}': write the address as --serve={0} (a bare --serve listens on {1} and takes no value)",
          args[i + 1], sluice::cli::kDefaultListen)));
    }
    args[i] = std::string("--serve=") + sluice::cli::kDefaultListen;
  }
  std::vector<char*> parsed_argv;
  for (auto& a : args) parsed_argv.push_back(a.data());
  CLI11_PARSE(app, static_cast<int>(parsed_argv.size()), parsed_argv.data());
  if (run->parsed()) {
    if (run->count("--full-refresh") && full_refresh.empty()) full_refresh = {"*"};
    // The run lock's holder record names the flags given, never their values.
    sluice::pipeline::RunCommand command{argv[0], {}};
    for (const auto* option : run->get_options()) {
      if (option->get_name() != "pipeline-dir" && option->count() > 0 && !option->get_lnames().empty()) {
        command.flags.push_back("--" + option->get_lnames().front());
      }
    }
    if (run->count("--serve")) serve.listen = serve_listen;
    if (run->count("--serve-token")) {
      if (!serve.listen) return fail(arrow::Status::Invalid("--serve-token is given without --serve: add --serve or --serve=ADDR:PORT"));
      serve.token = serve_token;
    }
    auto progress_mode = sluice::cli::parse_progress_mode(progress_text);
    if (!progress_mode.ok()) return fail(progress_mode.status());
    return run_command(dir, once, bootstrap, full_refresh, command, serve, *progress_mode);
  }
  return exit_code;
}
