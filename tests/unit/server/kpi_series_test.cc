// The business-KPI checks: which column types a KPI may chart on x and y, and the errors that
// name the KPI's pipeline.yaml place and the column.
#include "sluice/server/kpi_series.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

namespace sluice::server {
namespace {

pipeline::KpiConfig kpi(std::string x, std::vector<std::string> y) {
  pipeline::KpiConfig k;
  k.name = "revenue";
  k.dataset = "daily";
  k.x = std::move(x);
  k.y = std::move(y);
  k.where = "pipeline.yaml:7:7";
  return k;
}

const auto kSchema = arrow::schema({arrow::field("day", arrow::date32()),
                                    arrow::field("at", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
                                    arrow::field("region", arrow::utf8()),
                                    arrow::field("n", arrow::int64()),
                                    arrow::field("amount", arrow::float64()),
                                    arrow::field("price", arrow::decimal128(10, 2)),
                                    arrow::field("ok", arrow::boolean()),
                                    arrow::field("tags", arrow::list(arrow::utf8()))});

TEST(KpiColumns, XTakesDatesTimestampsNumbersAndStrings) {
  struct Case {
    const char* x;
    KpiAxis axis;
  } cases[] = {{"day", KpiAxis::kTime}, {"at", KpiAxis::kTime}, {"n", KpiAxis::kNumber},
               {"price", KpiAxis::kNumber}, {"region", KpiAxis::kCategory}};
  for (const auto& c : cases) {
    auto axis = check_kpi_columns(kpi(c.x, {"amount", "price", "n"}), *kSchema);
    ASSERT_TRUE(axis.ok()) << c.x << ": " << axis.status().ToString();
    EXPECT_EQ(*axis, c.axis) << c.x;
  }
}

TEST(KpiColumns, RefusalsNameThePlaceTheColumnAndWhy) {
  struct Case {
    const char* x;
    std::vector<std::string> y;
    const char* message;
  } cases[] = {
      {"ok", {"n"}, "pipeline.yaml:7:7: KPI 'revenue': x column 'ok' is BOOLEAN; x must be a date, timestamp, number or string"},
      {"tags", {"n"}, "x column 'tags' is ARRAY"},
      {"day", {"region"}, "pipeline.yaml:7:7: KPI 'revenue': y column 'region' is STRING; y must be numeric"},
      {"day", {"n", "ok"}, "y column 'ok' is BOOLEAN"},
      {"nope", {"n"}, "x column 'nope' is not a column of materialized view 'daily'; its columns: day DATE"},
      {"day", {"gone"}, "y column 'gone' is not a column"},
  };
  for (const auto& c : cases) {
    auto axis = check_kpi_columns(kpi(c.x, c.y), *kSchema);
    ASSERT_FALSE(axis.ok()) << c.x;
    EXPECT_NE(axis.status().message().find(c.message), std::string::npos) << axis.status().message();
  }
}

}  // namespace
}  // namespace sluice::server
