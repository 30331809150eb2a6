// RapidJSON 1.1.0's include/rapidjson/internal/strtod.h (MIT License, notice below) with one
// fix from upstream, marked "sluice:". sluice/format/json_record.h includes it before RapidJSON,
// whose reader.h then skips its own copy (same include guard); json_record.h refuses to be
// included after RapidJSON, so every sluice file that parses JSON uses this one. Drop it when
// the system RapidJSON is newer than 1.1.0 (docs/decisions.md, "Numbers whose digits are all
// zero").
#define SLUICE_RAPIDJSON_STRTOD_PATCHED 1
// Tencent is pleased to support the open source community by making RapidJSON available.
// 
// Copyright (C) 2015 THL A29 Limited, a Tencent company, and Milo Yip. All rights reserved.
//
// Licensed under the MIT License (the "License"); you may not use this file except
// in compliance with the License. You may obtain a copy of the License at
//
// http://opensource.org/licenses/MIT
//
// Unless required by applicable law or agreed to in writing, software distributed 
// under the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR 
// CONDITIONS OF ANY KIND, either express or implied. See the License for the 
// specific language governing permissions and limitations under the License.

#ifndef RAPIDJSON_STRTOD_
#define RAPIDJSON_STRTOD_

#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>

#include <rapidjson/rapidjson.h>  // sluice: first, so that RapidJSON's headers keep their plain paths
#include <rapidjson/internal/ieee754.h>
#include <rapidjson/internal/pow10.h>

RAPIDJSON_NAMESPACE_BEGIN
namespace internal {

inline double FastPath(double significand, int exp) {
    if (exp < -308)
        return 0.0;
    else if (exp >= 0)
        return significand * internal::Pow10(exp);
    else
        return significand / internal::Pow10(-exp);
}

inline double StrtodNormalPrecision(double d, int p) {
    if (p < -308) {
        // Prevent expSum < -308, making Pow10(p) = 0
        d = FastPath(d, -308);
        d = FastPath(d, p + 308);
    }
    else
        d = FastPath(d, p);
    return d;
}

inline bool StrtodFast(double d, int p, double* result) {
    // Use fast path for string-to-double conversion if possible
    // see http://www.exploringbinary.com/fast-path-decimal-to-floating-point-conversion/
    if (p > 22  && p < 22 + 16) {
        // Fast Path Cases In Disguise
        d *= internal::Pow10(p - 22);
        p = 22;
    }

    if (p >= -22 && p <= 22 && d <= 9007199254740991.0) { // 2^53 - 1
        *result = FastPath(d, p);
        return true;
    }
    else
        return false;
}

// sluice: 1.1.0's StrtodDiyFp, StrtodBigInteger and their helpers (Min3, CheckWithinHalfULP)
// are left out: StrtodFullPrecision below no longer calls them (std::from_chars instead).

inline double StrtodFullPrecision(double d, int p, const char* decimals, size_t length, size_t decimalPosition, int exp) {
    RAPIDJSON_ASSERT(d >= 0.0);
    RAPIDJSON_ASSERT(length >= 1);

    double result;
    if (StrtodFast(d, p, &result))
        return result;

    // Trim leading zeros
    while (*decimals == '0' && length > 1) {
        length--;
        decimals++;
        decimalPosition--;
    }

    // sluice: a '0' left first means every digit is zero, and the value is zero whatever the
    // exponent. 1.1.0 went on to normalise a zero significand in StrtodDiyFp
    // (__builtin_clzll(0)) and returned an arbitrary power of two (Tencent/rapidjson#1249,
    // fixed upstream by #1290 after 1.1.0). The reader applies the sign: -0e92 is -0.0.
    if (*decimals == '0')
        return 0.0;

    // Trim trailing zeros
    while (decimals[length - 1] == '0' && length > 1) {
        length--;
        decimalPosition--;
        exp++;
    }

    // Trim right-most digits
    const int kMaxDecimalDigit = 780;
    if (static_cast<int>(length) > kMaxDecimalDigit) {
        int delta = (static_cast<int>(length) - kMaxDecimalDigit);
        exp += delta;
        decimalPosition -= static_cast<unsigned>(delta);
        length = kMaxDecimalDigit;
    }

    // If too small, underflow to zero
    if (int(length) + exp < -324)
        return 0.0;

    // sluice: the value is 0.d1d2... x 10^magnitude with d1 != 0. Out of the double range the
    // answer is known: >= 10^309 is infinity, <= 10^-324 zero.
    const int magnitude = static_cast<int>(decimalPosition) + exp;
    if (magnitude > 309)
        return std::numeric_limits<double>::infinity();
    if (magnitude <= -324)
        return 0.0;

    // sluice: what StrtodFast cannot answer exactly goes to std::from_chars (correctly rounded,
    // locale-free), not to 1.1.0's StrtodDiyFp/StrtodBigInteger: those indexed their table of
    // cached powers of ten out of bounds for many-digit numbers (diyfp.h GetCachedPower, UBSan,
    // fuzz/corpus/json_decoder/crash-1117...), returned garbage near the top of the range
    // (9.9e308 -> -3.06e-308) and rounded wrongly at the bottom (2.4e-324 -> 4.9e-324).
    char text[kMaxDecimalDigit + 16];
    std::memcpy(text, decimals, length);
    const int scale = static_cast<int>(decimalPosition) - static_cast<int>(length) + exp;
    const int written = std::snprintf(text + length, 16, "e%d", scale);
    double value = 0.0;
    const auto parsed = std::from_chars(text, text + length + static_cast<size_t>(written), value);
    if (parsed.ec == std::errc::result_out_of_range)
        return magnitude > 0 ? std::numeric_limits<double>::infinity() : 0.0;
    return value;
}

} // namespace internal
RAPIDJSON_NAMESPACE_END

#endif // RAPIDJSON_STRTOD_
