// Canonical text of syntax trees (golden tests, debugging).
#include "sluice/sql/ast.h"

#include <fmt/format.h>

#include <cctype>

namespace sluice::sql {

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'";
    out += c;
  }
  return out + "'";
}

// A name part as SQL would need it written: `quoted` unless a plain identifier.
std::string name_part(const std::string& p) {
  bool plain = !p.empty() && (std::isalpha(static_cast<unsigned char>(p[0])) || p[0] == '_');
  for (char c : p) plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  return plain ? p : "`" + p + "`";
}

std::string join_parts(const std::vector<std::string>& parts, const char* sep = ".") {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + name_part(p);
  return out;
}

std::string table_ref(const TableRef& t);

}  // namespace

std::string to_string(const Expr& e) {
  auto args = [&](size_t from = 0) {
    std::string out;
    for (size_t i = from; i < e.args.size(); ++i) out += " " + to_string(*e.args[i]);
    return out;
  };
  switch (e.kind) {
    case ExprKind::kColumn: return join_parts(e.parts);
    case ExprKind::kStar: {
      std::string out = e.parts.empty() ? "*" : join_parts(e.parts) + ".*";
      if (!e.except.empty()) out = "(" + out + " except " + join_parts(e.except, " ") + ")";
      return out;
    }
    case ExprKind::kLiteral:
      if (e.literal_type == "string") return quote(e.value);
      if (e.literal_type == "integer" || e.literal_type == "decimal" || e.literal_type == "boolean" ||
          e.literal_type == "null") {
        return e.literal_type == "null" ? "NULL" : e.value;
      }
      return fmt::format("{} {}", e.literal_type, quote(e.value));
    case ExprKind::kUnary: return fmt::format("({}{})", e.op, args());
    case ExprKind::kBinary: return fmt::format("({}{})", e.op, args());
    case ExprKind::kFunction:
      return fmt::format("({}{}{})", e.name, e.distinct ? " DISTINCT" : "", args());
    case ExprKind::kNamedArg: return fmt::format("(=> {}{})", e.name, args());
    case ExprKind::kCast: return fmt::format("({}{} AS {})", e.name, args(), e.type_name);
    case ExprKind::kCase: {
      std::string out = "(CASE";
      size_t i = 0;
      if (e.has_operand) out += " " + to_string(*e.args[i++]);
      size_t end = e.args.size() - (e.has_else ? 1 : 0);
      for (; i + 1 < end + 1 && i < end; i += 2) {
        out += fmt::format(" (WHEN {} THEN {})", to_string(*e.args[i]), to_string(*e.args[i + 1]));
      }
      if (e.has_else) out += " (ELSE " + to_string(*e.args.back()) + ")";
      return out + ")";
    }
    case ExprKind::kIn:
      if (e.query) {
        return fmt::format("({}IN {} {})", e.negated ? "NOT " : "", to_string(*e.args[0]),
                           to_string(*e.query));
      }
      return fmt::format("({}IN{})", e.negated ? "NOT " : "", args());
    case ExprKind::kBetween: return fmt::format("({}BETWEEN{})", e.negated ? "NOT " : "", args());
    case ExprKind::kIsNull: return fmt::format("(IS {}NULL{})", e.negated ? "NOT " : "", args());
    case ExprKind::kIsBool: return fmt::format("(IS {}{}{})", e.negated ? "NOT " : "", e.name, args());
    case ExprKind::kLike: return fmt::format("({}{}{})", e.negated ? "NOT " : "", e.op, args());
    case ExprKind::kSubscript: return fmt::format("([]{})", args());
    case ExprKind::kField: return fmt::format("(. {} {})", to_string(*e.args[0]), e.name);
    case ExprKind::kJsonPath: return fmt::format("(: {} {})", to_string(*e.args[0]), e.name);
    case ExprKind::kSubquery: return "(subquery " + to_string(*e.query) + ")";
    case ExprKind::kExists: return "(EXISTS " + to_string(*e.query) + ")";
  }
  return "?";
}

namespace {

std::string table_ref(const TableRef& t) {
  std::string out;
  switch (t.kind) {
    case TableRefKind::kTable: out = (t.stream ? "(stream " : "(table ") + join_parts(t.name); break;
    case TableRefKind::kFunction: {
      out = (t.stream ? "(stream-call " : "(call ") + join_parts(t.name);
      for (const auto& a : t.args) out += " " + to_string(*a);
      break;
    }
    case TableRefKind::kSubquery: out = "(subquery " + to_string(*t.query); break;
    case TableRefKind::kJoin: {
      out = fmt::format("(join {} {} {}", t.join_type, table_ref(*t.left), table_ref(*t.right));
      if (t.on) out += " (on " + to_string(*t.on) + ")";
      if (!t.using_columns.empty()) out += " (using " + join_parts(t.using_columns, " ") + ")";
      break;
    }
  }
  if (t.watermark) {
    out += fmt::format(" (watermark {} {})", to_string(*t.watermark->column), to_string(*t.watermark->delay));
  }
  if (!t.alias.empty()) out += " (as " + t.alias + ")";
  return out + ")";
}

std::string select_text(const Select& s) {
  std::string out = s.distinct ? "(select distinct" : "(select";
  if (!s.distinct_on.empty()) {
    out += " (on";
    for (const auto& e : s.distinct_on) out += " " + to_string(*e);
    out += ")";
  }
  for (const auto& item : s.items) {
    out += " " + to_string(*item.expr);
    if (!item.alias.empty()) out += " (as " + item.alias + ")";
    if (!item.aliases.empty()) out += " (as " + join_parts(item.aliases, " ") + ")";
  }
  if (s.from) out += " (from " + table_ref(*s.from) + ")";
  for (const auto& v : s.lateral_views) {
    out += fmt::format(" (lateral-view{} {}", v.outer ? " outer" : "", to_string(*v.generator));
    if (!v.table_alias.empty()) out += " " + v.table_alias;
    if (!v.columns.empty()) out += " (as " + join_parts(v.columns, " ") + ")";
    out += ")";
  }
  if (s.where) out += " (where " + to_string(*s.where) + ")";
  if (!s.group_by.empty()) {
    out += " (group-by";
    for (const auto& g : s.group_by) out += " " + to_string(*g);
    out += ")";
  }
  if (s.having) out += " (having " + to_string(*s.having) + ")";
  return out + ")";
}

const char* action_name(ViolationAction a) {
  switch (a) {
    case ViolationAction::kWarn: return "warn";
    case ViolationAction::kDropRow: return "drop-row";
    case ViolationAction::kFailUpdate: return "fail-update";
  }
  return "?";
}

const char* dataset_kind(DatasetKind k) {
  switch (k) {
    case DatasetKind::kStreamingTable: return "streaming-table";
    case DatasetKind::kMaterializedView: return "materialized-view";
    case DatasetKind::kView: return "view";
    case DatasetKind::kTemporaryView: return "temporary-view";
  }
  return "?";
}

}  // namespace

std::string to_string(const Query& q) {
  std::string out = "(query";
  for (const auto& c : q.ctes) out += fmt::format(" (with {} {})", c.name, to_string(*c.query));
  for (size_t i = 0; i < q.selects.size(); ++i) {
    if (i > 0) out += q.union_all[i - 1] ? " union-all" : " union";
    out += " " + select_text(q.selects[i]);
  }
  if (!q.order_by.empty()) {
    out += " (order-by";
    for (const auto& o : q.order_by) {
      out += " (" + to_string(*o.expr) + (o.ascending ? " asc" : " desc");
      if (o.nulls_first) out += *o.nulls_first ? " nulls-first" : " nulls-last";
      out += ")";
    }
    out += ")";
  }
  if (q.limit) out += " (limit " + to_string(*q.limit) + ")";
  return out + ")";
}

std::string to_string(const Statement& st) {
  if (st.dataset) {
    const auto& d = *st.dataset;
    std::string out = fmt::format("(create {}{} {}", dataset_kind(d.kind), d.or_refresh ? " or-refresh" : "", d.name);
    for (const auto& c : d.columns) {
      std::string tags;
      for (const auto& [k, v] : c.tags) tags += fmt::format(" (tag {} {})", quote(k), quote(v));
      out += fmt::format("\n  (column {} {}{}{}{})", c.name, c.type_name, c.not_null ? " not-null" : "",
                         c.comment ? " (comment " + quote(*c.comment) + ")" : "", tags);
    }
    for (const auto& c : d.constraints) {
      out += fmt::format("\n  (expect {} {} {})", c.name, to_string(*c.expr), action_name(c.action));
    }
    if (d.comment) out += "\n  (comment " + quote(*d.comment) + ")";
    if (!d.partitioned_by.empty()) out += "\n  (partitioned-by " + join_parts(d.partitioned_by, " ") + ")";
    if (!d.cluster_by.empty()) {
      std::vector<std::string> columns;
      for (const auto& c : d.cluster_by) columns.push_back(join_parts(c.path));
      out += "\n  (cluster-by " + join_parts(columns, " ") + ")";
    }
    for (const auto& [k, v] : d.properties) out += fmt::format("\n  (property {} {})", quote(k), quote(v));
    if (d.query) out += "\n  " + to_string(*d.query);
    return out + ")";
  }
  if (st.flow) {
    const auto& f = *st.flow;
    return fmt::format("(create-flow {} (into {}{}){}\n  {})", f.name, f.target, f.by_name ? " by-name" : "",
                       f.comment ? "\n  (comment " + quote(*f.comment) + ")" : "", to_string(*f.query));
  }
  if (st.sink) {
    // Values are not shown: an option may hold a secret (kafka.sasl.password).
    std::string out = "(create-sink " + st.sink->name;
    for (const auto& o : st.sink->options) out += " (option " + o.key + ")";
    return out + ")";
  }
  const auto& a = *st.apply_changes;
  std::string out = fmt::format("(apply-changes (into {}) (from {}) (keys {})", a.target,
                                table_ref(*a.source), join_parts(a.keys, " "));
  if (a.delete_when) out += "\n  (delete-when " + to_string(*a.delete_when) + ")";
  if (a.truncate_when) out += "\n  (truncate-when " + to_string(*a.truncate_when) + ")";
  out += "\n  (sequence-by " + to_string(*a.sequence_by) + ")";
  if (!a.columns.empty()) out += "\n  (columns " + join_parts(a.columns, " ") + ")";
  if (!a.except_columns.empty()) out += "\n  (columns-except " + join_parts(a.except_columns, " ") + ")";
  if (a.ignore_null_updates) out += "\n  (ignore-null-updates)";
  if (a.track_history) {
    out += "\n  (track-history";
    if (!a.track_columns.empty()) out += " " + join_parts(a.track_columns, " ");
    if (!a.track_except_columns.empty()) out += " (except " + join_parts(a.track_except_columns, " ") + ")";
    out += ")";
  }
  if (!a.flow_name.empty()) out += "\n  (flow " + a.flow_name + ")";
  return out + fmt::format("\n  (scd-type {}))", a.scd_type);
}

}  // namespace sluice::sql
