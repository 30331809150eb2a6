// The TCP probe that lets a client that never reached its cluster give up early: what counts as
// every bootstrap broker refusing, over loopback sockets of the test's own.
#include "sluice/kafka/bootstrap_probe.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "sluice/kafka/consumer.h"

namespace sluice::kafka {
namespace {

// A loopback socket bound to a free port; listening or not.
struct LoopbackPort {
  explicit LoopbackPort(bool listening) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
    if (listening) {
      EXPECT_EQ(::listen(fd, 4), 0);
    }
  }
  ~LoopbackPort() { ::close(fd); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  int fd;
  int port;
};

constexpr std::chrono::milliseconds kProbeTimeout{500};

TEST(BootstrapProbeTest, ParsesHostsPortsSchemesAndIpv6) {
  auto parsed = parse_bootstrap_servers(" a:1, PLAINTEXT://b.example:9093,[::1]:9094,");
  ASSERT_TRUE(parsed.has_value());
  ASSERT_EQ(parsed->size(), 3u);
  EXPECT_EQ((*parsed)[0].host, "a");
  EXPECT_EQ((*parsed)[0].port, "1");
  EXPECT_EQ((*parsed)[1].host, "b.example");
  EXPECT_EQ((*parsed)[1].port, "9093");
  EXPECT_EQ((*parsed)[2].host, "::1");
  EXPECT_EQ((*parsed)[2].port, "9094");
}

TEST(BootstrapProbeTest, AnEntryWithoutAPortConcludesNothing) {
  EXPECT_FALSE(parse_bootstrap_servers("a:1,b").has_value());
  EXPECT_FALSE(parse_bootstrap_servers("").has_value());
  EXPECT_FALSE(every_bootstrap_broker_refuses("127.0.0.1", kProbeTimeout));
}

TEST(BootstrapProbeTest, APortNothingListensOnRefuses) {
  LoopbackPort closed(/*listening=*/false);  // bound, not listening: connections are refused
  EXPECT_TRUE(every_bootstrap_broker_refuses(closed.address(), kProbeTimeout));
}

TEST(BootstrapProbeTest, OneListeningBrokerIsEnoughToKeepWaiting) {
  LoopbackPort closed(/*listening=*/false);
  LoopbackPort open(/*listening=*/true);
  const std::string both_closed = closed.address() + "," + closed.address();
  const std::string one_open = closed.address() + "," + open.address();
  EXPECT_TRUE(every_bootstrap_broker_refuses(both_closed, kProbeTimeout));
  EXPECT_FALSE(every_bootstrap_broker_refuses(one_open, kProbeTimeout));
  EXPECT_FALSE(every_bootstrap_broker_refuses(open.address(), kProbeTimeout));
}

TEST(BootstrapProbeTest, ANameThatDoesNotResolveIsNotARefusal) {
  EXPECT_FALSE(every_bootstrap_broker_refuses("no-such-host.invalid:9092", kProbeTimeout));
}


// A broker still starting (its port refused for 3 s, then accepting) is waited for the whole
// timeout, not reported as "every bootstrap broker refused" (which a single probe at 2 s did).
TEST(BootstrapProbeTest, ABrokerThatOpensItsPortWithinFiveSecondsGetsTheWholeTimeout) {
  LoopbackPort port(/*listening=*/false);
  auto consumer = Consumer::make("starting", {{"bootstrap.servers", port.address()}}, "g");
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  std::thread opener([&port] {
    std::this_thread::sleep_for(std::chrono::seconds(3));  // the broker's start-up, not a wait
    ::listen(port.fd, 4);
  });
  const auto started = std::chrono::steady_clock::now();
  auto topics = (*consumer)->topics(std::chrono::milliseconds(6'500));
  const auto waited = std::chrono::steady_clock::now() - started;
  opener.join();
  ASSERT_FALSE(topics.ok());  // it accepts but never answers
  EXPECT_EQ(topics.status().message().find("refused the connection"), std::string::npos)
      << topics.status().ToString();
  EXPECT_GE(waited, std::chrono::milliseconds(6'000));
}

}  // namespace
}  // namespace sluice::kafka
