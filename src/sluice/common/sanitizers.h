#pragma once
// Whether this build runs under AddressSanitizer (gcc defines __SANITIZE_ADDRESS__, clang has
// __has_feature(address_sanitizer)): code that walks glibc's allocator, which ASan replaces,
// must not run there.

namespace sluice {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kUnderAddressSanitizer = true;
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif
#else
inline constexpr bool kUnderAddressSanitizer = false;
#endif

}  // namespace sluice
