// librdkafka properties: offline checks, redaction of secret values, and a TLS client that
// starts without ssl.ca.location (it crashed in rd_kafka_new while libparquet's bundled
// libcrypto interposed the system one).
#include "sluice/kafka/client_properties.h"

#include <dlfcn.h>
#include <link.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sluice/common/secrets.h"
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include "sluice/kafka/consumer.h"

namespace sluice::kafka {
namespace {

constexpr const char* kSecret = "s3cr3t-Zq81";

TEST(SecretKeys, LookSecretByName) {
  for (const char* key : {"sasl.password", "sasl.pasword", "sasl.passwrod", "sasl.secrat", "ssl.key.password", "ssl.keystore.password",
                          "sasl.oauthbearer.client.secret", "sasl.jaas.config", "api_token", "PWD",
                          "ssl.key.pem", "basic.auth.user.info"}) {
    EXPECT_TRUE(looks_secret(key)) << key;
  }
  for (const char* key : {"bootstrap.servers", "security.protocol", "session.timeout.ms",
                          "ssl.ca.location", "client.id", "sasl.mechanisms", "topic.metadata.refresh.interval.ms",
                          "socket.timeout.ms", "reconnect.backoff.ms"}) {
    EXPECT_FALSE(looks_secret(key)) << key;
  }
}

TEST(SecretKeys, ShownValueHidesSecretAndUnknownKeys) {
  EXPECT_EQ(shown_value("client.id", "sluice"), "'sluice'");
  EXPECT_EQ(shown_value("sasl.password", kSecret), "<redacted>");
  EXPECT_EQ(shown_value("client.idd", kSecret, KeyKnown::kUnknown), "<redacted>");
}

TEST(SecretKeys, UrlPasswordIsRedacted) {
  EXPECT_EQ(url_without_password("http://u:s3cr3t@registry:8081/apis"), "http://<redacted>@registry:8081/apis");
  EXPECT_EQ(url_without_password("http://u:p/w@reg"), "http://<redacted>@reg");
  EXPECT_EQ(url_without_password("http://u:p?w#x@reg/a"), "http://<redacted>@reg/a");
  EXPECT_EQ(url_without_password("http://APIKEY@reg:8081"), "http://<redacted>@reg:8081");
  EXPECT_EQ(url_without_password("http://u:a@b@reg"), "http://<redacted>@reg");
  // An '@' in the path may close a user info with a '/': hidden, more than needed, never less.
  EXPECT_EQ(url_without_password("http://registry:8081/a@b"), "http://<redacted>@b");
  EXPECT_EQ(url_without_password("http://registry:8081/apis"), "http://registry:8081/apis");
  EXPECT_EQ(url_without_password("registry:8081"), "registry:8081");
}

TEST(CheckProperty, AcceptsKnownProperties) {
  EXPECT_TRUE(check_property("security.protocol", "SASL_SSL").ok());
  EXPECT_TRUE(check_property("sasl.password", kSecret).ok());
  EXPECT_TRUE(check_property("auto.offset.reset", "earliest").ok());  // a topic-level property
}

TEST(CheckProperty, UnknownPropertySuggestsAndNeverShowsTheValue) {
  auto st = check_property("sasl.pasword", kSecret);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "librdkafka has no property 'sasl.pasword' (did you mean 'sasl.password'?); see "
            "librdkafka's CONFIGURATION.md for the property names");
}

TEST(CheckProperty, SuggestsPropertiesWithoutADefault) {
  auto st = check_property("ssl.ca.locaton", "/x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("(did you mean 'ssl.ca.location'?)"), std::string::npos) << st.message();
  st = check_property("sasl.kerberos.keytb", "/x");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("(did you mean 'sasl.kerberos.keytab'?)"), std::string::npos) << st.message();
}

// No secret-looking property of this librdkafka build quotes a refused value, so these feed
// property_rejected the reason librdkafka gives for enum properties (`Invalid value "…" for
// configuration property "…"`), trimmed of blanks and cut at its 512-byte error buffer.
TEST(CheckProperty, BadValueOfSecretLookingKeyIsRedacted) {
  const std::string long_value = std::string(600, 'Q') + "-tail";
  for (const std::string& value : {std::string(kSecret), "  " + std::string(kSecret) + " ", long_value}) {
    const auto trimmed = value.substr(value.find_first_not_of(' '));
    const auto reason = ("Invalid value \"" + trimmed.substr(0, trimmed.find_last_not_of(' ') + 1) +
                         "\" for configuration property \"sasl.password\"").substr(0, 511);
    auto st = property_rejected("sasl.password", value, false, reason);
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.message().find(std::string(kSecret).substr(0, kMinSecretFragment)), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find("QQQQQQ"), std::string::npos) << st.message();
    EXPECT_EQ(st.message().rfind("librdkafka refuses <redacted> for property 'sasl.password': Invalid value \"<redacted>", 0), 0u) << st.message();
  }
}

TEST(CheckProperty, SecretValueThatOccursInTheRedactionMarkTerminates) {
  // "e" occurs in "<redacted>": redaction must not search the text it inserted.
  auto st = property_rejected("sasl.oauthbearer.method", "e", false, "Invalid value \"e\" here");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "librdkafka refuses <redacted> for property 'sasl.oauthbearer.method': "
                          "Invalid valu<redacted> \"<redacted>\" h<redacted>r<redacted>");
}

TEST(SecretKeys, RedactValuesHidesWholeTrimmedAndFragments) {
  EXPECT_EQ(redact_values("a e b", {"e"}), "a <redacted> b");
  EXPECT_EQ(redact_values("x abc y", {"  abc\n"}), "x <redacted> y");
  EXPECT_EQ(redact_values("beginning at: Extension_apikey=S3CRET", {"principal=svc Extension_apikey=S3CRET"}),
            "beginning at:<redacted>");  // the blank is part of the value
  EXPECT_EQ(redact_values("cut at s3cr3t", {"s3cr3t-Zq81"}), "cut at <redacted>");
  EXPECT_EQ(redact_values("s3cr", {"s3cr3t-Zq81"}), "s3cr");  // shorter than a fragment
  EXPECT_EQ(redact_values("pw=<redacted>", {"<redacted>", "red"}), "pw=<redacted>");
  EXPECT_EQ(redact_values("nothing", {"", "  "}), "nothing");
}

TEST(CheckProperty, BadValueOfPlainKeyIsShown) {
  auto st = check_property("security.protocol", "tls");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("librdkafka refuses 'tls' for property 'security.protocol': ", 0), 0u)
      << st.message();
}

TEST(ConsumerProperties, RejectedSecretPropertyIsNotEchoed) {
  auto consumer = Consumer::make("c", {{"bootstrap.servers", "127.0.0.1:1"}, {"sasl.pasword", kSecret}}, "g");
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().message(),
            "Kafka cluster 'c': librdkafka has no property 'sasl.pasword' (did you mean "
            "'sasl.password'?); see librdkafka's CONFIGURATION.md for the property names");
}

// librdkafka's own texts quote configuration values; the consumer scrubs its secrets from them.
TEST(ConsumerProperties, LibrdkafkaErrorTextIsScrubbedOfSecrets) {
  auto consumer = Consumer::make("c", {{"bootstrap.servers", "127.0.0.1:1"},
                                       {"security.protocol", "SASL_PLAINTEXT"},
                                       {"sasl.mechanisms", "OAUTHBEARER"},
                                       {"enable.sasl.oauthbearer.unsecure.jwt", "true"},
                                       {"sasl.oauthbearer.config", "principal=svc Extension_apikey=S3CRET-k9"}},
                                 "g");
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  // The unsecured-JWT token builder refuses the config on the client's thread and reports it
  // as an error event, which the failed metadata request then quotes.
  (void)(*consumer)->poll(std::chrono::milliseconds(200));  // serves the queued events
  auto topics = (*consumer)->topics(std::chrono::milliseconds(500));
  ASSERT_FALSE(topics.ok());
  const auto& message = topics.status().message();
  EXPECT_EQ(message.find("S3CRET"), std::string::npos) << message;
  EXPECT_NE(message.find("sasl.oauthbearer.config beginning at:<redacted>"), std::string::npos) << message;
  // The advice fits the mechanism: an OAUTHBEARER login has no username or password.
  EXPECT_NE(message.find("); check the sasl.oauthbearer.* settings of this cluster"), std::string::npos) << message;
}

// librdkafka 2.0's texts for a SASL exchange: the broker's refusal is final, a broker that went
// away during the exchange is not (a restart during login must not stop a pipeline for good).
TEST(LoginRefusal, OnlyTheBrokersRefusalIsFinal) {
  const int kAuth = RdKafka::ERR__AUTHENTICATION;
  const int kTransport = RdKafka::ERR__TRANSPORT;
  EXPECT_TRUE(is_login_refusal(kAuth, "SASL authentication error: Authentication failed: Invalid "
                                      "username or password (after 3ms in state AUTH_REQ)"));
  EXPECT_TRUE(is_login_refusal(kTransport, "sasl_plaintext://127.0.0.1:9094/bootstrap: SASL "
                                           "authentication error: Authentication failed during "
                                           "authentication due to invalid credentials with SASL "
                                           "mechanism SCRAM-SHA-256 (after 2ms in state AUTH_REQ)"));
  EXPECT_TRUE(is_login_refusal(RdKafka::ERR_SASL_AUTHENTICATION_FAILED, "anything"));
  EXPECT_FALSE(is_login_refusal(kTransport, "sasl_plaintext://h:9094/1: SASL authentication error: "
                                            "SaslAuthenticateRequest failed: Local: Broker transport "
                                            "failure (after 4ms in state AUTH_REQ)"));
  EXPECT_FALSE(is_login_refusal(kAuth, "SASL authentication error: SaslAuthenticateRequest failed: "
                                       "Local: Timed out (after 10001ms in state AUTH_REQ)"));
  EXPECT_FALSE(is_login_refusal(kTransport, "sasl_plaintext://h:9094/1: Disconnected (after 3ms in "
                                            "state AUTH_REQ)"));
  EXPECT_FALSE(is_login_refusal(kTransport, "Connect to ipv4#127.0.0.1:1 failed: Connection refused"));
}

TEST(LoginRefusal, AdviceFitsTheMechanism) {
  EXPECT_EQ(login_advice({{"sasl.mechanisms", "PLAIN"}}),
            "check sasl.username and sasl.password of this cluster (mechanism PLAIN)");
  // sluice links librdkafka >= 2.6.1 (its SCRAM works with Kafka 4): a refusal is the password.
  EXPECT_EQ(login_advice({{"sasl.mechanism", "SCRAM-SHA-512"}}),
            "check sasl.username and sasl.password of this cluster (mechanism SCRAM-SHA-512)");
  EXPECT_GE(rd_kafka_version(), 0x020601ff) << rd_kafka_version_str();  // the library loaded
  EXPECT_EQ(login_advice({{"sasl.mechanisms", "OAUTHBEARER"}}).rfind("check the sasl.oauthbearer.* settings", 0), 0u);
  EXPECT_EQ(login_advice({}).rfind("check sasl.kerberos.principal, sasl.kerberos.keytab", 0), 0u);
}

// librdkafka 2.0's texts (OpenSSL 3.0) for the TLS failures the secured-Kafka tests provoke.
TEST(TlsFailureKind, NamesTheCause) {
  const int kTransport = RdKafka::ERR__TRANSPORT;
  const int kSsl = RdKafka::ERR__SSL;
  EXPECT_EQ(classify_tls_failure(kSsl, "ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: "
                                       "error:0A000086:SSL routines::certificate verify failed: "
                                       "broker certificate could not be verified, verify that "
                                       "ssl.ca.location is correctly configured or root CA "
                                       "certificates are installed (install ca-certificates "
                                       "package) (after 5ms in state SSL_HANDSHAKE)"),
            TlsFailure::kBrokerNotTrusted);
  // Mutual TLS, TLS 1.3: the broker's alert arrives on the first read after the handshake.
  EXPECT_EQ(classify_tls_failure(kTransport, "ssl://127.0.0.1:9097/bootstrap: Receive failed: "
                                             "error:0A000412:SSL routines::ssl/tls alert bad "
                                             "certificate: SSL alert number 42 (after 8ms in "
                                             "state APIVERSION_QUERY)"),
            TlsFailure::kClientCertRefused);
  EXPECT_EQ(classify_tls_failure(kTransport, "Receive failed: error:0A00045C:SSL routines::tlsv13 "
                                             "alert certificate required: SSL alert number 116"),
            TlsFailure::kClientCertRefused);
  // A client certificate of a CA the broker does not trust.
  EXPECT_EQ(classify_tls_failure(kTransport, "Receive failed: error:0A000416:SSL routines::sslv3 "
                                             "alert certificate unknown: SSL alert number 46"),
            TlsFailure::kClientCertRefused);
  EXPECT_EQ(classify_tls_failure(kSsl, "SSL handshake failed: Disconnected: connection reset"),
            TlsFailure::kOther);
  EXPECT_EQ(classify_tls_failure(kTransport, "Connect to ipv4#127.0.0.1:1 failed: Connection refused"),
            TlsFailure::kNone);
}

TEST(TlsFailureKind, AdviceSaysWhatToSet) {
  EXPECT_EQ(tls_advice(TlsFailure::kBrokerNotTrusted, {}).rfind(
                "the broker's certificate is not trusted (its CA is not in the system's CA store); "
                "if the broker's certificate is signed by a private CA, set ssl.ca.location", 0),
            0u);
  EXPECT_EQ(tls_advice(TlsFailure::kBrokerNotTrusted, {{"ssl.ca.location", ""}})
                .rfind("the broker's certificate is not trusted by the CA in ssl.ca.location", 0),
            0u);
  EXPECT_EQ(tls_advice(TlsFailure::kClientCertRefused, {{"ssl.ca.location", ""}})
                .rfind("the broker requires a client certificate (mutual TLS) and none is "
                       "configured; set ssl.certificate.location and ssl.key.location", 0),
            0u);
  EXPECT_EQ(tls_advice(TlsFailure::kClientCertRefused, {{"ssl.certificate.location", ""}})
                .rfind("the broker refused this client's certificate", 0),
            0u);
}

// The process's libcrypto symbols must come from the system libcrypto that libssl and
// librdkafka were built against, not from a copy another library bundles and exports.
TEST(KafkaTls, LibcryptoSymbolsResolveToTheSystemLibrary) {
  for (const char* symbol : {"X509_STORE_set_default_paths_ex", "OSSL_STORE_open_ex", "EVP_MD_fetch"}) {
    void* address = dlsym(RTLD_DEFAULT, symbol);
    ASSERT_NE(address, nullptr) << symbol;
    Dl_info info{};
    ASSERT_NE(dladdr(address, &info), 0) << symbol;
    EXPECT_NE(std::string(info.dli_fname).find("libcrypto"), std::string::npos)
        << symbol << " resolves to " << info.dli_fname;
  }
}

// The libraries in the order the dynamic loader searches them: libssl and libcrypto must come
// before libparquet, which exports a bundled copy of libcrypto's symbols.
TEST(KafkaTls, OpenSslIsLoadedBeforeLibparquet) {
  std::vector<std::string> order;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        static_cast<std::vector<std::string>*>(data)->emplace_back(info->dlpi_name);
        return 0;
      },
      &order);
  auto position = [&](const char* name) {
    for (size_t i = 0; i < order.size(); ++i) {
      if (order[i].find(name) != std::string::npos) return i;
    }
    return order.size();
  };
  const auto parquet = position("libparquet.so");
  ASSERT_LT(parquet, order.size());
  EXPECT_LT(position("libssl.so"), parquet);
  EXPECT_LT(position("libcrypto.so"), parquet);
}

TEST(KafkaTls, ClientWithoutCaLocationUsesTheSystemStore) {
  // No broker is needed: rd_kafka_new loads the default CA store while creating the client.
  for (const char* protocol : {"SSL", "SASL_SSL"}) {
    KafkaProperties props = {{"bootstrap.servers", "127.0.0.1:1"}, {"security.protocol", protocol}};
    if (std::string(protocol) == "SASL_SSL") {
      props["sasl.mechanisms"] = "PLAIN";
      props["sasl.username"] = "u";
      props["sasl.password"] = kSecret;
    }
    auto consumer = Consumer::make("tls", props, "g");
    EXPECT_TRUE(consumer.ok()) << protocol << ": " << consumer.status().ToString();
  }
}

}  // namespace
}  // namespace sluice::kafka
