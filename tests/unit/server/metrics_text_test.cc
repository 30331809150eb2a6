// The Prometheus text writer: names, escaping, grouping, and refusal of what the format forbids.
#include "sluice/server/metrics_text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace sluice::server {
namespace {

TEST(MetricsText, WritesHelpTypeAndSamplesOfAFamilyTogether) {
  MetricsText m;
  ASSERT_TRUE(m.family("sluice_a_rows_total", MetricType::kCounter, "Rows a").ok());
  ASSERT_TRUE(m.family("sluice_b_bytes", MetricType::kGauge, "Bytes b").ok());
  ASSERT_TRUE(m.sample("sluice_a_rows_total", {{"dataset", "x"}}, 1).ok());
  ASSERT_TRUE(m.sample("sluice_b_bytes", {}, 2.5).ok());
  ASSERT_TRUE(m.sample("sluice_a_rows_total", {{"dataset", "y"}}, 3).ok());
  EXPECT_EQ(m.text(),
            "# HELP sluice_a_rows_total Rows a\n# TYPE sluice_a_rows_total counter\n"
            "sluice_a_rows_total{dataset=\"x\"} 1\nsluice_a_rows_total{dataset=\"y\"} 3\n"
            "# HELP sluice_b_bytes Bytes b\n# TYPE sluice_b_bytes gauge\nsluice_b_bytes 2.5\n");
}

TEST(MetricsText, EscapesLabelValuesAndHelp) {
  MetricsText m;
  ASSERT_TRUE(m.family("g", MetricType::kGauge, "a \\ b\nc \"q\"").ok());
  ASSERT_TRUE(m.sample("g", {{"l", "back\\slash \"quoted\"\nnext"}}, 0).ok());
  EXPECT_EQ(m.text(), "# HELP g a \\\\ b\\nc \"q\"\n# TYPE g gauge\ng{l=\"back\\\\slash \\\"quoted\\\"\\nnext\"} 0\n");
}

TEST(MetricsText, FamilyWithoutSamplesIsLeftOut) {
  MetricsText m;
  ASSERT_TRUE(m.family("g", MetricType::kGauge, "h").ok());
  EXPECT_EQ(m.text(), "");
}

TEST(MetricsText, RefusesBadNames) {
  MetricsText m;
  EXPECT_FALSE(m.family("1abc", MetricType::kGauge, "h").ok());
  EXPECT_FALSE(m.family("a-b", MetricType::kGauge, "h").ok());
  EXPECT_FALSE(m.family("", MetricType::kGauge, "h").ok());
  ASSERT_TRUE(m.family("g", MetricType::kGauge, "h").ok());
  EXPECT_FALSE(m.sample("g", {{"__reserved", "x"}}, 1).ok());
  EXPECT_FALSE(m.sample("g", {{"a.b", "x"}}, 1).ok());
  EXPECT_FALSE(m.sample("unknown", {}, 1).ok());
  EXPECT_TRUE(is_metric_name("sluice:rate_5m"));
  EXPECT_FALSE(is_label_name("with:colon"));
}

TEST(MetricsText, CountersEndInTotalAndGaugesDoNot) {
  MetricsText m;
  auto st = m.family("sluice_rows", MetricType::kCounter, "h");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("must end in _total"), std::string::npos) << st.message();
  EXPECT_FALSE(m.family("sluice_rows_total", MetricType::kGauge, "h").ok());
}

TEST(MetricsText, RefusesADuplicateFamilyOrSeriesOrLabel) {
  MetricsText m;
  ASSERT_TRUE(m.family("g", MetricType::kGauge, "h").ok());
  EXPECT_FALSE(m.family("g", MetricType::kGauge, "h").ok());
  ASSERT_TRUE(m.sample("g", {{"a", "1"}}, 1).ok());
  EXPECT_FALSE(m.sample("g", {{"a", "1"}}, 2).ok());
  EXPECT_FALSE(m.sample("g", {{"b", "1"}, {"b", "2"}}, 2).ok());
}

TEST(MetricValueText, WholeNumbersSpecialValuesAndFractions) {
  EXPECT_EQ(metric_value_text(0), "0");
  EXPECT_EQ(metric_value_text(123456789012), "123456789012");
  EXPECT_EQ(metric_value_text(-3), "-3");
  EXPECT_EQ(metric_value_text(0.25), "0.25");
  EXPECT_EQ(metric_value_text(std::nan("")), "NaN");
  EXPECT_EQ(metric_value_text(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(metric_value_text(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(metric_value_text(1e300), "1e+300");
}

}  // namespace
}  // namespace sluice::server
