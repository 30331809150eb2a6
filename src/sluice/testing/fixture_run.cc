// One `sluice test` case through the real pipeline runner (fixture_run.h).
#include "sluice/testing/fixture_run.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <optional>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <regex>
#include <set>

#include <arrow/util/base64.h>

#include "sluice/common/bounded_regex.h"
#include "sluice/common/text.h"
#include "sluice/common/utf8.h"
#include "sluice/delta/log_store.h"
#include "sluice/delta/scan.h"
#include "sluice/delta/table.h"
#include "sluice/delta/table_writer.h"
#include "sluice/delta/transaction.h"
#include "sluice/exec/constraint_checker.h"
#include "sluice/format/given_registry.h"
#include "sluice/format/json_decoder.h"
#include "sluice/pipeline/graph.h"
#include "sluice/pipeline/pipeline_config.h"
#include "sluice/pipeline/pipeline_config_checked.h"
#include "sluice/pipeline/pipeline_identity.h"
#include "sluice/pipeline/sink_capture.h"
#include "sluice/pipeline/sink_options.h"
#include "sluice/pipeline/sql_runner.h"
#include "sluice/pipeline/sql_sources.h"
#include "sluice/storage/object_store.h"
#include "sluice/testing/fixture_source.h"
#include "sluice/testing/row_match.h"

namespace sluice::testing {

namespace {

namespace fs = std::filesystem;

// A folder removed with everything in it when the case ends, however it ends.
class TemporaryStorage {
 public:
  static arrow::Result<TemporaryStorage> make() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "sluice-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return arrow::Status::IOError(fmt::format("cannot make a temporary folder {}: {}", pattern, std::strerror(errno)));
    }
    return TemporaryStorage(pattern);
  }
  TemporaryStorage(TemporaryStorage&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  ~TemporaryStorage() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit TemporaryStorage(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

// JSON text of a fixture value; text that is not UTF-8 (a hand-built case) shows U+FFFD, never throws.
std::string text_of(const nlohmann::json& v) {
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Per dataset, what the updates so far reported (summed).
struct Totals {
  std::map<std::string, int64_t> checked, failed;  // per expectation
  int64_t dead_lettered = 0, quarantined = 0, late = 0;
};

void add(Totals& t, const pipeline::DatasetReport& r) {
  for (const auto& [name, n] : r.expectation_rows) t.checked[name] += n;
  for (const auto& [name, n] : r.expectation_failures) t.failed[name] += n;
  t.dead_lettered += r.rows_dead_lettered;
  t.quarantined += r.rows_quarantined;
  t.late += r.rows_late;
}

// Whether a Kafka flow of the update left records unread (its lag after the update).
bool backlog(const std::vector<pipeline::DatasetReport>& reports) {
  return std::any_of(reports.begin(), reports.end(), [](const auto& r) { return r.backlog && *r.backlog > 0; });
}

// The records still to read (to each flow's end: high-water mark or ending offsets) after an update.
int64_t backlog_total(const std::vector<pipeline::DatasetReport>& reports) {
  int64_t total = 0;
  for (const auto& r : reports) total += r.backlog.value_or(0);
  return total;
}

constexpr int kMaxUpdatesPerBatch = 10'000;

class CaseRun {
 public:
  CaseRun(const fs::path& dir, const TestCase& c) : dir_(dir), case_(c) {}

  arrow::Result<CaseResult> run() {
    const auto started = std::chrono::steady_clock::now();
    ARROW_ASSIGN_OR_RAISE(auto storage, TemporaryStorage::make());
    // schema_registry: the case's schemas stand in for every registry while it runs (plan and
    // decode alike), so no registry is contacted; without it an Avro source still asks its own.
    std::optional<format::GivenRegistryScope> registry;
    if (!case_.schema_registry.empty()) {
      std::vector<format::GivenRegistrySchema> given;
      for (const auto& g : case_.schema_registry) given.push_back({g.id, g.subject, g.schema});
      registry.emplace(std::move(given));
    }
    // The storage pipeline.yaml names is checked, never opened (no s3:// request, no metadata lookup).
    ARROW_ASSIGN_OR_RAISE(config_, pipeline::load_pipeline_config(dir_, pipeline::StorageOpening::kChecked));
    if (!config_.bronze.empty()) {
      return arrow::Status::Invalid(fmt::format("{}: pipeline '{}' lists its tables under 'bronze:'; sluice test runs "
                                                "pipelines defined in SQL or Python files", case_.file, config_.name));
    }
    // pipeline.yaml's own storage, for the checks a real run makes while planning (a Delta sink's
    // path outside it): the case plans against it and redirects only where things are written.
    const pipeline::PipelineConfig declared = config_;
    // The case's own storage, on the local disk whatever pipeline.yaml says; its sinks write
    // beside it (a Kafka sink's records to memory, a Delta sink's table to <tmp>/sinks/<sink>).
    config_.storage = storage.path() / "pipeline";
    config_.objects = storage::local_store();
    pipeline::SinkCapture capture(storage.path() / "sinks", case_.sink_partitions);
    pipeline::SinkCaptureScope capturing(capture);
    capture_ = &capture;
    if (!config_.alerts.rules.empty()) {
      result_.notes.push_back("alerts are not evaluated in tests");
      config_.alerts.rules.clear();
    }
    ARROW_ASSIGN_OR_RAISE(auto sources, pipeline::load_sql_sources(config_));
    ARROW_ASSIGN_OR_RAISE(graph_, pipeline::build_graph(std::move(sources)));
    ARROW_RETURN_NOT_OK(check_sinks(declared));
    ARROW_RETURN_NOT_OK(pipeline::open_pipeline_storage(config_, pipeline::pipeline_layout(config_, &graph_)));
    ARROW_RETURN_NOT_OK(check_names());
    if (config_.mode == pipeline::Mode::kContinuous) {
      // Each batch runs a continuous run's updates until its records are consumed (below).
      result_.notes.push_back("pipeline.yaml mode: continuous: each batch runs updates over the records given so far "
                              "until they are consumed (a continuous run stopped there)");
    }
    pipeline::IngestOptions options;
    for (const auto& b : case_.batches) {
      for (const auto& [name, _] : b.tables) options.given_datasets.insert(name);
    }
    std::set<std::string> topics_read;
    ARROW_RETURN_NOT_OK(check_topics(options.given_datasets, topics_read));
    auto topics = std::make_shared<FixtureTopics>(case_.batches, topics_read);

    options.record_sources = topics;
    options.run_sinks = true;  // into the capture installed above
    // A continuous run reads one trigger per update (max_offsets_per_trigger), the case runs
    // updates until the records are consumed.
    if (config_.mode == pipeline::Mode::kContinuous) options.trigger_limit = pipeline::TriggerLimit::kOneTrigger;
    // pipeline.yaml's commit: settings, as `sluice run --once` applies them (cli/main.cc).
    if (config_.commit_max_rows) options.commit_rows = *config_.commit_max_rows;
    if (config_.commit_max_bytes) options.commit_bytes = *config_.commit_max_bytes;
    if (config_.commit_handoff_bytes) options.handoff_bytes = *config_.commit_handoff_bytes;
    if (config_.commit_interval) options.commit_interval = *config_.commit_interval;
    // A given table's rows are not its writer's: its readers read them from its files.
    if (!options.given_datasets.empty()) options.handoff_bytes = 0;
    if (!options.given_datasets.empty()) {
      ARROW_ASSIGN_OR_RAISE(schemas_, pipeline::check_sql_pipeline(config_, graph_));
    }
    std::string failures;
    for (size_t i = 0; i < case_.batches.size(); ++i) {
      const auto& batch = case_.batches[i];
      options.given_rows.clear();  // the runner commits them as the dataset's flow would
      for (const auto& name : options.given_datasets) {
        auto it = batch.tables.find(name);
        ARROW_ASSIGN_OR_RAISE(options.given_rows[name], given_rows(name, it == batch.tables.end() ? FixtureRows{} : it->second));
      }
      topics->show_batches(i + 1);
      auto reports = pipeline::run_sql_pipeline_once(config_, graph_, options);
      if (config_.mode == pipeline::Mode::kContinuous && reports.ok()) {
        // The stop rule of a continuous pipeline's case: updates until every record given so far
        // is consumed (no Kafka flow reports a backlog), as a continuous run would go on reading
        // (max_offsets_per_trigger makes several updates of one batch). A given table's rows are
        // committed once.
        options.given_rows.clear();
        int n = 1;
        int64_t last_backlog = backlog_total(*reports);  // after the last update
        for (; backlog(*reports) && reports.ok(); ++n) {
          if (n >= kMaxUpdatesPerBatch) {
            reports = arrow::Status::Invalid(fmt::format(
                "the records of batch {} were not consumed after {} updates", i + 1, kMaxUpdatesPerBatch));
            break;
          }
          auto more = pipeline::run_sql_pipeline_once(config_, graph_, options);
          if (!more.ok()) {
            reports = more.status();
            break;
          }
          if (backlog(*more) && backlog_total(*more) >= last_backlog) {
            // An update that reads nothing of the backlog will not read it on the next either.
            reports = arrow::Status::Invalid(fmt::format(
                "the records of batch {} were not consumed: update {} made no progress ({} record(s) still "
                "to read before the flows' ends)",
                i + 1, n + 1, backlog_total(*more)));
            break;
          }
          last_backlog = backlog_total(*more);
          for (auto& r : *more) reports->push_back(std::move(r));
          if (!backlog(*more)) {
            ++n;
            break;
          }
        }
        result_.notes.push_back(fmt::format("batch {}: {} update(s) until its records were consumed", i + 1, n));
      }
      const std::string label = case_.batches.size() > 1 ? fmt::format("after batch {} ({}): ", i + 1, batch.where) : "";
      const std::string heading = case_.batches.size() > 1 ? fmt::format("after batch {} ({}):", i + 1, batch.where) : "";
      if (!reports.ok()) {
        if (batch.expect_error && reports.status().message().find(*batch.expect_error) != std::string::npos) continue;
        failures += fmt::format("  {}the update failed: {}\n", label, reports.status().message());
        break;
      }
      if (batch.expect_error) {
        failures += fmt::format("  {}the update succeeded, but an error containing '{}' was expected\n", label,
                                *batch.expect_error);
      }
      std::map<std::string, Totals> this_update;
      for (const auto& r : *reports) {
        add(this_update[r.dataset], r);
        add(totals_[r.dataset], r);
      }
      ARROW_ASSIGN_OR_RAISE(auto text, check(batch.expect, this_update));
      if (!text.empty()) failures += heading.empty() ? text : fmt::format("  {}\n{}", heading, text);
    }
    if (failures.empty()) {
      ARROW_ASSIGN_OR_RAISE(auto text, check(case_.expect, totals_));
      failures += text;
    }
    for (const auto& [sink, why] : capture.not_run()) {
      result_.notes.push_back(fmt::format("sink '{}' is not run in tests: {}", sink, why));
    }
    result_.passed = failures.empty();
    result_.failure = failures;
    result_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result_;
  }

 private:
  static std::vector<std::string> split(const std::string& names) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= names.size()) {
      size_t end = names.find(',', start);
      if (end == std::string::npos) end = names.size();
      auto t = names.substr(start, end - start);
      while (!t.empty() && t.front() == ' ') t.erase(0, 1);
      while (!t.empty() && t.back() == ' ') t.pop_back();
      if (!t.empty()) out.push_back(t);
      start = end + 1;
    }
    return out;
  }

  // The sinks as a real run plans them: a Delta sink's path is checked against pipeline.yaml's
  // own storage (not the case's temporary one) when that is a local folder (an object-store
  // storage is not opened in tests, so its overlap with a sink's URI is left to sluice validate).
  // Each sink_partitions key must be the topic of a Kafka sink that runs in the case.
  arrow::Status check_sinks(const pipeline::PipelineConfig& declared) const {
    std::vector<std::string> topics;               // of the Kafka sinks that run
    std::map<std::string, std::string> avro;       // topic -> Avro sink (not run in tests)
    std::map<std::string, std::string> topic_of;   // Kafka sink -> its topic
    for (const auto& [name, sink] : graph_.sinks) {
      const auto& file = graph_.files[sink.file];
      ARROW_ASSIGN_OR_RAISE(auto format, pipeline::sink_format(sink, file));
      if (format == pipeline::SinkFormat::kDelta) {
        if (!declared.storage.empty()) ARROW_RETURN_NOT_OK(pipeline::delta_sink_spec(sink, file, declared).status());
        continue;
      }
      ARROW_ASSIGN_OR_RAISE(auto spec, pipeline::kafka_sink_spec(sink, file, config_));
      topic_of[name] = spec.topic;
      if (spec.value_format == pipeline::KafkaSinkSpec::ValueFormat::kAvro) {
        avro.emplace(spec.topic, name);
      } else {
        topics.push_back(spec.topic);
      }
    }
    for (const auto& [topic, _] : case_.sink_partitions) {
      if (std::find(topics.begin(), topics.end(), topic) != topics.end()) continue;
      const auto at = case_.sink_partitions_where.count(topic) ? case_.sink_partitions_where.at(topic) : case_.file;
      if (auto a = avro.find(topic); a != avro.end()) {
        return arrow::Status::Invalid(fmt::format(
            "{}: sink_partitions: topic '{}' is written by sink '{}', whose values are Avro: it is not run in tests, "
            "so its partitions would be ignored; remove the key", at, topic, a->second));
      }
      std::string hint;
      if (auto s = topic_of.find(topic); s != topic_of.end()) {
        hint = fmt::format(" ('{}' is a sink's name: its topic is '{}')", topic, s->second);
      } else if (auto near = closest_match(topic, topics); !near.empty()) {
        hint = fmt::format(" (did you mean '{}'?)", near);
      }
      return arrow::Status::Invalid(fmt::format(
          "{}: sink_partitions: '{}' is not the topic of a Kafka sink of pipeline '{}'{}; the topics its sinks write: {}",
          at, topic, config_.name, hint, topics.empty() ? std::string("none") : fmt::format("{}", fmt::join(topics, ", "))));
    }
    return arrow::Status::OK();
  }

  // Every record's topic must be read by a flow that runs: a topic no flow reads, or one read
  // only by the flow of a table the case gives under tables:, would be silently ignored.
  // `topics_read` gets the topics (names, not patterns) the running flows read.
  arrow::Status check_topics(const std::set<std::string>& given, std::set<std::string>& topics_read) const {
    std::vector<std::regex> patterns;
    std::map<std::string, std::string> given_topics;  // topic -> the given table whose flow reads it
    for (const auto& [_, flow] : graph_.flows) {
      for (const auto& in : flow.inputs) {
        if (in.kind != pipeline::FlowInput::Kind::kKafka) continue;
        bool pattern = false;
        if (in.ref) {
          for (const auto& a : in.ref->args) {
            if (a->kind == sql::ExprKind::kNamedArg && (a->name == "topic_pattern" || a->name == "subscribePattern")) {
              pattern = true;
            }
          }
        }
        if (given.count(flow.target)) {
          for (const auto& t : split(in.name)) given_topics.emplace(t, flow.target);
          continue;
        }
        if (!pattern) {
          for (const auto& t : split(in.name)) topics_read.insert(t);
        } else {
          try {
            patterns.emplace_back(in.name);
          } catch (const std::regex_error&) {  // the planner refuses it with its position
          }
        }
      }
    }
    for (const auto& b : case_.batches) {
      for (const auto& r : b.records) {
        if (topics_read.count(r.topic)) continue;
        if (std::any_of(patterns.begin(), patterns.end(), [&](const std::regex& p) { return regex_match_bounded(r.topic, p); })) {
          continue;
        }
        if (auto g = given_topics.find(r.topic); g != given_topics.end()) {
          return arrow::Status::Invalid(fmt::format(
              "{}: records of topic '{}' would never be read: its reader '{}' is given under tables: (its flow does "
              "not run); give its records or its rows, not both", r.where, r.topic, g->second));
        }
        return arrow::Status::Invalid(fmt::format("{}: no flow of pipeline '{}' reads topic '{}'; topics read: {}",
                                                  r.where, config_.name, r.topic,
                                                  topics_read.empty() ? std::string("none") : fmt::format("{}", fmt::join(topics_read, ", "))));
      }
    }
    return arrow::Status::OK();
  }

  bool is_stored(const std::string& name) const {
    auto it = graph_.datasets.find(name);
    return it != graph_.datasets.end() && it->second.kind != sql::DatasetKind::kView &&
           it->second.kind != sql::DatasetKind::kTemporaryView;
  }

  std::string stored_names() const {
    std::vector<std::string> names;
    for (const auto& [name, d] : graph_.datasets) {
      if (is_stored(name)) names.push_back(name);
    }
    return fmt::format("{}", fmt::join(names, ", "));
  }

  // Every dataset the case names must be a stored dataset of the pipeline.
  arrow::Status check_names() const {
    const auto fed = fed_datasets();
    auto known = [&](const std::string& name, const std::string& where, const char* what) -> arrow::Status {
      if (is_stored(name)) return arrow::Status::OK();
      if (graph_.sinks.count(name)) {
        return arrow::Status::Invalid(fmt::format(
            "{}: {} '{}' is a sink: expect what it sent under expect: sinks: {}: {{rows: [...]}}", where, what, name, name));
      }
      return arrow::Status::Invalid(fmt::format("{}: {} '{}' is not a table of pipeline '{}'{}; its tables: {}", where,
                                                what, name, config_.name,
                                                graph_.datasets.count(name) ? " (a view is not stored)" : "",
                                                stored_names()));
    };
    auto expectations = [&](const std::vector<DatasetExpectation>& list) -> arrow::Status {
      for (const auto& e : list) {
        if (e.sink) {
          ARROW_RETURN_NOT_OK(known_sink(e, fed));
        } else {
          ARROW_RETURN_NOT_OK(known(e.dataset, e.where, "expected dataset"));
        }
      }
      return arrow::Status::OK();
    };
    for (const auto& b : case_.batches) {
      for (const auto& [name, rows] : b.tables) ARROW_RETURN_NOT_OK(known(name, b.where, "given table"));
      ARROW_RETURN_NOT_OK(expectations(b.expect));
    }
    return expectations(case_.expect);
  }

  // An expected sink is a sink of the pipeline whose upstream the case feeds: records of a topic a
  // flow before it reads, or rows of a table before it (else it can only ever send nothing).
  arrow::Status known_sink(const DatasetExpectation& e, const std::set<std::string>& fed) const {
    auto sink = graph_.sinks.find(e.dataset);
    if (sink == graph_.sinks.end()) {
      std::vector<std::string> names;
      for (const auto& [name, _] : graph_.sinks) names.push_back(name);
      return arrow::Status::Invalid(fmt::format("{}: expected sink '{}' is not a sink of pipeline '{}'{}; its sinks: {}",
                                                e.where, e.dataset, config_.name,
                                                is_stored(e.dataset) ? " (it is a table: expect it outside sinks:)" : "",
                                                names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
    }
    std::vector<std::string> upstream;
    for (const auto& f : sink->second.flows) {
      auto flow = graph_.flows.find(f);
      if (flow == graph_.flows.end()) return arrow::Status::OK();  // nothing known: not refused
      for (const auto& in : flow->second.inputs) {
        if (in.kind != pipeline::FlowInput::Kind::kDataset) continue;
        if (fed.count(in.name)) return arrow::Status::OK();
        upstream.push_back(in.name);
      }
    }
    return arrow::Status::Invalid(fmt::format(
        "{}: sink '{}' reads {}, which this case never runs: no record it gives reaches it through the pipeline's "
        "flows, nor rows under tables: (give records of a topic it is fed from, or rows of a table before it)",
        e.where, e.dataset, upstream.empty() ? std::string("nothing") : fmt::format("'{}'", fmt::join(upstream, "', '"))));
  }

  // The datasets the case's inputs reach: tables given rows, readers of a topic it gives records
  // of, and everything downstream of those. A view (whose inputs the graph does not list) counts
  // as reached, so only a sink that certainly gets nothing is refused.
  std::set<std::string> fed_datasets() const {
    std::set<std::string> topics;
    for (const auto& b : case_.batches) {
      for (const auto& r : b.records) topics.insert(r.topic);
    }
    std::set<std::string> fed;
    for (const auto& b : case_.batches) {
      for (const auto& [name, _] : b.tables) fed.insert(name);
    }
    for (const auto& name : graph_.order) {
      auto found = graph_.datasets.find(name);
      if (found == graph_.datasets.end() || found->second.flows.empty()) {
        fed.insert(name);  // a view: its inputs are not known here
        continue;
      }
      for (const auto& f : found->second.flows) {
        auto flow = graph_.flows.find(f);
        if (flow == graph_.flows.end()) continue;
        for (const auto& in : flow->second.inputs) {
          bool reached = false;
          if (in.kind == pipeline::FlowInput::Kind::kDataset) {
            auto ds = graph_.datasets.find(in.name);
            reached = fed.count(in.name) || ds == graph_.datasets.end();
          } else {
            bool pattern = false;
            if (in.ref) {
              for (const auto& a : in.ref->args) {
                if (a->kind == sql::ExprKind::kNamedArg && (a->name == "topic_pattern" || a->name == "subscribePattern")) {
                  pattern = true;
                }
              }
            }
            if (pattern) {
              reached = !topics.empty();  // which topics match is the planner's business
            } else {
              for (const auto& t : split(in.name)) reached = reached || topics.count(t);
            }
          }
          if (reached) fed.insert(name);
        }
      }
    }
    return fed;
  }

  // A given table's rows converted to its schema (every value that does not fit refused,
  // naming its file:line:col and column).
  arrow::Result<std::shared_ptr<arrow::RecordBatch>> given_rows(const std::string& name, const FixtureRows& rows) {
    auto schema_it = schemas_.find(name);
    if (schema_it == schemas_.end()) {
      return arrow::Status::Invalid(fmt::format("{}: the schema of table '{}' is not known before a run (it is inferred "
                                                "from Kafka); give the records of its source instead",
                                                case_.file, name));
    }
    const auto& schema = schema_it->second;
    arrow::StringBuilder lines;
    for (size_t i = 0; i < rows.rows.size(); ++i) {
      for (const auto& [k, v] : rows.rows[i].items()) {
        if (schema->GetFieldIndex(k) < 0) {
          std::vector<std::string> names;
          for (const auto& f : schema->fields()) names.push_back(f->name());
          return arrow::Status::Invalid(fmt::format("{}: table '{}' has no column '{}'; its columns: {}", rows.where[i],
                                                    name, k, fmt::join(names, ", ")));
        }
      }
      ARROW_RETURN_NOT_OK(lines.Append(text_of(rows.rows[i])));
    }
    ARROW_ASSIGN_OR_RAISE(auto text, lines.Finish());
    // Binary columns (a Kafka row's key and value) are given as text: decoded as strings, then cast.
    arrow::FieldVector fields;
    for (const auto& f : schema->fields()) {
      const bool binary = f->type()->id() == arrow::Type::BINARY;
      fields.push_back(binary ? f->WithType(arrow::utf8()) : f);
    }
    const auto type = arrow::struct_(fields);
    for (size_t i = 0; i < rows.rows.size(); ++i) {  // a value that does not fit names its line and column
      for (const auto& [k, v] : rows.rows[i].items()) {
        const auto field = fields[schema->GetFieldIndex(k)];
        ARROW_ASSIGN_OR_RAISE(auto one, arrow::MakeArrayFromScalar(arrow::StringScalar(text_of(nlohmann::json{{k, v}})), 1));
        format::JsonDecodeStats stats;
        ARROW_RETURN_NOT_OK(format::decode_json(*one, arrow::struct_({field}), &stats).status());
        if (stats.mismatched_fields > 0 || stats.malformed_records > 0) {
          return arrow::Status::Invalid(fmt::format("{}: {} does not fit column '{}' of table '{}' ({})", rows.where[i],
                                                    text_of(v), k, name, schema->field(schema->GetFieldIndex(k))->type()->ToString()));
        }
      }
    }
    ARROW_ASSIGN_OR_RAISE(auto decoded, format::decode_json(*text, type));
    ARROW_ASSIGN_OR_RAISE(auto batch, arrow::RecordBatch::FromStructArray(decoded));
    auto columns = batch->columns();
    for (int c = 0; c < schema->num_fields(); ++c) {
      if (schema->field(c)->type()->id() != arrow::Type::BINARY) continue;
      ARROW_ASSIGN_OR_RAISE(auto as_binary, arrow::compute::Cast(*columns[c], arrow::binary()));
      columns[c] = as_binary;
    }
    return arrow::RecordBatch::Make(schema, batch->num_rows(), columns);
  }

  // The CONSTRAINT names a stored dataset declares.
  std::vector<std::string> constraint_names(const std::string& dataset) const {
    std::vector<std::string> out;
    auto it = graph_.datasets.find(dataset);
    if (it == graph_.datasets.end() || it->second.definition == nullptr) return out;
    for (const auto& c : it->second.definition->constraints) out.push_back(c.name);
    return out;
  }

  // The rows of a table of the case's storage (none when it was never written).
  arrow::Result<std::optional<std::shared_ptr<arrow::Table>>> read(const std::string& name) const {
    delta::LogStore store(config_.objects, config_.table_path(name).string());
    ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(store));
    if (!snapshot) return std::nullopt;
    ARROW_ASSIGN_OR_RAISE(auto table, delta::scan_table(store, *snapshot));
    return table;
  }

  // One list of rows (or a count) against a table: "" when it holds.
  arrow::Result<std::string> check_rows(const std::string& table, const RowsExpectation& e, double tolerance,
                                        std::optional<int64_t> reported) const {
    ARROW_ASSIGN_OR_RAISE(auto stored, read(table));
    if (e.count && reported) {  // side rows counted by the updates (also those not kept in a table)
      if (*reported == *e.count) return std::string();
      return fmt::format("    {}: {} rows expected ({}), {} found\n", table, *e.count, e.where, *reported);
    }
    std::vector<nlohmann::json> rows;
    arrow::FieldVector columns;
    if (stored) {
      ARROW_ASSIGN_OR_RAISE(rows, table_rows_as_json(**stored));
      columns = (*stored)->schema()->fields();
    } else if (e.rows && !e.rows->rows.empty()) {
      return fmt::format("    {}: no such table was written ({} rows expected, {})\n", table, e.rows->rows.size(), e.where);
    }
    if (e.count) {
      if (static_cast<int64_t>(rows.size()) == *e.count) return std::string();
      return fmt::format("    {}: {} rows expected ({}), {} found\n", table, *e.count, e.where, rows.size());
    }
    ARROW_ASSIGN_OR_RAISE(auto diff, match_rows(rows, columns, *e.rows, tolerance, table));
    if (diff.ok()) return std::string();
    return fmt::format("    {} ({}):\n{}", table, e.where, diff.text("      "));
  }

  // What a sink sent against what the case expects: a Kafka sink's records as
  // {topic, partition, key, value, headers}, a Delta sink's table rows.
  arrow::Result<std::string> check_sink(const DatasetExpectation& e) const {
    const auto not_run = capture_->not_run();
    if (auto why = not_run.find(e.dataset); why != not_run.end()) {
      return arrow::Status::NotImplemented(fmt::format("{}: sink '{}' is not run in tests: {}", e.where, e.dataset,
                                                       why->second));
    }
    const auto& expected = *e.rows;
    std::vector<nlohmann::json> rows;
    arrow::FieldVector columns;
    const std::string label = fmt::format("sink {}", e.dataset);
    const auto records = capture_->kafka_records(e.dataset);
    if (records) {
      // A value is its JSON (a mapping expected compares on exactly its fields) and its text
      // (`value_text`: what a value expected as text compares with, byte for byte).
      auto bytes = [](const std::string& b) {
        return is_valid_utf8(b) ? nlohmann::json(b) : nlohmann::json(arrow::util::base64_encode(b));
      };
      for (const auto& r : *records) {
        nlohmann::json row;
        row["topic"] = r.topic;
        row["partition"] = r.partition ? nlohmann::json(*r.partition) : nlohmann::json(nullptr);
        row["key"] = r.key ? bytes(*r.key) : nlohmann::json(nullptr);
        auto parsed = nlohmann::json::parse(r.value, nullptr, false);
        row["value"] = parsed.is_discarded() ? bytes(r.value) : parsed;
        row["value_text"] = bytes(r.value);
        std::set<std::string> names;
        for (const auto& h : r.headers) names.insert(h.first);
        nlohmann::json headers = names.size() == r.headers.size() ? nlohmann::json::object() : nlohmann::json::array();
        for (const auto& [k, v] : r.headers) {
          auto value = v ? bytes(*v) : nlohmann::json(nullptr);
          if (headers.is_object()) {
            headers[k] = value;
          } else {
            headers.push_back({{"key", k}, {"value", value}});
          }
        }
        row["headers"] = headers;
        rows.push_back(std::move(row));
      }
      columns = {arrow::field("topic", arrow::utf8()), arrow::field("partition", arrow::int32()),
                 arrow::field("key", arrow::utf8()), arrow::field("value", arrow::map(arrow::utf8(), arrow::utf8())),
                 arrow::field("headers", arrow::map(arrow::utf8(), arrow::utf8())),
                 arrow::field("value_text", arrow::utf8())};
    } else {
      delta::LogStore store(storage::local_store(), capture_->delta_table(e.dataset).string());
      ARROW_ASSIGN_OR_RAISE(auto snapshot, delta::load_latest_if_exists(store));
      if (snapshot) {
        ARROW_ASSIGN_OR_RAISE(auto table, delta::scan_table(store, *snapshot));
        ARROW_ASSIGN_OR_RAISE(rows, table_rows_as_json(*table));
        columns = table->schema()->fields();
      } else if (expected.rows && !expected.rows->rows.empty()) {
        return fmt::format("    {}: it sent nothing ({} rows expected, {})\n", label, expected.rows->rows.size(),
                           expected.where);
      }
    }
    if (expected.count) {
      if (static_cast<int64_t>(rows.size()) == *expected.count) return std::string();
      return fmt::format("    {}: {} rows expected ({}), {} sent\n", label, *expected.count, expected.where, rows.size());
    }
    // Headers written as a list of {key, value} with distinct names compare as the mapping; a
    // Kafka value written as text compares with the record's text.
    FixtureRows want = *expected.rows;
    for (auto& r : want.rows) {
      if (auto v = r.find("value"); records && v != r.end() && v->is_string() && !r.contains("value_text")) {
        r["value_text"] = *v;
        r.erase("value");
      }
      auto h = r.find("headers");
      if (h == r.end() || !h->is_array()) continue;
      nlohmann::json as_map = nlohmann::json::object();
      for (const auto& item : *h) {
        if (!item.is_object() || !item.contains("key") || !item["key"].is_string() ||
            as_map.contains(item["key"].get<std::string>())) {
          as_map = nullptr;
          break;
        }
        as_map[item["key"].get<std::string>()] = item.contains("value") ? item["value"] : nlohmann::json(nullptr);
      }
      if (!as_map.is_null()) *h = as_map;
    }
    ARROW_ASSIGN_OR_RAISE(auto diff, match_rows(rows, columns, want, e.tolerance, label));
    if (diff.ok()) return std::string();
    return fmt::format("    {} ({}):\n{}", label, e.where, diff.text("      "));
  }

  arrow::Result<std::string> check(const std::vector<DatasetExpectation>& list,
                                   const std::map<std::string, Totals>& totals) const {
    std::string out;
    static const Totals kNone;
    for (const auto& e : list) {
      auto t = totals.find(e.dataset);
      const Totals& got = t == totals.end() ? kNone : t->second;
      if (e.sink) {
        ARROW_ASSIGN_OR_RAISE(auto text, check_sink(e));
        out += text;
        continue;
      }
      if (e.rows) {
        ARROW_ASSIGN_OR_RAISE(auto text, check_rows(e.dataset, *e.rows, e.tolerance, std::nullopt));
        out += text;
      }
      if (e.dead_letters) {
        ARROW_ASSIGN_OR_RAISE(auto text, check_rows(e.dataset + "_dead_letter", *e.dead_letters, e.tolerance, got.dead_lettered));
        out += text;
      }
      if (e.quarantine) {
        ARROW_ASSIGN_OR_RAISE(auto text, check_rows(e.dataset + "_quarantine", *e.quarantine, e.tolerance, got.quarantined));
        out += text;
      }
      if (e.late) {
        ARROW_ASSIGN_OR_RAISE(auto text, check_rows(e.dataset + "_late", *e.late, e.tolerance, got.late));
        out += text;
      }
      for (const auto& [name, counts] : e.expectations) {
        // The name is checked against the dataset's definition; an update that checked no row of
        // it (a quiet batch) counts 0 passed, 0 failed.
        const auto declared = constraint_names(e.dataset);
        if (std::find(declared.begin(), declared.end(), name) == declared.end()) {
          return arrow::Status::Invalid(fmt::format("{}: dataset '{}' has no expectation named '{}'{}", counts.where,
                                                    e.dataset, name,
                                                    declared.empty() ? std::string(" (it declares none)")
                                                                     : fmt::format("; it declares: {}", fmt::join(declared, ", "))));
        }
        auto checked = got.checked.find(name);
        const int64_t failed = got.failed.count(name) ? got.failed.at(name) : 0;
        const int64_t passed = (checked == got.checked.end() ? 0 : checked->second) - failed;
        if ((counts.passed && *counts.passed != passed) || (counts.failed && *counts.failed != failed)) {
          out += fmt::format("    {}: expectation '{}': expected {}{}{}, got passed {}, failed {} ({})\n", e.dataset, name,
                             counts.passed ? fmt::format("passed {}", *counts.passed) : "",
                             counts.passed && counts.failed ? ", " : "",
                             counts.failed ? fmt::format("failed {}", *counts.failed) : "", passed, failed, counts.where);
        }
      }
    }
    return out;
  }

  fs::path dir_;
  const TestCase& case_;
  pipeline::PipelineConfig config_;
  pipeline::Graph graph_;
  std::map<std::string, std::shared_ptr<arrow::Schema>> schemas_;
  std::map<std::string, Totals> totals_;
  CaseResult result_;
  pipeline::SinkCapture* capture_ = nullptr;  // the case's, while run() runs
};

}  // namespace

arrow::Result<CaseResult> run_case(const std::filesystem::path& pipeline_dir, const TestCase& test_case) {
  try {  // the temporary storage is removed by its destructor on this path too
    return CaseRun(pipeline_dir, test_case).run();
  } catch (const std::exception& e) {
    return arrow::Status::Invalid(fmt::format("{}:{}: case '{}': {}", test_case.file, test_case.line, test_case.name,
                                              e.what()));
  }
}

}  // namespace sluice::testing
