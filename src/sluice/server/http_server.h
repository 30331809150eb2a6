// The HTTP server of `sluice serve` and `sluice run --serve` (cpp-httplib): binds an address,
// checks the bearer token on every request, and answers on its own threads through
// handle_request (api.h), so the pipeline's threads never wait for it.
#pragma once

#include <arrow/result.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/server/api.h"

namespace sluice::server {

struct ListenAddress {
  std::string host;  // an IPv4 or IPv6 address, or "localhost"
  int port = 0;      // 0: the system picks a free port
};

// "ADDR:PORT" ("127.0.0.1:8080", "0.0.0.0:0", "[::1]:9000", "localhost:8080"); an error naming
// the text and what is wrong with it.
arrow::Result<ListenAddress> parse_listen_address(std::string_view text);

// 127.0.0.0/8, ::1 and localhost: reachable only from this machine.
bool is_loopback(const ListenAddress& address);

// Constant-time comparison of a presented token with the expected one (both hashed with
// SHA-256 first, so neither their contents nor the expected length leak through timing).
bool token_matches(std::string_view presented, std::string_view expected);

struct ServerOptions {
  ListenAddress listen;
  // Required for an address that is not loopback; checked on every request when set
  // (`Authorization: Bearer <token>`), never logged.
  std::optional<std::string> token;
  ApiOptions api;
};

class HttpServer {
 public:
  // Binds and starts answering on a thread of its own. Refuses a non-loopback address without a
  // token; an address that cannot be bound (in use, not this machine's) is an error naming it.
  static arrow::Result<std::unique_ptr<HttpServer>> Start(ServerOptions options,
                                                          std::shared_ptr<const PipelineReader> reader);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // http://host:port/ with the port bound.
  std::string url() const;
  // Stops answering and joins the server's threads. Idempotent.
  void stop();
  // True when the server ended by itself (its listen loop failed) rather than by stop().
  bool failed() const;

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::server
