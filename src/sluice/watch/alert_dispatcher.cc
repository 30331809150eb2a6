// Alert delivery (alert_dispatcher.h): a JSON POST over cpp-httplib, a command spawned without a
// shell with the payload on its stdin, a record produced to a Kafka topic.
#include "sluice/watch/alert_dispatcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <cerrno>
#include <limits>
#include <tuple>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "sluice/common/ids.h"
#include "sluice/common/secrets.h"
#include "sluice/common/status.h"
#include "sluice/kafka/record_producer.h"

extern char** environ;

namespace sluice::watch {

struct FailureBox {
  std::mutex mutex;  // guards failures
  std::vector<DeliveryFailure> failures;
  void add(DeliveryFailure f) {
    std::lock_guard lock(mutex);
    if (failures.size() < 1000) failures.push_back(std::move(f));
  }
};

namespace {

// A queued delivery.
struct Job {
  std::string payload;
  std::string key;  // rule/dataset: the Kafka record's key
  std::string rule, dataset, state;
};

constexpr size_t kMaxQueued = 256;  // per destination; the oldest is dropped past it (and recorded)

const char* kind_of(const AlertDestination& d) {
  return std::holds_alternative<WebhookDestination>(d.target)   ? "webhook"
         : std::holds_alternative<CommandDestination>(d.target) ? "command"
                                                                : "kafka";
}

using Clock = std::chrono::steady_clock;

// The time at which whatever is in flight must give up (stop()'s overall limit); far in the
// future until stop() sets it.
struct CutOff {
  std::atomic<int64_t> at_ns{std::numeric_limits<int64_t>::max()};
  Clock::time_point at() const { return Clock::time_point(Clock::duration(at_ns.load())); }
};

// Splits `user:password@` off a URL's authority: (URL without it, user, password).
std::tuple<std::string, std::string, std::string> split_user_info(const std::string& url) {
  const auto host_start = url.find("://") + 3;
  const auto host_end = std::min(url.find_first_of("/?#", host_start), url.size());
  const auto at = url.rfind('@', host_end - 1);
  if (at == std::string::npos || at < host_start) return {url, "", ""};
  const std::string info = url.substr(host_start, at - host_start);
  const auto colon = info.find(':');
  return {url.substr(0, host_start) + url.substr(at + 1), info.substr(0, colon),
          colon == std::string::npos ? "" : info.substr(colon + 1)};
}

// One POST bounded as a whole: cpp-httplib's timeouts are per read and write, so a server that
// trickles its headers would hold the call for ever; a watchdog shuts the socket down at the
// deadline (the destination's timeout, or stop()'s cut-off if sooner). The body of the answer is
// never read: its status line says whether the alert was taken.
arrow::Status post_webhook(const WebhookDestination& w, const std::string& body, const CutOff& cut_off) {
  const auto shown = webhook_display(w.url);
  const auto [url, user, password] = split_user_info(w.url);
  const auto host_start = url.find("://") + 3;
  const auto host_end = url.find_first_of("/?#", host_start);
  const std::string base = url.substr(0, host_end);
  std::string path = host_end == std::string::npos ? "/" : url.substr(host_end);
  if (const auto hash = path.find('#'); hash != std::string::npos) path.resize(hash);
  if (path.empty() || path[0] != '/') path = "/" + path;
  httplib::Client client(base);
  if (!client.is_valid()) return invalid("webhook {}: not a URL sluice can send to", shown);
  client.set_connection_timeout(w.timeout);
  client.set_read_timeout(w.timeout);
  client.set_write_timeout(w.timeout);
  client.set_follow_location(false);
  client.set_decompress(false);
  client.set_keep_alive(false);
  if (!user.empty() || !password.empty()) client.set_basic_auth(user, password);
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  client.enable_server_certificate_verification(true);
#endif
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  int status = 0;
  req.response_handler = [&status](const httplib::Response& res) {
    status = res.status;
    return false;  // the status is the answer; the body is not read (it may be huge or endless)
  };
  req.content_receiver = [](const char*, size_t, uint64_t, uint64_t) { return false; };
  const auto deadline = std::min(Clock::now() + w.timeout, cut_off.at());
  if (Clock::now() >= deadline) return io_error("webhook {}: not sent, the run was ending", shown);
  std::mutex m;
  std::condition_variable cv;
  bool done = false, timed_out = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    while (!done) {
      const auto until = std::min(deadline, cut_off.at());
      if (Clock::now() >= until) {
        // Shuts the socket down: the blocked read or write returns. Again every 50 ms until the
        // call ends, in case it had not yet opened its socket the first time.
        timed_out = true;
        client.stop();
        cv.wait_for(lock, std::chrono::milliseconds(50));
        continue;
      }
      cv.wait_until(lock, std::min(until, Clock::now() + std::chrono::milliseconds(50)));
    }
  });
  auto res = client.send(req);
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (status == 0 && timed_out && Clock::now() >= cut_off.at()) {
    return io_error("webhook {}: no answer before the run ended", shown);
  }
  if (status == 0 && timed_out) {
    return io_error("webhook {}: no answer within {} ms", shown,
                    std::chrono::duration_cast<std::chrono::milliseconds>(w.timeout).count());
  }
  if (status == 0) return io_error("webhook {}: {}", shown, httplib::to_string(res.error()));
  if (status < 200 || status >= 300) {
    return io_error("webhook {}: HTTP {} (expected 2xx)", shown, status);
  }
  return arrow::Status::OK();
}

// Closes a descriptor once.
struct Fd {
  int fd = -1;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

int64_t left_ms(std::chrono::steady_clock::time_point deadline) {
  return std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
}

arrow::Status run_command(const CommandDestination& c, const std::string& payload, const CutOff& cut_off) {
  const std::string program = c.argv[0];
  Fd in_r, in_w, err_r, err_w;
  int in[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return io_error("command '{}': pipe: {}", program, std::strerror(errno));
  in_r.fd = in[0], in_w.fd = in[1];
  if (::pipe2(err, O_CLOEXEC) != 0) return io_error("command '{}': pipe: {}", program, std::strerror(errno));
  err_r.fd = err[0], err_w.fd = err[1];
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
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
  std::vector<char*> argv;
  for (const auto& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawnp(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (spawned != 0) return io_error("command '{}' could not be started: {}", program, std::strerror(spawned));
  in_r.close();
  err_w.close();
  // A command that exits without reading stdin must not end sluice with SIGPIPE: blocked on this
  // thread while writing, and a SIGPIPE raised meanwhile is consumed before the mask is restored.
  sigset_t pipe_signal, old_mask;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old_mask);
  const auto deadline = std::min(std::chrono::steady_clock::now() + c.timeout, cut_off.at());
  // The payload on stdin (without blocking: a command that never reads it is timed out).
  ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  while (written < payload.size() && left_ms(deadline) > 0) {
    const auto n = ::write(in_w.fd, payload.data() + written, payload.size() - written);
    if (n > 0) {
      written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EAGAIN) {
      pollfd p{in_w.fd, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms(deadline), 100)));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EPIPE: it closed its stdin; its exit status tells the rest
  }
  in_w.close();
  sigset_t pending;
  sigpending(&pending);
  if (sigismember(&pending, SIGPIPE) == 1 && sigismember(&old_mask, SIGPIPE) == 0) {
    const timespec now{0, 0};
    sigtimedwait(&pipe_signal, nullptr, &now);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  // Its stderr (the first 512 bytes, for the failure message) until it closes.
  std::string stderr_text;
  while (left_ms(deadline) > 0) {
    pollfd p{err_r.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms(deadline), 100)));
    if (ready <= 0) continue;
    char buf[512];
    const auto n = ::read(err_r.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (stderr_text.size() < 512) stderr_text.append(buf, static_cast<size_t>(std::min<ssize_t>(n, 512)));
  }
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && left_ms(deadline) > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {
    ::kill(-pid, SIGKILL);  // its process group: the command we started and its children
    ::waitpid(pid, &status, 0);
    return io_error("command '{}' did not finish within {} ms and was killed", program, c.timeout.count());
  }
  auto said = [&] {
    auto line = stderr_text.substr(0, stderr_text.find('\n'));
    return line.empty() ? std::string() : ": " + redact_values(line, remembered_secrets());
  };
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return arrow::Status::OK();
  if (WIFEXITED(status)) return io_error("command '{}' exited with status {}{}", program, WEXITSTATUS(status), said());
  return io_error("command '{}' ended by signal {}{}", program, WIFSIGNALED(status) ? WTERMSIG(status) : 0, said());
}

}  // namespace

std::string alert_payload(const AlertTransition& t) {
  nlohmann::json out = t.to_json();
  out["text"] = t.message;  // Slack's incoming webhooks show `text`
  // Invalid UTF-8 (an error quoting a record's bytes) becomes U+FFFD rather than an exception.
  return out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

arrow::Status deliver_until(const AlertDestination& destination, const std::string& payload, const std::string& key,
                            const std::map<std::string, kafka::KafkaProperties>& clusters, const CutOff& cut_off) {
  if (const auto* w = std::get_if<WebhookDestination>(&destination.target)) return post_webhook(*w, payload, cut_off);
  if (const auto* c = std::get_if<CommandDestination>(&destination.target)) return run_command(*c, payload, cut_off);
  const auto& k = std::get<KafkaDestination>(destination.target);
  auto cluster = clusters.find(k.cluster);
  if (cluster == clusters.end()) return invalid("Kafka cluster '{}' is not under 'kafka:'", k.cluster);
  ARROW_ASSIGN_OR_RAISE(auto producer, kafka::RecordProducer::make(k.cluster, cluster->second));
  auto timeout = k.timeout;
  if (cut_off.at_ns.load() != std::numeric_limits<int64_t>::max()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(cut_off.at() - Clock::now());
    timeout = std::max(std::chrono::milliseconds(1), std::min(timeout, left));
  }
  return producer->send(k.topic, key, payload, timeout);
}

}  // namespace

arrow::Status deliver(const AlertDestination& destination, const std::string& payload, const std::string& key,
                      const std::map<std::string, kafka::KafkaProperties>& clusters) {
  CutOff never;
  return deliver_until(destination, payload, key, clusters, never);
}

struct AlertDispatcher::Worker {
  AlertDestination destination;
  std::map<std::string, kafka::KafkaProperties> clusters;
  std::shared_ptr<FailureBox> failures;
  std::mutex mutex;  // guards queue and stopping
  std::condition_variable wake;
  std::deque<Job> queue;
  bool stopping = false;
  CutOff cut_off;  // set by stop(): what is not delivered by then is recorded as not delivered
  std::thread thread;

  void fail(const Job& job, std::string error) {
    failures->add({destination.name, kind_of(destination), job.rule, job.dataset, job.state, std::move(error),
                   now_millis()});
  }

  void loop() {
    while (true) {
      Job job;
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;  // stopping, all delivered
        job = std::move(queue.front());
        queue.pop_front();
      }
      if (Clock::now() >= cut_off.at()) {
        fail(job, "not delivered: the run ended before its turn came");
        continue;
      }
      arrow::Status st;
      try {  // nothing a destination does may end the pipeline
        st = deliver_until(destination, job.payload, job.key, clusters, cut_off);
      } catch (const std::exception& e) {
        st = arrow::Status::IOError(e.what());
      } catch (...) {
        st = arrow::Status::IOError("delivery failed with an unknown exception");
      }
      if (!st.ok()) fail(job, st.message());
    }
  }
};

arrow::Result<std::unique_ptr<AlertDispatcher>> AlertDispatcher::make(
    const AlertsConfig& config, const std::map<std::string, kafka::KafkaProperties>& clusters) {
  std::unique_ptr<AlertDispatcher> out(new AlertDispatcher());
  out->failures_ = std::make_shared<FailureBox>();
  for (const auto& [name, destination] : config.destinations) {
    auto w = std::make_unique<Worker>();
    w->destination = destination;
    w->clusters = clusters;
    w->failures = out->failures_;
    out->workers_.emplace(name, std::move(w));
  }
  for (auto& [name, w] : out->workers_) {
    Worker* worker = w.get();
    worker->thread = std::thread([worker] { worker->loop(); });
  }
  return out;
}

AlertDispatcher::~AlertDispatcher() { stop(); }

void AlertDispatcher::send(const AlertTransition& t) {
  if (t.destinations.empty()) return;
  Job job{alert_payload(t), t.rule + "/" + t.dataset, t.rule, t.dataset,
          t.state == AlertState::kFiring ? "FIRING" : "RESOLVED"};
  for (const auto& name : t.destinations) {
    auto it = workers_.find(name);
    if (it == workers_.end()) continue;  // the config checked every name
    auto& w = *it->second;
    std::lock_guard lock(w.mutex);
    if (w.stopping) continue;
    if (w.queue.size() >= kMaxQueued) {
      w.fail(w.queue.front(), fmt::format("not delivered: {} alerts were waiting for this destination", kMaxQueued));
      w.queue.pop_front();
    }
    w.queue.push_back(job);
    w.wake.notify_one();
  }
}

std::vector<DeliveryFailure> AlertDispatcher::take_failures() {
  std::lock_guard lock(failures_->mutex);
  return std::exchange(failures_->failures, {});
}

void AlertDispatcher::stop(std::chrono::milliseconds limit) {
  const auto cut_off = (Clock::now() + limit).time_since_epoch().count();
  for (auto& [name, w] : workers_) {
    std::lock_guard lock(w->mutex);
    w->stopping = true;
    if (cut_off < w->cut_off.at_ns.load()) w->cut_off.at_ns.store(cut_off);
    w->wake.notify_all();
  }
  for (auto& [name, w] : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

}  // namespace sluice::watch
