// Entry point of the render's input value checks (le3d/value_checks.h): every check of a render in
// one pass over its tensors, answered as one int32 flag per check (1 = failed) on the tensors' device.
// The CPU loop is here; the CUDA kernel is cuda/value_checks_cuda.cu.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <atomic>
#include <vector>

#include "le3d/value_checks_api.h"
#ifdef LE3D_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace le3d {

namespace {

template <typename T>
void value_checks_cpu(const ValueChecksArgs& args, int* failed) {
  for (int c = 0; c < args.count; ++c) {
    const ValueCheck& check = args.checks[c];
    const T* x = static_cast<const T*>(check.data);
    std::atomic<bool> bad{false};
    at::parallel_for(0, check.units, 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end && !bad.load(std::memory_order_relaxed); ++i)
        if (!value_unit_ok(x, i, check.kind, check.row)) bad.store(true, std::memory_order_relaxed);
    });
    failed[c] = bad.load() ? 1 : 0;
  }
}

}  // namespace

// tensors: float32 or float64 (one dtype), one device; kinds[i]: a ValueCheckKind; rows[i]: the row
// length of a kCheckRowsNonzero check (else ignored). Returns int32 [n] on that device, 1 = failed.
torch::Tensor value_checks(const std::vector<torch::Tensor>& tensors, const std::vector<int64_t>& kinds,
                           const std::vector<int64_t>& rows) {
  const int n = static_cast<int>(tensors.size());
  TORCH_CHECK(n >= 1 && n <= kMaxValueChecks, "value_checks: 1 to ", kMaxValueChecks, " checks per call");
  TORCH_CHECK(kinds.size() == tensors.size() && rows.size() == tensors.size(),
              "value_checks: one kind and one row length per tensor");
  const auto device = tensors[0].device();
  const auto dtype = tensors[0].scalar_type();
  TORCH_CHECK(dtype == torch::kFloat32 || dtype == torch::kFloat64, "value_checks: float32 or float64 tensors");
#ifndef LE3D_WITH_CUDA
  TORCH_CHECK(!tensors[0].is_cuda(), "value_checks: this build of le3d has no CUDA backend");
#endif
  std::vector<torch::Tensor> contiguous;  // keeps copies of non-contiguous inputs alive
  ValueChecksArgs args{};
  args.count = n;
  for (int i = 0; i < n; ++i) {
    const auto& t = tensors[i];
    TORCH_CHECK(t.device() == device && t.scalar_type() == dtype, "value_checks: tensors must share one device and dtype");
    TORCH_CHECK(kinds[i] >= kCheckFinite && kinds[i] <= kCheckFocalsPositive, "value_checks: unknown kind ", kinds[i]);
    const int row = kinds[i] == kCheckRowsNonzero ? static_cast<int>(rows[i]) : 1;
    TORCH_CHECK(row >= 1 && t.numel() % row == 0, "value_checks: row length must divide the tensor's size");
    contiguous.push_back(t.contiguous());
    args.checks[i] = ValueCheck{contiguous.back().data_ptr(),
                                value_check_units(static_cast<int>(kinds[i]), t.numel(), row),
                                static_cast<int>(kinds[i]), row};
  }
  auto failed = torch::zeros({n}, tensors[0].options().dtype(torch::kInt32));
  if (!tensors[0].is_cuda()) {
    if (dtype == torch::kFloat64)
      value_checks_cpu<double>(args, failed.data_ptr<int>());
    else
      value_checks_cpu<float>(args, failed.data_ptr<int>());
    return failed;
  }
#ifdef LE3D_WITH_CUDA
  const at::cuda::OptionalCUDAGuard guard(device);
  value_checks_cuda(args, dtype == torch::kFloat64, failed.data_ptr<int>());
#endif
  return failed;
}

}  // namespace le3d
