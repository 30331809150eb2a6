// /api/stream's pieces (api.h): a stream id (log version, row) round-trips and resumes right
// after that row, ids that are not ours and unknown parameters are refused naming them, a frame is one
// SSE message whose data is the event's JSON on one line.
#include <gtest/gtest.h>

#include "sluice/server/api.h"

namespace sluice::server {
namespace {

pipeline::StoredEvent event_at(int64_t ts, std::string update, int64_t seq, std::string dataset = "a") {
  pipeline::StoredEvent e;
  e.timestamp_micros = ts;
  e.update_id = std::move(update);
  e.seq = seq;
  e.event_type = "flow_progress";
  e.dataset = std::move(dataset);
  e.message = "line one\nline two";
  e.details = nlohmann::json::object();
  return e;
}

TEST(EventStream, IdRoundTripsAndNamesTheNextRowOrVersion) {
  auto cursor = parse_event_stream_id(event_stream_id(4, 2));
  ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
  EXPECT_EQ(cursor->version, 4);
  EXPECT_EQ(cursor->row, 2);
  EXPECT_EQ(cursor->next_version(), 4);
  EXPECT_EQ(cursor->next_row(4), 3);
  EXPECT_EQ(cursor->next_row(5), 0);
  // A version alone (/api/events' stream_after): after all of it.
  auto whole = parse_event_stream_id("4");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->next_version(), 5);
  EXPECT_EQ(whole->next_row(5), 0);
  auto before_first = parse_event_stream_id("-1");  // a log not written yet
  ASSERT_TRUE(before_first.ok());
  EXPECT_EQ(before_first->next_version(), 0);
}

TEST(EventStream, RefusesIdsThatAreNotOurs) {
  for (const char* bad : {"", "x", "1.x", "1.-1", "-2", "-1.0", "1.2.3", "1000.0.u"}) {
    auto cursor = parse_event_stream_id(bad);
    ASSERT_FALSE(cursor.ok()) << bad;
    EXPECT_NE(cursor.status().message().find("is not one this server gave"), std::string::npos);
  }
}

TEST(EventStream, FrameIsOneMessageWithTheEventAsOneLineOfJson) {
  const auto e = event_at(1234, "u", 7);
  const auto frame = event_stream_frame(e, 3, 1);
  EXPECT_EQ(frame.rfind("id: 3.1\ndata: {", 0), 0u) << frame;
  ASSERT_GE(frame.size(), 2u);
  EXPECT_EQ(frame.substr(frame.size() - 2), "\n\n");
  EXPECT_EQ(std::count(frame.begin(), frame.end(), '\n'), 3);  // the message's newline is escaped
  auto data = nlohmann::json::parse(frame.substr(frame.find("data: ") + 6));
  EXPECT_EQ(data["stream_id"], "3.1");
  EXPECT_EQ(data["id"], "1234.7.u");  // the event's name in /api/events too
  data.erase("stream_id");
  EXPECT_EQ(data, event_json(e));
}

TEST(EventStream, RequestTakesFiltersAndTheHeaderBeforeTheParameter) {
  ApiRequest request{"GET", "/api/stream", {{"dataset", "a"}, {"last_event_id", "5"}}};
  auto parsed = parse_stream_request(request, "");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->dataset, "a");
  ASSERT_TRUE(parsed->after.has_value());
  EXPECT_EQ(parsed->after->version, 5);
  auto header = parse_stream_request(request, "9.1");
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->after->version, 9);
  EXPECT_EQ(header->after->row, 1);
  EXPECT_TRUE(stream_wants(*parsed, event_at(1, "u", 0, "a")));
  EXPECT_FALSE(stream_wants(*parsed, event_at(1, "u", 0, "b")));

  auto unknown = parse_stream_request({"GET", "/api/stream", {{"flow", "x"}}}, "");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown parameter 'flow'"), std::string::npos);
  auto bad_id = parse_stream_request({"GET", "/api/stream", {}}, "nonsense");
  ASSERT_FALSE(bad_id.ok());
  EXPECT_NE(bad_id.status().message().find("nonsense"), std::string::npos);
}

}  // namespace
}  // namespace sluice::server
