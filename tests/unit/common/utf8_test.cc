// Invalid UTF-8 replacement against Spark 4.2's output (CAST(binary AS STRING) collected in
// pyspark, which shows Java's decoding): the expected strings were printed by Spark, not derived
// from the code under test.
#include "sluice/common/utf8.h"

#include <arrow/api.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice {
namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

struct Case {
  std::string in;
  std::string spark;
};

const std::vector<Case>& spark_cases() {
  static const std::vector<Case> cases = {
      {"a\xff" "b", "a" + R + "b"},
      {"\xe2\x82", R},                            // truncated 3-byte sequence: one
      {"\xe2\x82x", R + "x"},
      {"\xf0\x9f\x98", R},                        // truncated 4-byte sequence: one
      {"\xed\xa0\x80", R},                        // an encoded surrogate: one (Python says three)
      {"\xed\xa0", R},                            // its truncated start: one (Python: two)
      {"\xed\xa0x", R + "x"},
      {"\xed\xbf\xbf", R},
      {"\xed\xa0\x80\xed\xb0\x80", R + R},        // CESU-8 pair: one per surrogate
      {"\xed\x9f\xbf", "\xed\x9f\xbf"},           // U+D7FF is valid
      {"\xc0\xaf", R + R},                        // overlong: one per byte
      {"\xe0\x80\xaf", R + R + R},
      {"\xe0\x80", R + R},
      {"\xf0\x80\x80", R + R + R},
      {"\xf4\x90\x80\x80", R + R + R + R},        // above U+10FFFF
      {"\xf4\x90", R + R},
      {"\xf8\x88\x80\x80\x80", R + R + R + R + R},
      {"\x80\x80", R + R},
      {"\xe2\x82\xe2\x82\xac", R + "\xe2\x82\xac"},
      {"\xc2", R},
      {"ok\xc3\xa9", "ok\xc3\xa9"},
  };
  return cases;
}

TEST(Utf8Test, ReplacesInvalidSequencesAsSparkShowsThem) {
  for (const auto& c : spark_cases()) {
    std::string out;
    append_valid_utf8(c.in, &out);
    EXPECT_EQ(out, c.spark) << "input bytes of length " << c.in.size();
    EXPECT_TRUE(is_valid_utf8(out));
    EXPECT_EQ(is_valid_utf8(c.in), c.in == c.spark);
  }
}

TEST(Utf8Test, ArraysAreReplacedValueByValueAndValidOnesAreNotCopied) {
  arrow::BinaryBuilder b;
  // "\xc3" + "\xa9" is valid as one buffer but not as two values.
  ASSERT_TRUE(b.Append(std::string("\xc3")).ok());
  ASSERT_TRUE(b.AppendNull().ok());
  ASSERT_TRUE(b.Append(std::string("\xa9")).ok());
  ASSERT_TRUE(b.Append(std::string("fine")).ok());
  auto in = *b.Finish();
  auto out = to_valid_utf8(in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_TRUE((*out)->ValidateFull().ok());
  const auto& s = static_cast<const arrow::StringArray&>(**out);
  EXPECT_EQ(s.GetString(0), R);
  EXPECT_TRUE(s.IsNull(1));
  EXPECT_EQ(s.GetString(2), R);
  EXPECT_EQ(s.GetString(3), "fine");

  arrow::BinaryBuilder ok;
  ASSERT_TRUE(ok.Append(std::string("caf\xc3\xa9")).ok());
  auto valid = *ok.Finish();
  auto same = *to_valid_utf8(valid);
  EXPECT_EQ(same->type_id(), arrow::Type::STRING);
  EXPECT_EQ(same->data()->buffers[2]->data(), valid->data()->buffers[2]->data());  // no copy
}

TEST(Utf8Test, IsAsciiSeesAHighByteAnywhere) {
  for (int size = 0; size <= 20; ++size) {
    std::string bytes(static_cast<size_t>(size), 'a');
    EXPECT_TRUE(is_ascii(reinterpret_cast<const uint8_t*>(bytes.data()), size));
    for (int at = 0; at < size; ++at) {
      std::string high = bytes;
      high[static_cast<size_t>(at)] = '\x80';
      EXPECT_FALSE(is_ascii(reinterpret_cast<const uint8_t*>(high.data()), size)) << size << " " << at;
    }
  }
}

// The ASCII shortcut looks at the slice's own bytes only: an invalid value outside a slice
// changes nothing, one inside it is still replaced.
TEST(Utf8Test, SlicedArraysAreJudgedByTheirOwnValues) {
  arrow::BinaryBuilder b;
  ASSERT_TRUE(b.Append(std::string("\xff")).ok());
  ASSERT_TRUE(b.Append(std::string("plain ascii, longer than a word")).ok());
  ASSERT_TRUE(b.AppendNull().ok());
  ASSERT_TRUE(b.Append(std::string("x")).ok());
  ASSERT_TRUE(b.Append(std::string("a\xc3")).ok());
  auto in = *b.Finish();
  auto ascii = in->Slice(1, 3);
  auto same = *to_valid_utf8(ascii);
  ASSERT_TRUE(same->ValidateFull().ok());
  EXPECT_EQ(same->data()->buffers[2]->data(), in->data()->buffers[2]->data());  // no copy
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*same).GetString(0), "plain ascii, longer than a word");
  EXPECT_TRUE(same->IsNull(1));
  auto replaced = *to_valid_utf8(in->Slice(3, 2));
  ASSERT_TRUE(replaced->ValidateFull().ok());
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*replaced).GetString(0), "x");
  EXPECT_EQ(static_cast<const arrow::StringArray&>(*replaced).GetString(1), "a" + R);
}

}  // namespace
}  // namespace sluice
