// When a RefreshingCache (storage/refreshing_cache.h) fetches again: the clock is given, so no
// test waits for an expiry.
#include <gtest/gtest.h>

#include <string>

#include "sluice/storage/refreshing_cache.h"

namespace sluice::storage {
namespace {

struct CachedToken {
  std::string value;
  int64_t expires_unix = 0;
};

// Fetches "t<n>" expiring `lifetime` seconds after `now`, or fails while `fail` is set.
struct TokenFetcher {
  int64_t now = 1000;
  int64_t lifetime = 3600;
  bool fail = false;
  int calls = 0;
  arrow::Result<CachedToken> operator()() {
    ++calls;
    if (fail) return arrow::Status::IOError("token endpoint down");
    return CachedToken{"t" + std::to_string(calls), lifetime == 0 ? 0 : now + lifetime};
  }
};

std::string cached_value(RefreshingCache<CachedToken>& cache, TokenFetcher& f) {
  auto r = cache.get(f.now, [&] { return f(); });
  return r.ok() ? r->value : r.status().message();
}

TEST(RefreshingCacheTest, KeepsTheValueUntilAtMostFiveMinutesBeforeExpiry) {
  RefreshingCache<CachedToken> cache;
  TokenFetcher f;
  EXPECT_EQ(cached_value(cache, f), "t1");
  f.now += 3600 - 301;
  EXPECT_EQ(cached_value(cache, f), "t1");
  f.now += 1;  // 300 s left: fetched again
  EXPECT_EQ(cached_value(cache, f), "t2");
  EXPECT_EQ(cache.fetches(), 2);
}

TEST(RefreshingCacheTest, AShortLifetimeIsRefreshedAtItsHalf) {
  RefreshingCache<CachedToken> cache;
  TokenFetcher f;
  f.lifetime = 100;
  EXPECT_EQ(cached_value(cache, f), "t1");
  f.now += 49;
  EXPECT_EQ(cached_value(cache, f), "t1");
  f.now += 1;
  EXPECT_EQ(cached_value(cache, f), "t2");
}

TEST(RefreshingCacheTest, AValueWithoutExpiryIsFetchedOnce) {
  RefreshingCache<CachedToken> cache;
  TokenFetcher f;
  f.lifetime = 0;
  EXPECT_EQ(cached_value(cache, f), "t1");
  f.now += 10 * 365 * 86400;
  EXPECT_EQ(cached_value(cache, f), "t1");
  EXPECT_EQ(cache.fetches(), 1);
}

TEST(RefreshingCacheTest, AFailedRefreshKeepsAStillValidValueAndRetriesNextTime) {
  RefreshingCache<CachedToken> cache;
  TokenFetcher f;
  EXPECT_EQ(cached_value(cache, f), "t1");
  f.now += 3400;  // due for refresh, 200 s still valid
  f.fail = true;
  EXPECT_EQ(cached_value(cache, f), "t1");
  EXPECT_EQ(f.calls, 2);
  f.fail = false;
  EXPECT_EQ(cached_value(cache, f), "t3");
  EXPECT_EQ(cache.fetches(), 2);  // successful fetches only
}

TEST(RefreshingCacheTest, AFailedFetchOfAnExpiredOrMissingValueIsTheError) {
  RefreshingCache<CachedToken> cache;
  TokenFetcher f;
  f.fail = true;
  EXPECT_EQ(cached_value(cache, f), "token endpoint down");
  f.fail = false;
  EXPECT_EQ(cached_value(cache, f), "t2");
  f.now += 3600;  // expired
  f.fail = true;
  EXPECT_EQ(cached_value(cache, f), "token endpoint down");
}

}  // namespace
}  // namespace sluice::storage
