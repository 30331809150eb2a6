// The HTTP server of `sluice serve` and `sluice run --serve` (http_server.h).
#include "sluice/server/http_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "sluice/common/text.h"

namespace sluice::server {

namespace {

// Requests are answered by a small pool: reading the status re-reads Delta logs, and the
// machine's cores belong to the pipeline. Four, not two: a scraper's idle keep-alive
// connection holds a thread until httplib's keep-alive timeout (5 s).
constexpr size_t kServerThreads = 4;

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
  httplib::Server http;
  int port = 0;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<bool> failed{false};

  void answer(const httplib::Request& req, httplib::Response& res) {
    if (options.token) {
      const auto header = req.get_header_value("Authorization");
      const std::string kBearer = "Bearer ";
      if (header.rfind(kBearer, 0) != 0 || !token_matches(std::string_view(header).substr(kBearer.size()), *options.token)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_error(res, 401, "a valid token is required: send 'Authorization: Bearer <token>' "
                             "(the --serve-token or SLUICE_SERVE_TOKEN the server was started with)");
        return;
      }
    }
    ApiRequest request;
    request.method = req.method;
    request.path = req.path;
    for (const auto& [k, v] : req.params) request.params.emplace(k, v);
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
  impl->http.new_task_queue = [] { return new httplib::ThreadPool(kServerThreads); };  // httplib takes ownership
  // httplib's default sets SO_REUSEPORT: a second server (another sluice, or anyone's process of
  // this user) could then bind the same port and take half the requests. SO_REUSEADDR alone
  // lets a restart bind while old connections linger, and refuses a port in use.
  impl->http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  auto handler = [self](const httplib::Request& req, httplib::Response& res) { self->answer(req, res); };
  // Every method reaches answer(), which refuses all but GET and HEAD with 405.
  impl->http.Get(".*", handler);
  impl->http.Post(".*", handler);
  impl->http.Put(".*", handler);
  impl->http.Patch(".*", handler);
  impl->http.Delete(".*", handler);
  impl->http.Options(".*", handler);
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
  impl->thread = std::thread([self] {
    const bool ok = self->http.listen_after_bind();
    if (!self->stopping) {
      self->failed = true;
      // The pipeline goes on without its server: said once, here.
      std::fprintf(stderr, "sluice: warning: the HTTP server on port %d stopped answering (%s); the pipeline goes on\n",
                   self->port, ok ? "its listen loop ended" : "its listen loop failed");
    }
  });
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::string HttpServer::url() const {
  const auto& host = impl_->options.listen.host;
  return fmt::format("http://{}:{}/", host.find(':') != std::string::npos ? "[" + host + "]" : host, impl_->port);
}

void HttpServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  impl_->http.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool HttpServer::failed() const { return impl_->failed; }

}  // namespace sluice::server
