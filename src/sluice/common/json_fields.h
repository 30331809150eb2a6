// Typed fields of JSON objects sluice reads but did not necessarily write (run lease and run
// lock records in storage): json::value(key, fallback) throws nlohmann::type_error past every
// handler when the key holds another type ({"renewed_ms": "soon"}); these give the fallback.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

namespace sluice {

// object[key] when `object` is an object holding `key` with a value of T's JSON type (a whole
// number within int64 for int64_t, a boolean for bool, a string for std::string); else `fallback`.
template <typename T>
T field_or(const nlohmann::json& object, const char* key, T fallback) {
  static_assert(std::is_same_v<T, int64_t> || std::is_same_v<T, bool> || std::is_same_v<T, std::string>);
  if (!object.is_object()) return fallback;
  const auto it = object.find(key);
  if (it == object.end()) return fallback;
  if constexpr (std::is_same_v<T, int64_t>) {
    if (it->is_number_unsigned()) {
      const auto u = it->template get<uint64_t>();
      return u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? static_cast<int64_t>(u) : fallback;
    }
    return it->is_number_integer() ? it->template get<int64_t>() : fallback;
  } else if constexpr (std::is_same_v<T, bool>) {
    return it->is_boolean() ? it->template get<bool>() : fallback;
  } else {
    return it->is_string() ? it->template get<std::string>() : fallback;
  }
}

inline std::string field_or(const nlohmann::json& object, const char* key, const char* fallback) {
  return field_or<std::string>(object, key, std::string(fallback));
}

// a + b, or the int64 bound it passes (expiry times from a record: renewed_ms + ttl_ms).
inline int64_t saturating_add(int64_t a, int64_t b) {
  int64_t out = 0;
  if (!__builtin_add_overflow(a, b, &out)) return out;
  return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
}

}  // namespace sluice
