// What the compiled ops' entry points (csrc/*.cpp) share: checking that their tensors can go to one
// loop, and running the loop for the tensors' device (CPU loop, or CUDA loop under that GPU's guard).
// Host code only.
#pragma once
#include <torch/extension.h>

#include <initializer_list>
#include <utility>
#ifdef LE3D_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#endif

namespace le3d {

// Every tensor on `like`'s device and contiguous, floating ones float32; CUDA tensors refused by a
// build without CUDA (so that run_loop never needs a missing CUDA loop). `who` names the op.
inline void check_loop_inputs(const char* who, const torch::Tensor& like,
                              std::initializer_list<const torch::Tensor*> tensors) {
  for (const auto* t : tensors) {
    TORCH_CHECK(t->device() == like.device(), who, ": tensors must share one device");
    TORCH_CHECK(t->is_contiguous(), who, ": tensors must be contiguous");
    TORCH_CHECK(!t->is_floating_point() || t->scalar_type() == torch::kFloat32, who, ": float tensors must be float32");
  }
#ifndef LE3D_WITH_CUDA
  TORCH_CHECK(!like.is_cuda(), who, ": this build of le3d has no CUDA backend");
#endif
}

// The CUDA loop to pass to run_loop: the function itself, or nullptr in a build without CUDA (whose
// loops do not exist; check_loop_inputs has refused CUDA tensors there).
#ifdef LE3D_WITH_CUDA
#define LE3D_CUDA_LOOP(loop) loop
#else
#define LE3D_CUDA_LOOP(loop) nullptr
#endif

// A parameter that takes no part in template argument deduction (a null `cuda` must not), C++17's
// stand-in for std::type_identity_t: torch 2.11 builds extensions as C++17.
template <typename T>
struct NotDeduced {
  using type = T;
};

// Runs cpu(args...) for CPU tensors and cuda(args...) for CUDA ones, under the tensors' GPU guard.
// Params are deduced from `cpu` (for an overloaded loop, name them: run_loop<const Op&>(...)).
template <typename... Params, typename... Args>
void run_loop(const torch::Tensor& like, void (*cpu)(Params...),
              typename NotDeduced<void (*)(Params...)>::type cuda, Args&&... args) {
  if (!like.is_cuda()) return cpu(std::forward<Args>(args)...);
#ifdef LE3D_WITH_CUDA
  const at::cuda::OptionalCUDAGuard guard(like.device());
  cuda(std::forward<Args>(args)...);
#else
  (void)cuda;
#endif
}

}  // namespace le3d
