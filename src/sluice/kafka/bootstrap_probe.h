// Whether every Kafka bootstrap broker refuses TCP connections: lets a client that never
// reached its cluster give up in seconds instead of waiting out the metadata timeout.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::kafka {

struct BootstrapAddress {
  std::string host;
  std::string port;
};

// "h1:9092,PLAINTEXT://h2:9093,[::1]:9094" as (host, port) pairs; nullopt when any entry has no
// host or no port (then nothing is concluded from probing it).
std::optional<std::vector<BootstrapAddress>> parse_bootstrap_servers(std::string_view servers);

// True only when every address of every bootstrap broker refused the connection at once
// (ECONNREFUSED). A name that does not resolve, a connection accepted, or one that does not
// answer within `timeout` (a firewall dropping packets, a slow network) is not a refusal: the
// caller then keeps waiting as before.
bool every_bootstrap_broker_refuses(std::string_view servers, std::chrono::milliseconds timeout);

}  // namespace sluice::kafka
