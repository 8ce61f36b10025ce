// Entry point of the render's input value checks (csrc/value_checks.cpp; kinds in value_checks.h).
#pragma once
#include <torch/extension.h>

#include <vector>

#include "le3d/value_checks.h"

namespace le3d {

// One flag per tensor (int32, on the tensors' device; 1 = the check failed): tensors float32 or
// float64 (one dtype, one device), kinds[i] a ValueCheckKind, rows[i] the row length of a
// kCheckRowsNonzero check.
torch::Tensor value_checks(const std::vector<torch::Tensor>& tensors, const std::vector<int64_t>& kinds,
                           const std::vector<int64_t>& rows);

#ifdef LE3D_WITH_CUDA
// The CUDA kernel (cuda/value_checks_cuda.cu): failed [args.count] int32 on the device, zeroed.
void value_checks_cuda(const ValueChecksArgs& args, bool is_double, int* failed);
#endif

}  // namespace le3d
