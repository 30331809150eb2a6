// Graph resolution for SQL pipelines.
#include "sluice/pipeline/graph.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <set>

#include "sluice/common/names.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/exec/table_changes_binding.h"
#include "sluice/sql/generated_source.h"
#include "sluice/sql/parser.h"

namespace sluice::pipeline {

namespace {

using sql::DatasetKind;

// The line a definition was written at: for SQL that a .py file generated, the line of its
// decorator or call in the .py file (the generated text's own lines mean nothing to a user).
int written_line(const sql::SourceFile& file, const sql::Location& loc) {
  if (auto origin = sql::generated_origin(file.name, loc.offset)) return origin->line;
  return loc.line;
}

// Where a definition was written, for messages: file:line:col, or file.py:line.
std::string written_at(const sql::SourceFile& file, const sql::Location& loc) {
  if (auto origin = sql::generated_origin(file.name, loc.offset)) return fmt::format("{}:{}", file.name, origin->line);
  return fmt::format("{}:{}:{}", file.name, loc.line, loc.col);
}

const char* kind_name(DatasetKind k) {
  switch (k) {
    case DatasetKind::kStreamingTable: return "streaming table";
    case DatasetKind::kMaterializedView: return "materialized view";
    case DatasetKind::kView: return "view";
    case DatasetKind::kTemporaryView: return "temporary view";
  }
  return "?";
}


std::string join_name(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ".") + p;
  return out;
}

// Collects the table references of a query (not CTE names), recursing into subqueries.
void collect_inputs(const sql::Query& q, const std::set<std::string>& outer_ctes, std::vector<FlowInput>& out);

void collect_from_expr(const sql::Expr& e, const std::set<std::string>& ctes, std::vector<FlowInput>& out) {
  if (e.query) collect_inputs(*e.query, ctes, out);
  for (const auto& a : e.args) collect_from_expr(*a, ctes, out);
}

void collect_from_ref(const sql::TableRef& t, const std::set<std::string>& ctes, std::vector<FlowInput>& out) {
  switch (t.kind) {
    case sql::TableRefKind::kTable: {
      std::string name = join_name(t.name);
      if (ctes.count(name)) return;
      out.push_back({FlowInput::Kind::kDataset, name, t.stream, &t, t.loc});
      return;
    }
    case sql::TableRefKind::kFunction: {
      std::string name = join_name(t.name);
      if (to_lower(name) == "read_kafka") {
        std::string topic;
        for (const auto& a : t.args) {
          if (a->kind == sql::ExprKind::kNamedArg &&
              (a->name == "topic" || a->name == "subscribe" || a->name == "topic_pattern" ||
               a->name == "subscribePattern") &&
              a->args[0]->kind == sql::ExprKind::kLiteral) {
            topic = a->args[0]->value;
          }
        }
        out.push_back({FlowInput::Kind::kKafka, topic, t.stream, &t, t.loc});
      } else if (exec::is_table_changes(t)) {  // a dataset's change feed: the flow depends on it
        if (auto table = exec::table_changes_table(t); !table.empty()) {
          out.push_back({FlowInput::Kind::kDataset, table, t.stream, &t, t.loc});
        }
      } else {
        out.push_back({FlowInput::Kind::kDataset, name + "()", t.stream, &t, t.loc});
      }
      return;
    }
    case sql::TableRefKind::kSubquery: collect_inputs(*t.query, ctes, out); return;
    case sql::TableRefKind::kJoin:
      collect_from_ref(*t.left, ctes, out);
      collect_from_ref(*t.right, ctes, out);
      if (t.on) collect_from_expr(*t.on, ctes, out);
      return;
  }
}

void collect_inputs(const sql::Query& q, const std::set<std::string>& outer_ctes, std::vector<FlowInput>& out) {
  std::optional<std::set<std::string>> with;  // copied only when the query has a WITH
  if (!q.ctes.empty()) with = outer_ctes;
  for (const auto& cte : q.ctes) {
    collect_inputs(*cte.query, *with, out);
    with->insert(cte.name);
  }
  const std::set<std::string>& ctes = with ? *with : outer_ctes;
  for (const auto& s : q.selects) {
    if (s.from) collect_from_ref(*s.from, ctes, out);
    for (const auto& item : s.items) collect_from_expr(*item.expr, ctes, out);
    if (s.where) collect_from_expr(*s.where, ctes, out);
    if (s.having) collect_from_expr(*s.having, ctes, out);
  }
}

class Resolver {
 public:
  explicit Resolver(Graph& g) : g_(g) {}

  void error(size_t file, sql::Location at, const std::string& message) {
    errors_.push_back(sql::format_error(g_.files[file], at, message));
  }

  arrow::Status run() {
    define();
    link();
    order();
    if (errors_.empty()) return arrow::Status::OK();
    std::string all;
    for (const auto& e : errors_) all += (all.empty() ? "" : "\n") + e;
    return arrow::Status::Invalid(fmt::format("{} error(s) in the pipeline:\n{}", errors_.size(), all));
  }

 private:
  // A dataset or flow name becomes a file name under the storage folder, and Delta and Spark
  // compare names case-insensitively: `what` names it in the error.
  bool check_name(size_t file, sql::Location at, const std::string& what, const std::string& name) {
    if (auto problem = path_name_problem(name); !problem.empty()) {
      error(file, at, fmt::format("{} name '{}' cannot be used: {}; use letters, digits and _", what, name, problem));
      return false;
    }
    return true;
  }

  void define() {
    std::map<std::string, std::string> folded;  // lower-case name -> the dataset defining it
    for (size_t f = 0; f < g_.statements.size(); ++f) {
      for (const auto& st : g_.statements[f]) {
        if (st.dataset) {
          const auto& d = *st.dataset;
          if (!check_name(f, d.name_loc, "dataset", d.name)) continue;
          if (auto it = g_.datasets.find(d.name); it != g_.datasets.end()) {
            const auto& first = it->second;
            error(f, d.name_loc, fmt::format("'{}' is defined twice; first as a {} at {}", d.name,
                                             kind_name(first.kind), written_at(g_.files[first.file], first.loc)));
            continue;
          }
          if (auto it = folded.find(to_lower(d.name)); it != folded.end()) {
            const auto& first = g_.datasets.at(it->second);
            error(f, d.name_loc, fmt::format("'{}' differs only in case from '{}', defined at {}; table names "
                                             "are case-insensitive (Delta, Spark, and the storage folder on some "
                                             "file systems): rename one of them",
                                             d.name, first.name, written_at(g_.files[first.file], first.loc)));
            continue;
          }
          folded[to_lower(d.name)] = d.name;
          Dataset ds{d.name, d.kind, f, d.name_loc, &d, {}};
          if (d.query) {
            // The defining query is the dataset's own flow, named after it (as in DLT).
            Flow flow{d.name, d.name, f, d.loc, d.query, nullptr, {}, std::nullopt};
            collect_inputs(*d.query, {}, flow.inputs);
            g_.flows[d.name] = std::move(flow);
            ds.flows.push_back(d.name);
          }
          g_.datasets[d.name] = std::move(ds);
        }
      }
    }
    for (size_t f = 0; f < g_.statements.size(); ++f) {
      for (const auto& st : g_.statements[f]) {
        if (!st.sink) continue;
        const auto& sk = *st.sink;
        if (!check_name(f, sk.name_loc, "sink", sk.name)) continue;
        if (folded.count(to_lower(sk.name))) {
          const auto& first = g_.datasets.at(folded.at(to_lower(sk.name)));
          error(f, sk.name_loc, fmt::format("sink '{}' has the name of the {} defined at {}: rename one of "
                                            "them", sk.name, kind_name(first.kind),
                                            written_at(g_.files[first.file], first.loc)));
          continue;
        }
        if (auto it = g_.sinks.find(sk.name); it != g_.sinks.end()) {
          error(f, sk.name_loc, fmt::format("sink '{}' is defined twice; first at {}", sk.name,
                                            written_at(g_.files[it->second.file], it->second.loc)));
          continue;
        }
        g_.sinks[sk.name] = Sink{sk.name, f, sk.name_loc, &sk, {}};
      }
    }
    std::map<std::string, std::string> folded_flows;  // lower-case flow name -> flow
    for (const auto& [name, flow] : g_.flows) folded_flows[to_lower(name)] = name;
    for (size_t f = 0; f < g_.statements.size(); ++f) {
      for (const auto& st : g_.statements[f]) {
        if (st.flow) {
          const auto& fl = *st.flow;
          if (!check_name(f, fl.name_loc, "flow", fl.name)) continue;
          if (g_.flows.count(fl.name)) {
            error(f, fl.loc, fmt::format("flow '{}' is defined twice", fl.name));
            continue;
          }
          if (auto it = folded_flows.find(to_lower(fl.name)); it != folded_flows.end()) {
            error(f, fl.name_loc, fmt::format("flow '{}' differs only in case from flow '{}' (a flow's state is kept in "
                                         "a folder named after it): rename one of them", fl.name, it->second));
            continue;
          }
          folded_flows[to_lower(fl.name)] = fl.name;
          Flow flow{fl.name, fl.target, f, fl.target_loc, fl.query, nullptr, {}, fl.comment};
          collect_inputs(*fl.query, {}, flow.inputs);
          g_.flows[fl.name] = std::move(flow);
        } else if (st.apply_changes) {
          const auto& ac = *st.apply_changes;
          std::string name = ac.flow_name.empty() ? "apply_changes_into_" + ac.target : ac.flow_name;
          if (g_.flows.count(name)) {
            error(f, ac.loc, fmt::format("flow '{}' is defined twice", name));
            continue;
          }
          Flow flow{name, ac.target, f, ac.target_loc, nullptr, &ac, {}, std::nullopt};
          collect_from_ref(*ac.source, {}, flow.inputs);
          if (!ac.source->stream) {
            error(f, ac.source->loc, "APPLY CHANGES reads a stream: write FROM STREAM(source)");
          }
          g_.flows[name] = std::move(flow);
        }
      }
    }
  }

  std::string suggestion(const std::string& name) const {
    std::vector<std::string> names;
    for (const auto& [n, d] : g_.datasets) names.push_back(n);
    std::string best = closest_match(name, names);
    return best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best);
  }

  void link() {
    for (auto& [name, flow] : g_.flows) {
      // Targets: explicit flows and APPLY CHANGES need a streaming table defined for them.
      if (auto sink = g_.sinks.find(flow.target); sink != g_.sinks.end()) {
        link_sink_flow(sink->second, flow);
        continue;
      }
      auto target = g_.datasets.find(flow.target);
      if (target == g_.datasets.end()) {
        error(flow.file, flow.loc, fmt::format("flow '{}' writes to '{}', which is not defined; add "
                                               "CREATE OR REFRESH STREAMING TABLE {}{}",
                                               name, flow.target, flow.target, suggestion(flow.target)));
      } else if (flow.name != flow.target) {
        if (target->second.kind != DatasetKind::kStreamingTable) {
          error(flow.file, flow.loc, fmt::format("flow '{}' writes to '{}', a {}; only streaming tables take "
                                                 "extra flows", name, flow.target, kind_name(target->second.kind)));
        } else {
          target->second.flows.push_back(name);
        }
      }
      for (const auto& in : flow.inputs) {
        if (in.kind == FlowInput::Kind::kKafka) {
          if (in.name.empty()) {
            error(flow.file, in.loc, "read_kafka needs topic => 'name'");
          }
          continue;
        }
        if (in.ref && in.ref->kind == sql::TableRefKind::kFunction && !exec::is_table_changes(*in.ref)) {
          error(flow.file, in.loc, unsupported_table_function(join_name(in.ref->name)));
          continue;
        }
        auto it = g_.datasets.find(in.name);
        if (it == g_.datasets.end()) {
          error(flow.file, in.loc, fmt::format("unknown table '{}'{}", in.name, suggestion(in.name)));
          continue;
        }
        if (in.streaming && it->second.kind == DatasetKind::kMaterializedView) {
          error(flow.file, in.loc, fmt::format("cannot read materialized view '{}' as a stream: it is "
                                               "recomputed, not appended to; read it without STREAM()",
                                               in.name));
        }
      }
    }
  }

  // A flow into a sink (CREATE FLOW f AS INSERT INTO sink SELECT ... FROM STREAM(t)): it reads
  // one streaming table of the pipeline as a stream (its progress is that table's version).
  void link_sink_flow(Sink& sink, const Flow& flow) {
    if (flow.apply_changes) {
      error(flow.file, flow.loc, fmt::format("APPLY CHANGES writes a streaming table, and '{}' is a sink: write "
                                             "into a streaming table and add a flow from it into the sink",
                                             sink.name));
      return;
    }
    sink.flows.push_back(flow.name);
    for (const auto& in : flow.inputs) {
      if (in.kind == FlowInput::Kind::kKafka) {
        error(flow.file, in.loc, fmt::format("flow '{}' into sink '{}' reads read_kafka directly: a sink reads a "
                                             "streaming table of the pipeline; ingest the topic into one first "
                                             "and read STREAM(that_table)", flow.name, sink.name));
        continue;
      }
      auto it = g_.datasets.find(in.name);
      if (it == g_.datasets.end()) {
        error(flow.file, in.loc, fmt::format("unknown table '{}'{}", in.name, suggestion(in.name)));
        continue;
      }
      if (it->second.kind != DatasetKind::kStreamingTable || !in.streaming) {
        error(flow.file, in.loc, fmt::format("flow '{}' into sink '{}' reads '{}' as a table: a sink flow reads one "
                                             "streaming table as a stream, write FROM STREAM({})",
                                             flow.name, sink.name, in.name, in.name));
      }
    }
  }

  // Topological order of datasets; a cycle is an error naming its members. Depth-first with
  // an explicit stack: a chain of thousands of datasets must not recurse that deep.
  void order() {
    std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
    struct Frame {
      std::string name;
      std::vector<std::string> upstream;
      size_t next = 0;
    };
    for (const auto& [root, root_dataset] : g_.datasets) {
      if (state[root] != 0) continue;
      std::vector<Frame> path;
      path.push_back({root, g_.upstream_of(root)});
      state[root] = 1;
      while (!path.empty()) {
        Frame& top = path.back();
        if (top.next == top.upstream.size()) {
          state[top.name] = 2;
          g_.order.push_back(top.name);
          path.pop_back();
          continue;
        }
        const std::string up = top.upstream[top.next++];
        if (state[up] == 2) continue;
        if (state[up] == 1) {
          std::string cycle;
          auto start = std::find_if(path.begin(), path.end(), [&](const Frame& f) { return f.name == up; });
          for (auto it = start; it != path.end(); ++it) cycle += it->name + " -> ";
          const auto& d = g_.datasets.at(up);
          error(d.file, d.loc, fmt::format("the pipeline has a cycle: {}{}", cycle, up));
          continue;
        }
        state[up] = 1;
        path.push_back({up, g_.upstream_of(up)});
      }
    }
  }

  Graph& g_;
  std::vector<std::string> errors_;
};

}  // namespace

std::string unsupported_table_function(const std::string& name) {
  return fmt::format("table function {} is not supported (only read_kafka and table_changes are): read a Kafka "
                     "topic with read_kafka(topic => '...'), a dataset of the pipeline by its name, or its "
                     "change feed with table_changes('name', version)",
                     name);
}

std::vector<std::string> Graph::upstream_of(const std::string& dataset) const {
  std::set<std::string> out;
  auto d = datasets.find(dataset);
  if (d == datasets.end()) return {};
  for (const auto& f : d->second.flows) {
    for (const auto& in : flows.at(f).inputs) {
      if (in.kind == FlowInput::Kind::kDataset && datasets.count(in.name)) out.insert(in.name);
    }
  }
  return {out.begin(), out.end()};
}

std::vector<std::string> Graph::sink_upstream(const std::string& sink) const {
  std::set<std::string> out;
  auto s = sinks.find(sink);
  if (s == sinks.end()) return {};
  for (const auto& f : s->second.flows) {
    for (const auto& in : flows.at(f).inputs) {
      if (in.kind == FlowInput::Kind::kDataset && datasets.count(in.name)) out.insert(in.name);
    }
  }
  return {out.begin(), out.end()};
}

arrow::Result<Graph> build_graph(std::vector<sql::SourceFile> files) {
  Graph g;
  g.files = std::move(files);
  std::vector<std::string> parse_errors;
  for (const auto& f : g.files) {
    auto st = sql::parse_statements(f);
    if (!st.ok()) {
      parse_errors.push_back(st.status().message());
      g.statements.emplace_back();
    } else {
      g.statements.push_back(std::move(*st));
    }
  }
  if (!parse_errors.empty()) {
    std::string all;
    for (const auto& e : parse_errors) all += (all.empty() ? "" : "\n") + e;
    return arrow::Status::Invalid(fmt::format("{} error(s) in the pipeline:\n{}", parse_errors.size(), all));
  }
  ARROW_RETURN_NOT_OK(Resolver(g).run());
  return g;
}

std::string graph_to_dot(const Graph& g) {
  std::string out = "digraph pipeline {\n  rankdir=LR;\n";
  std::set<std::string> topics;
  for (const auto& [name, d] : g.datasets) {
    const char* shape = d.kind == DatasetKind::kStreamingTable ? "box" : d.kind == DatasetKind::kMaterializedView ? "box3d" : "ellipse";
    out += fmt::format("  \"{}\" [shape={}, label=\"{}\\n({})\"];\n", name, shape, name, kind_name(d.kind));
  }
  for (const auto& [name, s] : g.sinks) {
    out += fmt::format("  \"{}\" [shape=cds, label=\"{}\\n(sink)\"];\n", name, name);
  }
  for (const auto& [fname, f] : g.flows) {
    for (const auto& in : f.inputs) {
      std::string from = in.kind == FlowInput::Kind::kKafka ? "kafka:" + in.name : in.name;
      if (in.kind == FlowInput::Kind::kKafka && topics.insert(from).second) {
        out += fmt::format("  \"{}\" [shape=cds];\n", from);
      }
      out += fmt::format("  \"{}\" -> \"{}\" [label=\"{}{}\"];\n", from, f.target, fname, in.streaming ? " (stream)" : "");
    }
  }
  return out + "}\n";
}

std::string graph_to_mermaid(const Graph& g) {
  std::string out = "flowchart LR\n";
  auto id = [](std::string s) {
    for (auto& c : s) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return s;
  };
  for (const auto& [name, d] : g.datasets) {
    out += d.kind == DatasetKind::kMaterializedView ? fmt::format("  {}[({})]\n", id(name), name)
                                                    : fmt::format("  {}[{}]\n", id(name), name);
  }
  for (const auto& [name, s] : g.sinks) out += fmt::format("  {}[/{} sink/]\n", id(name), name);
  for (const auto& [fname, f] : g.flows) {
    for (const auto& in : f.inputs) {
      std::string from = in.kind == FlowInput::Kind::kKafka ? "kafka_" + id(in.name) : id(in.name);
      if (in.kind == FlowInput::Kind::kKafka) out += fmt::format("  {}>{}]\n", from, "kafka: " + in.name);
      out += fmt::format("  {} -->{} {}\n", from, in.streaming ? "|stream|" : "", id(f.target));
    }
  }
  return out;
}

std::string graph_to_json(
    const Graph& g,
    const std::map<std::string, std::vector<std::pair<std::string, std::set<std::string>>>>& columns) {
  nlohmann::json datasets = nlohmann::json::array();
  for (const auto& name : g.order) {
    const auto& d = g.datasets.at(name);
    datasets.push_back({{"name", name},
                        {"kind", kind_name(d.kind)},
                        {"file", g.files[d.file].name},
                        {"line", written_line(g.files[d.file], d.loc)},
                        {"flows", d.flows},
                        {"upstream", g.upstream_of(name)}});
    if (auto it = columns.find(name); it != columns.end()) {
      nlohmann::json cols = nlohmann::json::array();
      for (const auto& [column, sources] : it->second) {
        cols.push_back({{"name", column}, {"from", std::vector<std::string>(sources.begin(), sources.end())}});
      }
      datasets.back()["columns"] = cols;
    }
  }
  nlohmann::json flows = nlohmann::json::array();
  for (const auto& [name, f] : g.flows) {
    nlohmann::json inputs = nlohmann::json::array();
    for (const auto& in : f.inputs) {
      inputs.push_back({{"kind", in.kind == FlowInput::Kind::kKafka ? "kafka" : "dataset"},
                        {"name", in.name},
                        {"streaming", in.streaming}});
    }
    flows.push_back({{"name", name}, {"target", f.target}, {"inputs", inputs},
                     {"apply_changes", f.apply_changes != nullptr}});
  }
  nlohmann::json out{{"datasets", datasets}, {"flows", flows}, {"order", g.order}};
  if (!g.sinks.empty()) {  // the key only where there are sinks: older readers see no change
    nlohmann::json sinks = nlohmann::json::array();
    for (const auto& [name, s] : g.sinks) {
      std::string format;
      for (const auto& o : s.definition->options) {
        if (to_lower(o.key) == "format") format = o.value;
      }
      sinks.push_back({{"name", name}, {"format", format}, {"file", g.files[s.file].name},
                       {"line", written_line(g.files[s.file], s.loc)},
                       {"flows", s.flows}, {"upstream", g.sink_upstream(name)}});
      if (auto it = columns.find(name); it != columns.end()) {
        nlohmann::json cols = nlohmann::json::array();
        for (const auto& [column, sources] : it->second) {
          cols.push_back({{"name", column}, {"from", std::vector<std::string>(sources.begin(), sources.end())}});
        }
        sinks.back()["columns"] = cols;
      }
    }
    out["sinks"] = std::move(sinks);
  }
  return out.dump(2) + "\n";
}

}  // namespace sluice::pipeline
