// A credential (or token) cached and fetched again before it expires, as the cloud SDKs refresh
// theirs: the skeleton the storage credential providers share (AWS: aws_credentials.h, GCS:
// gcs_credentials.h); each provider supplies only how to fetch one.
#pragma once

#include <arrow/result.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

namespace sluice::storage {

// `T` has `int64_t expires_unix`: seconds since the epoch, 0 when it does not expire.
// Thread-safe: any thread may call get(); mutex_ guards current_, fetched_unix_ and fetches_.
// One fetch at a time: a thread that finds the value due waits for the fetch under way.
template <typename T>
class RefreshingCache {
 public:
  // At most this long before expiry a value is fetched again (less for a shorter lifetime).
  static constexpr int64_t kMaxRefreshMarginSeconds = 300;

  // The cached value while more than half its lifetime (at most kMaxRefreshMarginSeconds) is
  // left at `now_unix`; otherwise `fetch()` (an arrow::Result<T>) is called and its value kept.
  // A failed fetch returns the cached value while it is still valid (the next call retries),
  // else fetch()'s error.
  template <typename Fetch>
  arrow::Result<T> get(int64_t now_unix, Fetch&& fetch) {
    std::lock_guard lock(mutex_);
    if (current_) {
      if (current_->expires_unix == 0) return *current_;
      const int64_t margin = std::max<int64_t>(
          0, std::min(kMaxRefreshMarginSeconds, (current_->expires_unix - fetched_unix_) / 2));
      if (now_unix < current_->expires_unix - margin) return *current_;
    }
    arrow::Result<T> fetched = std::forward<Fetch>(fetch)();
    if (!fetched.ok()) {
      if (current_ && now_unix < current_->expires_unix) return *current_;
      return fetched.status();
    }
    current_ = std::move(fetched).ValueOrDie();
    fetched_unix_ = now_unix;
    ++fetches_;
    return *current_;
  }

  // How many times a value was fetched (tests, the event log).
  int64_t fetches() const {
    std::lock_guard lock(mutex_);
    return fetches_;
  }

 private:
  mutable std::mutex mutex_;
  std::optional<T> current_;  // guarded by mutex_
  int64_t fetched_unix_ = 0;  // guarded by mutex_
  int64_t fetches_ = 0;       // guarded by mutex_
};

}  // namespace sluice::storage
