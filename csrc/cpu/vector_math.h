// exp and log for the CPU's per-row loops, written so that a loop calling them over an array
// vectorises (the libm calls do not without -ffast-math, which we do not want: it would change
// NaN and rounding rules everywhere). Only arithmetic, comparisons (compiled to selects) and
// integer bit operations; no branches, no tables. The selects only vectorise when the compiler may
// evaluate both sides (-fno-trapping-math, set in le3d/_build.py: we never trap on FP exceptions).
//
// Accuracy against float64 (tests/test_vector_math.py): vexp within 1e-7 relative on [-87, 88]
// (0 below -87, e^88 above 88: the callers only need it finite); vlog within 1.2e-7 of
// max(1, |ln x|) on positive normal floats.
#pragma once
#include <cstdint>
#include <cstring>

namespace le3d {

inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2) / 2, e^r by its Taylor series to degree 7
// (truncation error r^8 / 8! < 6e-9 there); ln 2 split in two so r is exact to float precision.
inline float vexp(float x) {
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kLn2Hi = 0.693359375f;          // exact in 9 bits: n * kLn2Hi is exact
  constexpr float kLn2Lo = -2.12194440054690583e-4f;  // ln 2 - kLn2Hi
  constexpr float kRound = 12582912.0f;           // 1.5 * 2^23: adding it rounds to an integer
  const float lo = -87.0f, hi = 88.0f;
  const float xc = x < lo ? lo : (x > hi ? hi : x);
  const float n = (xc * kLog2e + kRound) - kRound;  // round to nearest (no -ffast-math: kept as is)
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n as a float built from its exponent bits; n in [-126, 127] after the clamp.
  const float scale = bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  const float y = p * scale;
  return x < lo ? 0.0f : y;
}

// ln x = k ln 2 + ln m with x = m 2^k, m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(u),
// u = (m - 1) / (m + 1), |u| < 0.172, by its series to u^9 (truncation < 1e-9).
// For positive normal floats only (the callers pass sums >= 1).
inline float vlog(float x) {
  constexpr float kLn2 = 0.693147180559945309f;
  constexpr float kSqrt2 = 1.41421356237309505f;
  const int32_t bits = float_to_bits(x);
  int32_t k = ((bits >> 23) & 0xff) - 127;
  float m = bits_to_float((bits & 0x007fffff) | 0x3f800000);  // in [1, 2)
  const bool big = m > kSqrt2;
  m = big ? 0.5f * m : m;
  k = big ? k + 1 : k;
  const float u = (m - 1.0f) / (m + 1.0f);
  const float u2 = u * u;
  float s = 1.0f / 9.0f;
  s = s * u2 + 1.0f / 7.0f;
  s = s * u2 + 1.0f / 5.0f;
  s = s * u2 + 1.0f / 3.0f;
  s = s * u2 + 1.0f;
  return static_cast<float>(k) * kLn2 + 2.0f * u * s;
}

}  // namespace le3d
