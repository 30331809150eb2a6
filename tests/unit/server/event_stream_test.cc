// /api/stream's pieces (api.h): an event's stream id round-trips and resumes right after that
// event, ids that are not ours and unknown parameters are refused naming them, a frame is one
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

TEST(EventStream, IdRoundTripsAndResumesAfterThatEvent) {
  std::vector<pipeline::StoredEvent> events = {event_at(1000, "u-1", 0), event_at(1000, "u-1", 1),
                                               event_at(1000, "u-2", 0), event_at(2000, "u-1", 2)};
  for (size_t i = 0; i < events.size(); ++i) {
    auto cursor = parse_event_stream_id(event_stream_id(events[i]));
    ASSERT_TRUE(cursor.ok()) << cursor.status().ToString();
    EXPECT_EQ(cursor->update_id, events[i].update_id);
    EXPECT_EQ(first_event_after(events, *cursor), i + 1);
  }
  // A cursor between events (one forgotten since): the next one after it in the order.
  EXPECT_EQ(first_event_after(events, EventCursor{1500, "z", 0}), 3u);
  EXPECT_EQ(first_event_after(events, EventCursor{0, "", 0}), 0u);
}

TEST(EventStream, RefusesIdsThatAreNotOurs) {
  for (const char* bad : {"", "12", "12.x.u", "x.1.u", "1.2"}) {
    auto cursor = parse_event_stream_id(bad);
    ASSERT_FALSE(cursor.ok()) << bad;
    EXPECT_NE(cursor.status().message().find("is not one this server gave"), std::string::npos);
  }
}

TEST(EventStream, FrameIsOneMessageWithTheEventAsOneLineOfJson) {
  const auto e = event_at(1234, "u", 7);
  const auto frame = event_stream_frame(e);
  EXPECT_EQ(frame.rfind("id: 1234.7.u\ndata: {", 0), 0u) << frame;
  ASSERT_GE(frame.size(), 2u);
  EXPECT_EQ(frame.substr(frame.size() - 2), "\n\n");
  EXPECT_EQ(std::count(frame.begin(), frame.end(), '\n'), 3);  // the message's newline is escaped
  const auto data = nlohmann::json::parse(frame.substr(frame.find("data: ") + 6));
  EXPECT_EQ(data, event_json(e));
  EXPECT_EQ(data["id"], "1234.7.u");
}

TEST(EventStream, RequestTakesFiltersAndTheHeaderBeforeTheParameter) {
  ApiRequest request{"GET", "/api/stream", {{"dataset", "a"}, {"last_event_id", "5.0.p"}}};
  auto parsed = parse_stream_request(request, "");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->dataset, "a");
  ASSERT_TRUE(parsed->after.has_value());
  EXPECT_EQ(parsed->after->timestamp_micros, 5);
  auto header = parse_stream_request(request, "9.1.h");
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->after->update_id, "h");
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
