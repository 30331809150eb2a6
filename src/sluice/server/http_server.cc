// The HTTP server of `sluice serve` and `sluice run --serve` (http_server.h).
#include "sluice/server/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <vector>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <thread>

#include "sluice/common/text.h"
#include "sluice/server/dashboard_assets.h"

namespace sluice::server {

namespace {

// Requests are answered by a small pool: reading the status re-reads Delta logs, and the
// machine's cores belong to the pipeline. An idle connection holds no thread (IdleWaiter).
constexpr size_t kServerThreads = 4;
// Connections with a request to answer, queued beyond those being answered: more are answered
// 503 and closed at once, so clients cannot make the server hold unbounded descriptors.
constexpr size_t kMaxQueuedConnections = 60;
// An idle keep-alive connection, and a request that stops arriving, are dropped after this; a
// request must have arrived whole within kRequestSeconds (a client trickling it holds a thread).
constexpr int kIdleSeconds = 2;
constexpr int kRequestSeconds = 5;
// Requests carry no body (GET/HEAD only): a request line and headers larger than this are cut
// off, so no client makes the server buffer more than this per connection.
constexpr size_t kMaxRequestBytes = 64 * 1024;
constexpr size_t kKeepAliveRequests = 100;
// Connections waiting for their next request (a keep-alive scraper between scrapes, or a client
// that connected and sent nothing yet) are watched by one thread, not held by the pool; beyond
// this many the longest waiting is closed.
constexpr size_t kMaxIdleConnections = 128;

// Live streams (/api/stream) at once: each holds a pool thread while it lasts, so the pool has
// this many threads more than kServerThreads and a stream never takes one a request needs.
// Past this, a stream request is answered 503.
constexpr size_t kMaxStreams = 8;
// A stream looks for new events this often (one read of the log for all streams: shared_log),
// and writes a comment when it has sent nothing for kHeartbeatSeconds, so proxies and the
// browser see it alive and a gone client is noticed.
constexpr int kStreamPollMs = 500;
constexpr int kHeartbeatSeconds = 15;
// Frames written per wake-up: a client resuming from far back gets the backlog in pages, each
// written before the next is built, so a stream holds one frame in memory, never the backlog.
constexpr size_t kFramesPerWrite = 256;

// Set on the accepting thread: a new connection goes to the idle waiter at once.
thread_local bool t_accepting = false;
// Set by the pre-routing check when the answer must end the connection (a refused request
// whose body, if any, is never read).
thread_local bool t_close_after = false;
// The socket of the connection this pool thread answers: a live stream watches it for the
// client going away.
thread_local int t_socket = -1;

// A ThreadPool holding at most kServerThreads + kMaxQueuedConnections connections. httplib's
// accepted connections are not queued: they run at once on the accepting thread with
// t_accepting set, where BoundedServer hands them to the idle waiter, which queues them (run)
// once they have a request to read.
class CappedQueue : public httplib::TaskQueue {
 public:
  CappedQueue(size_t threads, size_t cap, std::function<void()> on_shutdown)
      : pool_(threads), cap_(cap), on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override {
    t_accepting = true;
    fn();
    t_accepting = false;
  }
  // A connection the idle waiter found readable; false when the queue is full.
  bool run(std::function<void()> fn) {
    if (held_.fetch_add(1) >= cap_) {
      held_.fetch_sub(1);
      return false;
    }
    pool_.enqueue([this, fn = std::move(fn)] {
      fn();
      held_.fetch_sub(1);
    });
    return true;
  }
  void shutdown() override {
    on_shutdown_();  // nothing is queued from outside httplib's loop any more
    pool_.shutdown();
  }

 private:
  httplib::ThreadPool pool_;
  const size_t cap_;
  std::function<void()> on_shutdown_;
  std::atomic<size_t> held_{0};
};

bool wait_for(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  int r;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  return r > 0;
}

// One connection's socket as httplib reads and writes it: every read and write waits at most
// kIdleSeconds, and at most kMaxRequestBytes are read per request (reset by the caller).
class ConnectionStream : public httplib::Stream {
 public:
  explicit ConnectionStream(int sock) : sock_(sock) {}
  bool is_readable() const override { return start_ < end_ || wait_for(sock_, POLLIN, kIdleSeconds * 1000); }
  bool is_writable() const override { return wait_for(sock_, POLLOUT, kIdleSeconds * 1000); }
  ssize_t read(char* ptr, size_t size) override {
    if (start_ == end_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(request_deadline_ -
                                                                              std::chrono::steady_clock::now());
      const int wait_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, kIdleSeconds * 1000));
      if (read_this_request_ >= kMaxRequestBytes || wait_ms <= 0 || !wait_for(sock_, POLLIN, wait_ms)) return -1;
      ssize_t n;
      do {
        n = ::recv(sock_, buffer_, std::min(sizeof(buffer_), kMaxRequestBytes - read_this_request_), 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      read_this_request_ += static_cast<size_t>(n);
      start_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, end_ - start_);
    std::memcpy(ptr, buffer_ + start_, n);
    start_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  socket_t socket() const override { return sock_; }

  bool has_buffered() const { return start_ < end_; }
  void next_request() {
    read_this_request_ = end_ - start_;
    request_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(kRequestSeconds);
  }

 private:
  void address(bool remote, std::string& ip, int& port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    const int r = remote ? ::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len)
                         : ::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len);
    if (r != 0) return;
    char host[NI_MAXHOST];
    char service[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof(host), service, sizeof(service),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      ip = host;
      if (auto p = parse_int32(service, "the socket's port"); p.ok()) port = *p;  // numeric (NI_NUMERICSERV)
    }
  }

  int sock_;
  char buffer_[4096];
  size_t start_ = 0;
  size_t end_ = 0;
  size_t read_this_request_ = 0;
  std::chrono::steady_clock::time_point request_deadline_;
};

void close_connection(int sock) {
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

// One thread watching the connections that wait for their next request: a readable one goes
// back to the pool (`ready`), one idle for kIdleSeconds is closed, and past kMaxIdleConnections
// the longest waiting is closed. Only its own thread touches the watched set.
class IdleWaiter {
 public:
  using Ready = std::function<void(int sock, size_t requests_left)>;

  explicit IdleWaiter(Ready ready) : ready_(std::move(ready)) {
    if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
    thread_ = std::thread([this] { loop(); });
  }
  ~IdleWaiter() { stop(); }

  void add(int sock, size_t requests_left) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!stopped_) {
        pending_.push_back({sock, requests_left, std::chrono::steady_clock::now() + std::chrono::seconds(kIdleSeconds)});
        wake();  // under the lock: stop() closes the pipe only after it set stopped_
        return;
      }
    }
    close_connection(sock);
  }

  // Closes every watched connection and joins the thread. Idempotent.
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopped_) return;
      stopped_ = true;
    }
    wake();
    if (thread_.joinable()) thread_.join();
    for (int fd : wake_) {
      if (fd >= 0) ::close(fd);
    }
  }

 private:
  struct Entry {
    int sock;
    size_t requests_left;
    std::chrono::steady_clock::time_point deadline;
  };

  void wake() {
    if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  }

  void loop() {
    std::deque<Entry> watched;  // oldest first
    std::vector<pollfd> fds;
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopped_) break;
        for (auto& e : pending_) watched.push_back(e);
        pending_.clear();
      }
      while (watched.size() > kMaxIdleConnections) {
        close_connection(watched.front().sock);
        watched.pop_front();
      }
      fds.clear();
      fds.push_back({wake_[0], POLLIN, 0});
      for (const auto& e : watched) fds.push_back({e.sock, POLLIN, 0});
      int r;
      do {
        r = ::poll(fds.data(), fds.size(), 100);
      } while (r < 0 && errno == EINTR);
      if (fds[0].revents & POLLIN) {
        char drain[64];
        while (::read(wake_[0], drain, sizeof(drain)) > 0) {
        }
      }
      const auto now = std::chrono::steady_clock::now();
      std::deque<Entry> still;
      for (size_t i = 0; i < watched.size(); ++i) {
        const auto& e = watched[i];
        if (r > 0 && fds[i + 1].revents != 0) {
          ready_(e.sock, e.requests_left);  // readable, or closed by the client: the pool reads it
        } else if (now >= e.deadline) {
          close_connection(e.sock);
        } else {
          still.push_back(e);
        }
      }
      watched.swap(still);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& e : pending_) watched.push_back(e);
    pending_.clear();
    for (const auto& e : watched) close_connection(e.sock);
  }

  Ready ready_;
  int wake_[2] = {-1, -1};
  std::mutex mutex_;
  bool stopped_ = false;
  std::vector<Entry> pending_;
  std::thread thread_;
};

// httplib's Server with its connection loop replaced (process_and_close_socket is its virtual
// hook): a new connection waits for its request in the IdleWaiter (holding no thread), is
// answered on the pool through ConnectionStream while requests arrive (503 and closed unread
// when the queue is full), waits for its next one in the waiter again, and is closed when a
// refusal says so.
class BoundedServer : public httplib::Server {
 public:
  BoundedServer()
      : waiter_([this](int sock, size_t requests_left) {
          std::lock_guard<std::mutex> lock(queue_mutex_);
          if (!queue_) {
            close_connection(sock);
            return;
          }
          if (!queue_->run([this, sock, requests_left] { serve(sock, requests_left); })) busy(sock);
        }) {}
  ~BoundedServer() override { waiter_.stop(); }

  CappedQueue* make_queue() {
    auto* queue = new CappedQueue(kServerThreads + kMaxStreams, kServerThreads + kMaxStreams + kMaxQueuedConnections,
                                  [this] {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      queue_ = nullptr;
    });
    std::lock_guard<std::mutex> lock(queue_mutex_);
    queue_ = queue;
    return queue;
  }
  // httplib listens with a backlog of 5: under load, connections past it wait for SYN retries
  // (1 s, 3 s, 7 s...). Accepting is cheap now (idle ones go to the waiter), so a longer one.
  void widen_backlog() { (void)::listen(svr_sock_, 128); }
  // Before httplib's stop(): the waiter hands nothing to a queue about to be deleted.
  void stop_waiter() { waiter_.stop(); }

 private:
  bool process_and_close_socket(socket_t sock) override {
    if (t_accepting) {
      waiter_.add(sock, kKeepAliveRequests);  // its request is read on the pool once it arrives
    } else {
      serve(sock, kKeepAliveRequests);
    }
    return true;
  }

  // 503 and closed, unread: the queue is full.
  static void busy(int sock) {
    static const std::string kBusy = [] {
      const std::string body = "{\"error\": \"the server is busy: too many connections, try again later\"}\n";
      return fmt::format("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: application/json\r\n"
                         "Content-Length: {}\r\n\r\n{}",
                         body.size(), body);
    }();
    (void)!::send(sock, kBusy.data(), kBusy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close_connection(sock);
  }

  // Answers the requests already arriving on `sock`; when none is, the waiter keeps it.
  void serve(int sock, size_t requests_left) {
    ConnectionStream stream(sock);
    while (requests_left > 0 && svr_sock_ != INVALID_SOCKET) {
      if (!stream.has_buffered() && !wait_for(sock, POLLIN, 0)) {
        waiter_.add(sock, requests_left);
        return;
      }
      stream.next_request();
      t_close_after = false;
      t_socket = sock;
      bool closed = false;
      const bool ok = process_request(stream, requests_left == 1, closed, nullptr);
      --requests_left;
      if (!ok || closed || t_close_after) break;
    }
    close_connection(sock);
  }

  std::mutex queue_mutex_;
  CappedQueue* queue_ = nullptr;  // httplib's, while its listen loop runs
  IdleWaiter waiter_;
};

bool is_ipv4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", message}}.dump(2) + "\n", "application/json");
}

// A refusal that ends the connection: a body the client may be sending is never read.
void refuse(httplib::Response& res, int status, const std::string& message) {
  send_error(res, status, message);
  res.set_header("Connection", "close");
  t_close_after = true;
}

// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235 2.1).
std::optional<std::string_view> bearer_token(std::string_view header) {
  constexpr std::string_view kScheme = "bearer";
  if (header.size() <= kScheme.size() || header[kScheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) != kScheme[i]) return std::nullopt;
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  return header;
}

}  // namespace

arrow::Result<ListenAddress> parse_listen_address(std::string_view text) {
  const std::string shown = quote_for_error(text);
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return arrow::Status::Invalid(fmt::format("listen address '{}' has no port: write ADDR:PORT, e.g. 127.0.0.1:8080", shown));
  }
  ListenAddress out;
  std::string host(text.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto port = parse_int64(text.substr(colon + 1), "port");
  if (!port.ok() || *port < 0 || *port > 65535) {
    return arrow::Status::Invalid(
        fmt::format("listen address '{}': the port must be a number from 0 to 65535 (0: any free port)", shown));
  }
  if (host != "localhost" && !is_ipv4(host) && !is_ipv6(host)) {
    return arrow::Status::Invalid(fmt::format(
        "listen address '{}': '{}' is not an IP address (write 127.0.0.1, 0.0.0.0, [::1], or localhost)", shown,
        quote_for_error(host)));
  }
  out.host = host;
  out.port = static_cast<int>(*port);
  return out;
}

bool is_loopback(const ListenAddress& address) {
  if (address.host == "localhost" || address.host == "::1") return true;
  in_addr a{};
  if (inet_pton(AF_INET, address.host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

bool token_matches(std::string_view presented, std::string_view expected) {
  unsigned char a[SHA256_DIGEST_LENGTH];
  unsigned char b[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), a);
  SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  return CRYPTO_memcmp(a, b, SHA256_DIGEST_LENGTH) == 0;
}

struct HttpServer::Impl {
  ServerOptions options;
  std::shared_ptr<const PipelineReader> reader;
  BoundedServer http;
  int port = 0;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> failed{false};
  std::atomic<size_t> streams{0};  // live streams answering now
  // What the log's commits appended, as the streams last read it: read again at most every
  // kStreamPollMs for streams at the same version (the usual case: all live at the end of the
  // log); `wake` ends their waits at stop().
  std::mutex log_mutex;
  std::condition_variable wake;
  std::map<int64_t, std::pair<std::chrono::steady_clock::time_point, arrow::Result<pipeline::AppendedEvents>>> appended;

  arrow::Result<pipeline::AppendedEvents> shared_appended(int64_t first_version) {
    std::lock_guard<std::mutex> lock(log_mutex);
    const auto now = std::chrono::steady_clock::now();
    for (auto it = appended.begin(); it != appended.end();) {  // only this poll's reads are kept
      it = now - it->second.first >= std::chrono::milliseconds(kStreamPollMs) ? appended.erase(it) : std::next(it);
    }
    auto it = appended.find(first_version);
    if (it == appended.end()) it = appended.emplace(first_version, std::make_pair(now, reader->appended_since(first_version))).first;
    return it->second.second;
  }

  // Waits a poll interval; false when the server stops meanwhile.
  bool wait_poll() {
    std::unique_lock<std::mutex> lock(log_mutex);
    return !wake.wait_for(lock, std::chrono::milliseconds(kStreamPollMs), [this] { return stopping.load(); });
  }

  // The client closed its end (a readable socket with nothing to read) or the socket failed.
  static bool client_gone(int sock) {
    if (sock < 0) return false;
    pollfd p{sock, POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
    char c;
    return ::recv(sock, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
  }

  // /api/stream: every event appended to the log after the cursor, as server-sent events, until
  // the client goes, a write waits longer than kIdleSeconds (a client not reading: the stream
  // ends rather than buffer for it), or the server stops.
  void stream(const httplib::Request& req, httplib::Response& res, const ApiRequest& request) {
    auto parsed = parse_stream_request(request, req.get_header_value("Last-Event-ID"));
    if (!parsed.ok()) return send_error(res, 400, parsed.status().message());
    if (streams.fetch_add(1) >= kMaxStreams) {
      streams.fetch_sub(1);
      return refuse(res, 503, fmt::format("too many live streams ({} at once): close one, or read /api/events",
                                          kMaxStreams));
    }
    struct Live {
      StreamRequest request;
      EventCursor cursor;  // the last event passed (sent or filtered out)
      std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
      int sock = t_socket;
    };
    auto live = std::make_shared<Live>();
    live->request = std::move(*parsed);
    if (live->request.after) {
      live->cursor = *live->request.after;
    } else {  // only what is appended from now on
      auto now = reader->event_log();
      if (now.ok()) live->cursor = EventCursor{now->version, EventCursor::kWholeVersion};
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_header("Connection", "close");
    t_close_after = true;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, live](size_t offset, httplib::DataSink& sink) { return stream_some(*live, offset, sink); },
        [this](bool) { streams.fetch_sub(1); });
  }

  template <typename Live>
  bool stream_some(Live& live, size_t offset, httplib::DataSink& sink) {
    if (offset == 0) {  // at once, so the client sees the stream open
      static const std::string kHello = "retry: 2000\n: sluice event stream\n\n";
      if (!sink.write(kHello.data(), kHello.size())) return false;
    }
    for (;;) {
      if (stopping || client_gone(live.sock)) return false;
      auto log = shared_appended(live.cursor.next_version());
      if (!log.ok()) {
        const auto frame = fmt::format("event: error\ndata: {}\n\n",
                                       nlohmann::json{{"error", log.status().message()}}.dump());
        (void)sink.write(frame.data(), frame.size());
        return false;
      }
      // A cursor past the log's end: the log was deleted and written anew, shorter; its versions
      // are other events, so the stream goes on from its end rather than wait for that version.
      if (live.cursor.next_version() > log->latest_version + 1) {
        live.cursor = EventCursor{log->latest_version, EventCursor::kWholeVersion};
      }
      size_t sent = 0;
      for (const auto& commit : log->commits) {
        if (sent >= kFramesPerWrite) break;
        const int64_t first_row = live.cursor.next_row(commit.version);
        int64_t row = first_row;
        for (; row < static_cast<int64_t>(commit.rows.size()) && sent < kFramesPerWrite; ++row) {
          const auto& e = (*log->events)[commit.rows[static_cast<size_t>(row)]];
          live.cursor = EventCursor{commit.version, row};
          if (!stream_wants(live.request, e)) continue;
          const auto frame = event_stream_frame(e, commit.version, row);
          if (!sink.write(frame.data(), frame.size())) return false;
          ++sent;
        }
        if (row >= static_cast<int64_t>(commit.rows.size())) live.cursor = EventCursor{commit.version, EventCursor::kWholeVersion};
      }
      const auto now = std::chrono::steady_clock::now();
      if (sent > 0) {
        live.last_write = now;
        return true;
      }
      if (!log->commits.empty() && log->commits.back().version < log->latest_version) continue;  // more to read now
      if (now - live.last_write >= std::chrono::seconds(kHeartbeatSeconds)) {
        static const std::string kBeat = ": heartbeat\n\n";
        live.last_write = now;
        return sink.write(kBeat.data(), kBeat.size());
      }
      if (!wait_poll()) return false;
    }
  }

  // Before httplib reads a body (its pre-routing hook): the token, the method and the absence
  // of a body are checked here, and a refusal closes the connection unread.
  bool refused(const httplib::Request& req, httplib::Response& res) {
    // The dashboard's own files hold no pipeline data (they are in the binary for anyone to
    // read): a browser loads them without a token, and the page then sends the token it was
    // given (#token=...) with every API request.
    const bool public_file = (req.method == "GET" || req.method == "HEAD") && dashboard_asset(req.path).has_value();
    if (options.token && !public_file) {
      const std::string header = req.get_header_value("Authorization");  // by value: kept alive here
      const auto presented = bearer_token(header);
      if (!presented || !token_matches(*presented, *options.token)) {
        res.set_header("WWW-Authenticate", "Bearer");
        refuse(res, 401, "a valid token is required: send 'Authorization: Bearer <token>' "
                         "(the --serve-token or SLUICE_SERVE_TOKEN the server was started with)");
        return true;
      }
    }
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      refuse(res, 405, fmt::format("method {} is not allowed: this API is read-only (GET, HEAD)",
                                   quote_for_error(req.method)));
      return true;
    }
    const auto length = req.get_header_value("Content-Length");
    if ((!length.empty() && length != "0") || req.has_header("Transfer-Encoding")) {
      refuse(res, 413, "a request body is not accepted: this API's requests are GET without a body");
      return true;
    }
    return false;
  }

  void answer(const httplib::Request& req, httplib::Response& res) {
    ApiRequest request;
    request.method = req.method;
    request.path = req.path;
    for (const auto& [k, v] : req.params) request.params.emplace(k, v);
    if (req.path == "/api/stream") return stream(req, res, request);
    if (const auto asset = dashboard_asset(req.path)) {
      res.set_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:");
      res.set_header("X-Content-Type-Options", "nosniff");
      res.set_content(asset->body.data(), asset->body.size(), std::string(asset->content_type).c_str());
      return;
    }
    ApiResponse response;
    try {
      response = handle_request(*reader, options.api, request);
    } catch (const std::exception& e) {  // never past the server's thread
      response = {500, "application/json", nlohmann::json{{"error", e.what()}}.dump(2) + "\n"};
    }
    res.status = response.status;
    if (response.status == 405) res.set_header("Allow", "GET, HEAD");
    res.set_content(response.body, response.content_type.c_str());
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

arrow::Result<std::unique_ptr<HttpServer>> HttpServer::Start(ServerOptions options,
                                                             std::shared_ptr<const PipelineReader> reader) {
  const auto where = fmt::format("{}:{}", options.listen.host, options.listen.port);
  if (options.token && options.token->empty()) {
    return arrow::Status::Invalid("the serve token is empty: give a non-empty --serve-token or SLUICE_SERVE_TOKEN");
  }
  if (!is_loopback(options.listen) && !options.token) {
    return arrow::Status::Invalid(fmt::format(
        "refusing to serve on {}: it is reachable from other machines, so a token is required; give --serve-token "
        "or set SLUICE_SERVE_TOKEN (requests then send 'Authorization: Bearer <token>'), or listen on 127.0.0.1",
        where));
  }
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->reader = std::move(reader);
  auto* self = impl.get();
  impl->http.new_task_queue = [self] { return self->http.make_queue(); };  // httplib takes ownership
  impl->http.set_payload_max_length(4096);
  impl->http.set_keep_alive_timeout(kIdleSeconds);
  impl->http.set_keep_alive_max_count(kKeepAliveRequests);  // what its Keep-Alive header says
  impl->http.set_read_timeout(kIdleSeconds);
  impl->http.set_write_timeout(kIdleSeconds);
  // httplib's default sets SO_REUSEPORT: a second server (another sluice, or anyone's process of
  // this user) could then bind the same port and take half the requests. SO_REUSEADDR alone
  // lets a restart bind while old connections linger, and refuses a port in use.
  impl->http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  impl->http.set_pre_routing_handler([self](const httplib::Request& req, httplib::Response& res) {
    return self->refused(req, res) ? httplib::Server::HandlerResponse::Handled
                                   : httplib::Server::HandlerResponse::Unhandled;
  });
  // GET (and HEAD) only: any other method was refused above, before a body could be read.
  impl->http.Get(".*", [self](const httplib::Request& req, httplib::Response& res) { self->answer(req, res); });
  const auto& listen = impl->options.listen;
  const std::string host = listen.host == "localhost" ? "127.0.0.1" : listen.host;
  if (listen.port == 0) {
    impl->port = impl->http.bind_to_any_port(host);
    if (impl->port <= 0) return arrow::Status::IOError(fmt::format("cannot listen on {}: no free port could be bound", where));
  } else {
    if (!impl->http.bind_to_port(host, listen.port)) {
      return arrow::Status::IOError(fmt::format(
          "cannot listen on {}: the port is in use, or the address is not one of this machine's; pick another "
          "with --listen ADDR:PORT (port 0 picks a free one)",
          where));
    }
    impl->port = listen.port;
  }
  impl->http.widen_backlog();
  impl->thread = std::thread([self] {
    const bool ok = self->http.listen_after_bind();
    if (!self->stopping) {
      self->failed = true;
      // The pipeline goes on without its server: said once, here.
      std::fprintf(stderr, "sluice: warning: the HTTP server on port %d stopped answering (%s); the pipeline goes on\n",
                   self->port, ok ? "its listen loop ended" : "its listen loop failed");
    }
  });
  // httplib's stop() before its loop runs could be missed, leaving stop()'s join waiting: return
  // once the loop runs (or has failed), waiting a bounded time.
  for (int i = 0; i < 5000 && !impl->http.is_running() && !impl->failed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!impl->http.is_running()) {
    impl->stopping = true;
    impl->http.stop_waiter();
    impl->http.stop();
    if (impl->thread.joinable()) impl->thread.join();
    return arrow::Status::IOError(fmt::format("the HTTP server on {} did not start answering", where));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::string HttpServer::url() const {
  const auto& host = impl_->options.listen.host;
  return fmt::format("http://{}:{}/", host.find(':') != std::string::npos ? "[" + host + "]" : host, impl_->port);
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(impl_->log_mutex);
    impl_->wake.notify_all();  // live streams end now, not at their next poll
  }
  impl_->http.stop_waiter();
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool HttpServer::failed() const { return impl_->failed; }

}  // namespace sluice::server
