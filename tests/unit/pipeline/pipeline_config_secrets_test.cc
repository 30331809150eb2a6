// pipeline.yaml: duplicate keys, ${env:}/${file:} references, librdkafka properties checked
// offline, and errors that never show a secret.
#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <fstream>

#include "../temp_dir.h"
#include "sluice/kafka/consumer.h"
#include "sluice/pipeline/pipeline_config.h"

namespace sluice::pipeline {
namespace {

constexpr const char* kSecret = "s3cr3t-Zq81";

class PipelineConfigSecretsTest : public ::testing::Test {
 protected:
  sluice::testing::TempDir dir_;
  arrow::Result<PipelineConfig> load(const std::string& yaml) {
    std::ofstream(dir_.path() / "pipeline.yaml") << yaml;
    return load_pipeline_config(dir_.path());
  }
  std::string file() const { return (dir_.path() / "pipeline.yaml").string(); }
};

struct DuplicateCase {
  const char* name;
  const char* yaml;
  const char* message;  // after "<file>:"
};

class DuplicateKeyTest : public PipelineConfigSecretsTest,
                         public ::testing::WithParamInterface<DuplicateCase> {};

TEST_P(DuplicateKeyTest, RefusedWithBothPlaces) {
  auto cfg = load(GetParam().yaml);
  ASSERT_FALSE(cfg.ok());
  std::string expected = GetParam().message;
  for (size_t at = expected.find("@F"); at != std::string::npos; at = expected.find("@F")) {
    expected.replace(at, 2, file());
  }
  EXPECT_EQ(cfg.status().message(), file() + ":" + expected);
}

INSTANTIATE_TEST_SUITE_P(
    AnyDepth, DuplicateKeyTest,
    ::testing::Values(
        DuplicateCase{"TopLevel", "name: a\nstorage: x\nname: b\n",
                      "3:1: key 'name' is written twice (first at @F:1:1); remove one of them"},
        DuplicateCase{"KafkaProperty",
                      "name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                      "    sasl.password: a\n    sasl.password: b\n",
                      "6:5: key 'sasl.password' is written twice (first at @F:5:5); remove one of "
                      "them"},
        DuplicateCase{"FlowMapping", "name: p\ntables:\n  t: {properties: {a: '1', a: '2'}}\n",
                      "3:28: key 'a' is written twice (first at @F:3:20); remove one of them"},
        DuplicateCase{"InsideSequence",
                      "name: p\nkafka: {default: {bootstrap.servers: h}}\nbronze:\n"
                      "  - topic: a\n    topic: b\n",
                      "5:5: key 'topic' is written twice (first at @F:4:5); remove one of them"}),
    [](const auto& info) { return std::string(info.param.name); });

// Aliases make a node reachable many times or from inside itself; the duplicate-key check
// visits each node once (before: stack overflow, and 10^9 visits). The error that follows is
// the first refusal of the parsed config, not of the check.
TEST_F(PipelineConfigSecretsTest, SelfContainingAliasIsCheckedOnce) {
  auto cfg = load("name: p\nx: &a [*a]\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message().find("written twice"), std::string::npos) << cfg.status().message();
}

TEST_F(PipelineConfigSecretsTest, AliasesOfAliasesAreCheckedOnce) {
  std::string yaml = "name: p\na0: &a0 {k: v, k2: v}\n";
  for (int i = 1; i < 10; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) yaml += (j ? ", *a" : "*a") + std::to_string(i - 1);
    yaml += "]\n";
  }
  const auto start = std::chrono::steady_clock::now();
  auto cfg = load(yaml);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_FALSE(cfg.ok());
}

TEST_F(PipelineConfigSecretsTest, DuplicateKeyBehindAnAliasIsFoundOnce) {
  auto cfg = load("name: p\nx: &a {k: 1, k: 2}\ny: [*a, *a]\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":2:14: key 'k' is written twice (first at " + file() + ":2:8); remove one of them");
}

TEST_F(PipelineConfigSecretsTest, ListAsKeyIsRefused) {
  auto cfg = load("name: p\n? &k [*k]\n: 1\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(), file() + ":2:3: a key must be a name, not a list; write `name: value`");
}

TEST_F(PipelineConfigSecretsTest, EnvReferenceIsReplaced) {
  ::setenv("SLUICE_TEST_KAFKA_PASSWORD", kSecret, 1);
  auto cfg = load(
      "name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
      "    sasl.password: ${env:SLUICE_TEST_KAFKA_PASSWORD}\n"
      "    sasl.username: user-${env:SLUICE_TEST_KAFKA_PASSWORD}-x\n");
  ::unsetenv("SLUICE_TEST_KAFKA_PASSWORD");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->kafka.at("default").at("sasl.password"), kSecret);
  EXPECT_EQ(cfg->kafka.at("default").at("sasl.username"), std::string("user-") + kSecret + "-x");
}

TEST_F(PipelineConfigSecretsTest, FileReferenceIsRelativeToThePipelineAndDropsTheLastNewline) {
  std::ofstream(dir_.path() / "kafka.pass") << kSecret << "\n";
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    sasl.password: ${file:kafka.pass}\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->kafka.at("default").at("sasl.password"), kSecret);
}

TEST_F(PipelineConfigSecretsTest, MissingEnvVariableNamesItAndTheLine) {
  ::unsetenv("SLUICE_TEST_NOT_SET");
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    sasl.password: ${env:SLUICE_TEST_NOT_SET}\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":5:20: kafka.default.sasl.password: environment variable "
                     "'SLUICE_TEST_NOT_SET' (${env:SLUICE_TEST_NOT_SET}) is not set; set it in the "
                     "environment of sluice");
}

TEST_F(PipelineConfigSecretsTest, UnreadableFileNamesThePath) {
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    sasl.password: ${file:/nonexistent/kafka.pass}\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":5:20: kafka.default.sasl.password: cannot read '/nonexistent/kafka.pass' "
                     "(${file:/nonexistent/kafka.pass}): No such file or directory; the path is "
                     "relative to the pipeline folder unless absolute");
}

TEST_F(PipelineConfigSecretsTest, UnknownReferenceKindIsRefused) {
  auto cfg = load("name: p\nstorage: ${vault:data}\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":2:10: storage: unknown reference '${vault:...}'; use ${env:NAME} or "
                     "${file:path}");
}

TEST_F(PipelineConfigSecretsTest, MistypedSecretPropertyIsRefusedWithoutItsValue) {
  auto cfg = load(std::string("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                              "    sasl.pasword: ") + kSecret + "\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":5:5: kafka.default: librdkafka has no property 'sasl.pasword' (did you mean "
                     "'sasl.password'?); see librdkafka's CONFIGURATION.md for the property names");
}

TEST_F(PipelineConfigSecretsTest, BadValueOfAPlainPropertyIsShown) {
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    session.timeout.ms: soon\n");
  ASSERT_FALSE(cfg.ok());
  const auto message = cfg.status().message();
  EXPECT_EQ(message.rfind(file() + ":5:5: kafka.default: librdkafka refuses 'soon' for property "
                                   "'session.timeout.ms': ",
                          0),
            0u)
      << message;
}

TEST_F(PipelineConfigSecretsTest, BadValueOfASecretLookingPropertyIsNotShown) {
  // A boolean property whose name looks secret ("auth"): librdkafka's own text quotes the value.
  auto cfg = load(std::string("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                              "    enable.sasl.oauthbearer.unsecure.jwt: ") + kSecret + "\n");
  ASSERT_FALSE(cfg.ok());
  const auto message = cfg.status().message();
  EXPECT_EQ(message.find(kSecret), std::string::npos) << message;
  EXPECT_EQ(message.rfind(file() + ":5:5: kafka.default: librdkafka refuses <redacted> for property "
                                   "'enable.sasl.oauthbearer.unsecure.jwt': ",
                          0),
            0u)
      << message;
}

// A value read from a reference is secret whatever key holds it: neither the offline check of
// pipeline.yaml nor the consumer's librdkafka texts may show it.
TEST_F(PipelineConfigSecretsTest, ReferencedValueOfAPlainPropertyIsNotShown) {
  ::setenv("SLUICE_TEST_KAFKA_PROTOCOL", "Pr0to-S3cret", 1);
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    security.protocol: ${env:SLUICE_TEST_KAFKA_PROTOCOL}\n");
  ::unsetenv("SLUICE_TEST_KAFKA_PROTOCOL");
  ASSERT_FALSE(cfg.ok());
  const auto message = cfg.status().message();
  EXPECT_EQ(message.find("S3cret"), std::string::npos) << message;
  EXPECT_EQ(message.rfind(file() + ":5:5: kafka.default: librdkafka refuses <redacted> for property "
                                   "'security.protocol': Invalid value \"<redacted>\"",
                          0),
            0u)
      << message;
}

TEST_F(PipelineConfigSecretsTest, ReferencedValueIsScrubbedFromLibrdkafkaTexts) {
  std::ofstream(dir_.path() / "mechanism") << "Mech-S3cret-77\n";
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: 127.0.0.1:1\n"
                  "    security.protocol: SASL_PLAINTEXT\n    sasl.mechanisms: ${file:mechanism}\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto consumer = kafka::Consumer::make("default", cfg->kafka.at("default"), "g");
  ASSERT_FALSE(consumer.ok());
  const auto message = consumer.status().message();
  EXPECT_EQ(message.find("S3cret"), std::string::npos) << message;
  EXPECT_EQ(message, "Kafka cluster 'default': cannot create consumer: Unsupported SASL mechanism: <redacted>");
}

TEST_F(PipelineConfigSecretsTest, UnterminatedReferenceIsAnError) {
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    sasl.password: ${env:SLUICE_TEST_KAFKA_PASSWORD\n");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().message(),
            file() + ":5:20: kafka.default.sasl.password: reference '${env:...' has no closing '}'; "
                     "write ${env:...} (or $${ for a literal ${)");
}

TEST_F(PipelineConfigSecretsTest, DoubledDollarIsALiteralReference) {
  auto cfg = load("name: p\nkafka:\n  default:\n    bootstrap.servers: h:1\n"
                  "    client.id: a-$${env:X}-b\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->kafka.at("default").at("client.id"), "a-${env:X}-b");
}

}  // namespace
}  // namespace sluice::pipeline
