// Loading a pipeline's SQL files, and the SQL its Python files generate (the definer, run as a
// subprocess: posix_spawn with argv, no shell; bounded in time and output).
#include "sluice/pipeline/sql_sources.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/common/text.h"
#include "sluice/sql/generated_source.h"

extern char** environ;

namespace sluice::pipeline {

namespace fs = std::filesystem;

std::string substitute_variables(const std::string& text,
                                 const std::map<std::string, std::string>& configuration) {
  // Scans like the SQL lexer so a reference inside a string literal is known: there the value is
  // escaped for that literal (quote doubled, backslash doubled), so `ab'cd` or `a\nb` arrive as
  // written instead of ending the literal or turning into a newline. Elsewhere (code, comments,
  // `quoted names`) the value is pasted as written.
  enum class Mode { kCode, kString, kLineComment, kBlockComment, kBackquote };
  Mode mode = Mode::kCode;
  char quote = 0;  // the quote of the string literal being copied
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t end = text.find('}', i);
      if (end != std::string::npos) {
        auto it = configuration.find(text.substr(i + 2, end - i - 2));
        if (it == configuration.end()) {
          out.append(text, i, end - i + 1);  // left for the parser to report
        } else if (mode != Mode::kString) {
          out += it->second;
        } else {
          for (char v : it->second) {
            if (v == quote || v == '\\') out += v;
            out += v;
          }
        }
        i = end + 1;
        continue;
      }
    }
    out += c;
    ++i;
    const char next = i < text.size() ? text[i] : 0;
    switch (mode) {
      case Mode::kCode:
        if (c == '\'' || c == '"') {
          mode = Mode::kString;
          quote = c;
        } else if (c == '`') {
          mode = Mode::kBackquote;
        } else if (c == '-' && next == '-') {
          mode = Mode::kLineComment;
        } else if (c == '/' && next == '*') {
          mode = Mode::kBlockComment;
          out += next;
          ++i;
        }
        break;
      case Mode::kString:
        if (c == '\\' && i < text.size()) {
          out += next;  // an escaped character, never the end of the literal
          ++i;
        } else if (c == quote && next == quote) {
          out += next;
          ++i;
        } else if (c == quote) {
          mode = Mode::kCode;
        }
        break;
      case Mode::kLineComment:
        if (c == '\n') mode = Mode::kCode;
        break;
      case Mode::kBlockComment:
        if (c == '*' && next == '/') {
          out += next;
          ++i;
          mode = Mode::kCode;
        }
        break;
      case Mode::kBackquote:
        if (c == '`') mode = Mode::kCode;
        break;
    }
  }
  return out;
}

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

arrow::Result<std::string> read_library_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return io_error("cannot read {}", p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Closes a descriptor once.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// How long the definer may take and how much it may print: defining a graph is quick, so
// these only stop a pipeline file that loops or floods.
constexpr size_t kMaxDefinerOutput = size_t{64} << 20;
constexpr size_t kMaxDefinerStderrKept = size_t{64} << 10;

// SLUICE_PYTHON_TIMEOUT_MS, when set, must be a whole number of milliseconds above 0: any other
// value is refused (not replaced by the default).
arrow::Result<std::chrono::milliseconds> definer_timeout() {
  if (const char* v = std::getenv("SLUICE_PYTHON_TIMEOUT_MS"); v != nullptr && *v != 0) {
    auto ms = parse_int64(v, "SLUICE_PYTHON_TIMEOUT_MS");
    if (!ms.ok() || *ms <= 0) {
      return invalid("SLUICE_PYTHON_TIMEOUT_MS='{}' is not a whole number of milliseconds above 0",
                     quote_for_error(v));
    }
    return std::chrono::milliseconds(*ms);
  }
  return std::chrono::milliseconds(120000);
}

// Runs `argv` with `env`, `input` on its stdin, collecting stdout (at most kMaxDefinerOutput)
// and the last kMaxDefinerStderrKept bytes of stderr; kills its process group when it runs
// past `timeout` or prints too much.
arrow::Result<DefinerExit> run_subprocess(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                                          const std::string& input, std::chrono::milliseconds timeout) {
  const std::string& program = argv.front();
  int in[2], out[2], err[2];
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  if (::pipe2(in, O_CLOEXEC) != 0) return io_error("cannot run {}: pipe: {}", program, std::strerror(errno));
  in_r.fd = in[0], in_w.fd = in[1];
  if (::pipe2(out, O_CLOEXEC) != 0) return io_error("cannot run {}: pipe: {}", program, std::strerror(errno));
  out_r.fd = out[0], out_w.fd = out[1];
  if (::pipe2(err, O_CLOEXEC) != 0) return io_error("cannot run {}: pipe: {}", program, std::strerror(errno));
  err_r.fd = err[0], err_w.fd = err[1];
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);  // its own group: a timeout ends what it started too
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, program.c_str(), &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) {
    return io_error("cannot run '{}' for the pipeline's Python files: {} (install Python 3.9 or newer, or set "
                    "SLUICE_PYTHON to the interpreter to use)",
                    program, std::strerror(spawned));
  }
  in_r.close();
  out_w.close();
  err_w.close();
  // Whatever happens from here, the definer's process group (it and anything it started: a
  // background child of a pipeline file) ends with this call.
  struct GroupKiller {
    pid_t pid;
    ~GroupKiller() { ::kill(-pid, SIGKILL); }
  } group_killer{pid};
  // The watchdog: stdin stays open after the request (one line) while sluice waits; the definer
  // reads it to EOF in a thread and kills its own group then, so a sluice that dies (SIGKILL,
  // Ctrl-C, a crash) leaves no definer behind. The write end is close-on-exec.
  ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  ::fcntl(out_r.fd, F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.fd, F_SETFL, O_NONBLOCK);
  // Its exit is watched too (a pidfd where the kernel has them, else short polls): once the
  // definer itself exited, what is left in the pipes is read and a grandchild holding them is
  // not waited for.
  Fd exited_fd;
#ifdef SYS_pidfd_open
  exited_fd.fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#endif
  // A definer that exits without reading all of stdin must not end sluice with SIGPIPE.
  sigset_t pipe_signal, old_mask;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  DefinerExit exit;
  size_t written = 0;
  bool too_much = false;
  const std::string request = input + "\n";
  int status = 0;
  pid_t done = 0;
  auto read_from = [&](Fd& from) {  // false: nothing more now (EAGAIN) or its end
    char buf[65536];
    const auto r = ::read(from.fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) return true;
    if (r < 0 && errno == EAGAIN) return false;
    if (r <= 0) {
      from.close();
      return false;
    }
    if (&from == &out_r) {
      exit.out.append(buf, static_cast<size_t>(r));
      if (exit.out.size() > kMaxDefinerOutput) too_much = true;
    } else {
      exit.err.append(buf, static_cast<size_t>(r));
      if (exit.err.size() > 2 * kMaxDefinerStderrKept) exit.err.erase(0, exit.err.size() - kMaxDefinerStderrKept);
    }
    return !too_much;
  };
  while (true) {
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd fds[4];
    int n = 0;
    if (in_w.fd >= 0 && written < request.size()) fds[n++] = {in_w.fd, POLLOUT, 0};
    if (out_r.fd >= 0) fds[n++] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) fds[n++] = {err_r.fd, POLLIN, 0};
    if (exited_fd.fd >= 0) fds[n++] = {exited_fd.fd, POLLIN, 0};
    const int wait_ms = exited_fd.fd >= 0 ? 1000 : 20;
    const int ready = ::poll(fds, n, static_cast<int>(std::min<int64_t>(left.count(), wait_ms)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_w.fd) {
        const auto w = ::write(in_w.fd, request.data() + written, request.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) in_w.close();
      } else if (fds[i].fd == out_r.fd) {
        read_from(out_r);
      } else if (fds[i].fd == err_r.fd) {
        read_from(err_r);
      }
    }
    if (too_much) break;
  }
  if (done == pid) {
    // It exited: what it wrote before is in the pipes; read that, not what a grandchild may add.
    while (!too_much && out_r.fd >= 0 && read_from(out_r)) {
    }
    while (err_r.fd >= 0 && read_from(err_r)) {
    }
  }
  in_w.close();
  if (too_much) done = 0;  // refused below like a definer stopped while printing
  sigset_t pending;
  sigpending(&pending);
  if (sigismember(&pending, SIGPIPE) == 1 && sigismember(&old_mask, SIGPIPE) == 0) {
    const timespec now{0, 0};
    sigtimedwait(&pipe_signal, nullptr, &now);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (done != pid) {
    ::kill(-pid, SIGKILL);  // its process group: the definer and anything it started
    ::waitpid(pid, &status, 0);
    if (too_much) {
      return io_error("the pipeline's Python files printed more than {} MiB while defining the pipeline and were "
                      "stopped", kMaxDefinerOutput >> 20);
    }
    return io_error("the pipeline's Python files did not finish defining the pipeline within {} ms and were "
                    "stopped (a loop or a wait at import time? SLUICE_PYTHON_TIMEOUT_MS sets the limit)",
                    timeout.count());
  }
  if (exit.err.size() > kMaxDefinerStderrKept) exit.err.erase(0, exit.err.size() - kMaxDefinerStderrKept);
  if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  } else {
    exit.code = WEXITSTATUS(status);
  }
  return exit;
}

bool holds_definer(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "sluice" / "_define" / "__main__.py", ec);
}

// The values an error must not show: every configuration value (a pipeline's configuration
// may hold secrets; three characters or more, so that a `0` does not blank every zero; all of
// a secret-looking key's) and the ${env:}/${file:} values read for pipeline.yaml.
std::vector<std::string> configuration_secrets(const std::map<std::string, std::string>& configuration) {
  std::vector<std::string> out = remembered_secrets();
  for (const auto& [key, value] : configuration) {
    if (!value.empty() && (value.size() >= 3 || looks_secret(key))) out.push_back(value);
  }
  return out;
}

// The last lines of the definer's stderr, for an error (at most 20 lines, redacted).
std::string stderr_tail(const std::string& err, const std::vector<std::string>& secrets) {
  size_t start = err.size();
  int lines = 0;
  while (start > 0 && lines < 21) {
    start = err.rfind('\n', start - 1);
    if (start == std::string::npos) {
      start = 0;
      break;
    }
    ++lines;
  }
  std::string tail = err.substr(start);
  while (!tail.empty() && (tail.front() == '\n')) tail.erase(0, 1);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
  return redact_values(tail, secrets);
}

}  // namespace

bool imports_pipeline_api(const std::string& python_text) {
  // Statement by statement, in words (split at blanks, commas and parentheses): `import a, dlt`,
  // `from dlt import (table,`, `from pyspark import sql, pipelines as dp`, `import dlt; x = 1`,
  // a backslash continuation joined first, a UTF-8 byte order mark dropped. A comment or a string
  // holding the words does not start with `import` / `from`.
  auto is_api = [](const std::string& module) {
    return module == "dlt" || module.rfind("dlt.", 0) == 0 || module == "pyspark.pipelines" ||
           module.rfind("pyspark.pipelines.", 0) == 0;
  };
  std::string text = python_text;
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
  std::string joined;  // backslash-newline continuations joined, `;` separating statements
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '\n' || text[i + 1] == '\r')) {
      i += (text[i + 1] == '\r' && i + 2 < text.size() && text[i + 2] == '\n') ? 2 : 1;
      joined += ' ';
    } else {
      joined += text[i] == ';' ? '\n' : text[i];
    }
  }
  std::istringstream in(joined);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words;
    std::string word;
    for (char c : line + " ") {
      if (c == ' ' || c == '\t' || c == ',' || c == '(' || c == ')' || c == '\r' || c == '\f') {
        if (!word.empty()) words.push_back(std::move(word));
        word.clear();
      } else {
        word += c;
      }
    }
    if (words.size() >= 2 && words[0] == "import") {
      for (size_t i = 1; i < words.size(); ++i) {
        if (is_api(words[i])) return true;
      }
    } else if (words.size() >= 3 && words[0] == "from" && words[2] == "import") {
      if (is_api(words[1])) return true;
      if (words[1] == "pyspark") {
        for (size_t i = 3; i < words.size(); ++i) {
          if (words[i] == "pipelines") return true;
        }
      }
    }
  }
  return false;
}

arrow::Result<fs::path> python_package_dir() {
  if (const char* v = std::getenv("SLUICE_PYTHONPATH"); v != nullptr && *v != 0) {
    if (!holds_definer(v)) {
      return invalid("SLUICE_PYTHONPATH is {}, which holds no sluice/_define/__main__.py (the folder holding "
                     "the Python package sluice)", v);
    }
    return fs::path(v);
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path bin = exe.parent_path();
    const fs::path candidates[] = {bin / ".." / "share" / "sluice" / "python", bin / ".." / "python",
                                   bin / ".." / ".."};
    for (const fs::path& candidate : candidates) {
      if (holds_definer(candidate)) return fs::weakly_canonical(candidate, ec);
    }
  }
  return invalid("cannot find sluice's Python package (sluice/_define/) for the pipeline's .py files: looked in "
                 "$SLUICE_PYTHONPATH (unset) and beside the sluice binary ({}); set SLUICE_PYTHONPATH to the folder "
                 "holding sluice/_define/ (the repository's python/)", exe.parent_path().string());
}

arrow::Result<std::vector<sql::SourceFile>> generated_sql_files(const std::vector<std::string>& names,
                                                                 const DefinerExit& exit,
                                                                 const std::vector<std::string>& secrets) {
  using nlohmann::json;
  auto crashed = [&](const std::string& what) {
    const std::string tail = stderr_tail(exit.err, secrets);
    return invalid("{}: the Python definer {}{}", names.empty() ? std::string("pipeline") : names.front(), what,
                   tail.empty() ? std::string() : ":\n" + tail);
  };
  if (exit.signal != 0) return crashed(fmt::format("was ended by signal {}", exit.signal));
  json doc;
  try {
    doc = json::parse(exit.out);
  } catch (const json::exception&) {
    return crashed(fmt::format("exited with status {} without its answer", exit.code));
  }
  try {
    if (doc.contains("error")) {
      const auto& e = doc.at("error");
      std::string where = names.empty() ? std::string("pipeline") : names.front();
      if (e.contains("file") && e.at("file").is_number_unsigned() && e.at("file").get<size_t>() < names.size()) {
        where = names[e.at("file").get<size_t>()];
        if (e.contains("line") && e.at("line").is_number_integer() && e.at("line").get<int>() > 0) {
          where += fmt::format(":{}", e.at("line").get<int>());
        }
      } else if (e.contains("location") && e.at("location").is_string()) {
        where = e.at("location").get<std::string>();
      }
      const std::string message = redact_values(e.at("message").get<std::string>(), secrets);
      return invalid("{}: error: {}", where, message);
    }
    if (exit.code != 0) return crashed(fmt::format("exited with status {}", exit.code));
    const auto& files = doc.at("files");
    if (!files.is_array() || files.size() != names.size()) {
      return crashed("answered for another number of files than it was given");
    }
    std::vector<sql::SourceFile> out;
    for (size_t i = 0; i < names.size(); ++i) {
      sql::SourceFile file{names[i], ""};
      std::vector<sql::GeneratedOrigin> origins;
      for (const auto& st : files[i].at("statements")) {
        sql::GeneratedOrigin o;
        o.begin = file.text.size();
        file.text += st.at("sql").get<std::string>();
        file.text += ";\n";
        o.end = file.text.size();
        o.line = st.at("line").get<int>();
        o.what = st.at("what").get<std::string>();
        origins.push_back(std::move(o));
      }
      sql::register_generated_source(file.name, std::move(origins));
      out.push_back(std::move(file));
    }
    return out;
  } catch (const json::exception& e) {
    return crashed(fmt::format("gave an answer of the wrong shape ({})", e.what()));
  }
}

arrow::Result<std::vector<sql::SourceFile>> define_python_sources(const PipelineConfig& config,
                                                                   const std::vector<fs::path>& paths,
                                                                   const std::vector<std::string>& names) {
  ARROW_ASSIGN_OR_RAISE(auto package, python_package_dir());
  const char* python_env = std::getenv("SLUICE_PYTHON");
  const std::string python = python_env != nullptr && *python_env != 0 ? python_env : "python3";
  // The request goes on stdin, not argv or the environment: configuration values may be secrets.
  nlohmann::json request = {{"pipeline_dir", fs::absolute(config.dir).string()},
                            {"configuration", config.configuration}};
  // kafka.bootstrap.servers in a pipeline file names one of these clusters (not secret).
  nlohmann::json clusters = nlohmann::json::object();
  for (const auto& [cluster, properties] : config.kafka) {
    if (auto it = properties.find("bootstrap.servers"); it != properties.end()) clusters[cluster] = it->second;
  }
  request["kafka_clusters"] = std::move(clusters);
  nlohmann::json files = nlohmann::json::array();
  for (size_t i = 0; i < paths.size(); ++i) files.push_back({{"path", paths[i].string()}, {"name", names[i]}});
  request["files"] = std::move(files);
  request["watchdog"] = true;  // stdin stays open after the request: its end ends the definer
  std::vector<std::string> env;
  std::string python_path = package.string();
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.rfind("PYTHONPATH=", 0) == 0) {
      if (entry.size() > 11) python_path += ":" + entry.substr(11);
      continue;
    }
    if (entry.rfind("PYTHONIOENCODING=", 0) == 0 || entry.rfind("PYTHONDONTWRITEBYTECODE=", 0) == 0 ||
        entry.rfind("PYTHONSAFEPATH=", 0) == 0) {
      continue;
    }
    env.push_back(entry);
  }
  env.push_back("PYTHONPATH=" + python_path);
  env.push_back("PYTHONIOENCODING=utf-8");
  env.push_back("PYTHONDONTWRITEBYTECODE=1");
  // `-m` would put the working directory first on sys.path, where a folder named `sluice` would
  // shadow the package (Python 3.11+ honours this; the definer adds the pipeline folder itself).
  env.push_back("PYTHONSAFEPATH=1");
  const auto secrets = configuration_secrets(config.configuration);
  ARROW_ASSIGN_OR_RAISE(const auto timeout, definer_timeout());
  ARROW_ASSIGN_OR_RAISE(auto exit, run_subprocess({python, "-m", "sluice._define"}, env,
                                                  request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                                                  timeout));
  // What the pipeline's files printed (print() while defining), redacted, before the result;
  // a definer that died without its answer shows the end of its stderr in the error instead.
  const bool answered = exit.signal == 0 && (exit.code == 0 || exit.code == 1) && !exit.out.empty();
  if (answered && !exit.err.empty()) {
    const std::string said = redact_values(exit.err, secrets);
    std::fprintf(stderr, "%s%s", said.c_str(), said.back() == '\n' ? "" : "\n");
  }
  return generated_sql_files(names, exit, secrets);
}

arrow::Result<std::vector<sql::SourceFile>> load_sql_sources(const PipelineConfig& config) {
  std::vector<std::string> patterns = config.library_globs;
  const bool default_libraries = patterns.empty();
  if (default_libraries) {
    patterns.push_back("*.sql");
    patterns.push_back("*.py");
  }
  std::vector<fs::path> paths;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(config.dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string relative = fs::relative(it->path(), config.dir).string();
    if (relative.rfind("data/", 0) == 0 || relative.find("/_delta_log/") != std::string::npos) continue;
    for (const auto& p : patterns) {
      if (::fnmatch(p.c_str(), relative.c_str(), FNM_PATHNAME) == 0) {
        paths.push_back(it->path());
        break;
      }
    }
  }
  if (ec) return io_error("cannot list {}: {}", config.dir.string(), ec.message());
  std::sort(paths.begin(), paths.end());
  std::vector<sql::SourceFile> files;
  std::vector<fs::path> python_paths;
  std::vector<std::string> python_names;
  std::vector<size_t> python_slots;  // where each .py file's SQL goes in `files`
  for (const auto& p : paths) {
    ARROW_ASSIGN_OR_RAISE(auto text, read_library_file(p));
    std::string name = fs::relative(p, fs::current_path(), ec).string();
    if (name.empty()) name = p.string();
    if (ends_with(p.string(), ".py")) {
      // By default only pipeline code runs: a helper script beside it (a data generator) is
      // left alone; `libraries` globs name the files to run explicitly.
      if (default_libraries && !imports_pipeline_api(text)) {
        // Said, never silent: a pipeline file this check misses must be noticed.
        std::fprintf(stderr, "sluice: %s: not run (it imports neither dlt nor pyspark.pipelines; a helper script "
                     "is left alone by default): name it under libraries: in pipeline.yaml to run it\n",
                     name.c_str());
        continue;
      }
      python_paths.push_back(fs::absolute(p));
      python_names.push_back(std::move(name));
      python_slots.push_back(files.size());
      files.push_back({"", ""});
      continue;
    }
    files.push_back({std::move(name), substitute_variables(text, config.configuration)});
  }
  if (!python_paths.empty()) {
    ARROW_ASSIGN_OR_RAISE(auto generated, define_python_sources(config, python_paths, python_names));
    for (size_t i = 0; i < generated.size(); ++i) files[python_slots[i]] = std::move(generated[i]);
  }
  return files;
}

}  // namespace sluice::pipeline
