// The input value checks of a render (le3d/raster/validate.py), one unit at a time, so that the CPU
// loop and the CUDA kernel answer every check of a render in one pass and one read-back: a GPU render
// spent about 20 kernel launches on them as separate torch reductions (its twin there still does).
// A unit is an element, or for kCheckRowsNonzero a row.
#pragma once
#include <cmath>
#include <cstdint>

#include "le3d/common.h"

namespace le3d {

enum ValueCheckKind : int {
  kCheckFinite = 0,          // every element finite
  kCheckPositive = 1,        // every element > 0 (NaN fails)
  kCheckRowsNonzero = 2,     // every row of `row` elements has a sum of squares > 0 (a quaternion's norm)
  kCheckFocalsPositive = 3,  // a 3x3 intrinsics matrix: K[0,0] > 0 and K[1,1] > 0 (one unit)
};

constexpr int kMaxValueChecks = 16;  // checks answered by one call (a render registers at most 11)

struct ValueCheck {
  const void* data;  // contiguous float or double
  int64_t units;
  int kind;
  int row;  // elements per row (kCheckRowsNonzero), else 1
};

struct ValueChecksArgs {
  ValueCheck checks[kMaxValueChecks];
  int count;
};

// Units of a check over a tensor of `numel` elements.
inline int64_t value_check_units(int kind, int64_t numel, int row) {
  if (kind == kCheckFocalsPositive) return numel >= 5 ? 1 : 0;
  return kind == kCheckRowsNonzero ? numel / row : numel;
}

template <typename T>
LE3D_HD bool value_unit_ok(const T* x, int64_t i, int kind, int row) {
  switch (kind) {
    case kCheckFinite:
      return is_finite(x[i]);
    case kCheckPositive:
      return x[i] > T(0);
    case kCheckRowsNonzero: {
      T sum = 0;
      for (int j = 0; j < row; ++j) sum += x[i * row + j] * x[i * row + j];
      return sum > T(0);
    }
    default:  // kCheckFocalsPositive
      return x[0] > T(0) && x[4] > T(0);
  }
}

}  // namespace le3d
