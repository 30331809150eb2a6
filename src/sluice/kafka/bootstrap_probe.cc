// TCP probe of Kafka bootstrap brokers (see bootstrap_probe.h).
#include "sluice/kafka/bootstrap_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace sluice::kafka {

namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

enum class ProbeResult { kRefused, kOther };

// One non-blocking connect to `address`, waiting at most `timeout` for its outcome.
ProbeResult probe_once(const addrinfo& address, std::chrono::milliseconds timeout) {
  const int fd = ::socket(address.ai_family, address.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          address.ai_protocol);
  if (fd < 0) return ProbeResult::kOther;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, address.ai_addr, address.ai_addrlen) == 0) return ProbeResult::kOther;
  if (errno == ECONNREFUSED) return ProbeResult::kRefused;
  if (errno != EINPROGRESS) return ProbeResult::kOther;
  pollfd waiting{fd, POLLOUT, 0};
  if (::poll(&waiting, 1, static_cast<int>(timeout.count())) != 1) return ProbeResult::kOther;
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return ProbeResult::kOther;
  return error == ECONNREFUSED ? ProbeResult::kRefused : ProbeResult::kOther;
}

}  // namespace

std::optional<std::vector<BootstrapAddress>> parse_bootstrap_servers(std::string_view servers) {
  std::vector<BootstrapAddress> out;
  while (!servers.empty()) {
    const auto comma = servers.find(',');
    std::string_view entry = trimmed(servers.substr(0, comma));
    servers = comma == std::string_view::npos ? std::string_view{} : servers.substr(comma + 1);
    if (entry.empty()) continue;
    if (auto scheme = entry.find("://"); scheme != std::string_view::npos) {
      entry.remove_prefix(scheme + 3);
    }
    std::string_view host, port;
    if (entry.front() == '[') {  // [IPv6]:port
      const auto close = entry.find("]:");
      if (close == std::string_view::npos) return std::nullopt;
      host = entry.substr(1, close - 1);
      port = entry.substr(close + 2);
    } else {
      const auto colon = entry.rfind(':');
      if (colon == std::string_view::npos) return std::nullopt;
      host = entry.substr(0, colon);
      port = entry.substr(colon + 1);
    }
    if (host.empty() || port.empty()) return std::nullopt;
    out.push_back({std::string(host), std::string(port)});
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool every_bootstrap_broker_refuses(std::string_view servers, std::chrono::milliseconds timeout) {
  auto addresses = parse_bootstrap_servers(servers);
  if (!addresses) return false;
  for (const auto& a : *addresses) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(a.host.c_str(), a.port.c_str(), &hints, &found) != 0) return false;
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
    for (const addrinfo* p = found; p != nullptr; p = p->ai_next) {
      if (probe_once(*p, timeout) != ProbeResult::kRefused) return false;
    }
  }
  return true;
}

}  // namespace sluice::kafka
