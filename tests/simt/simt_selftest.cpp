// Small kernels that pin down the SIMT emulator's semantics (tests/test_simt_kernels.py): what a shuffle,
// a vote and a barrier return, and that the errors the GPU leaves undefined are reported. A check that
// passes returns 0; a wrong value 2 (err says which); an emulator error 1 (err holds it).
#include <cmath>
#include <cstdio>
#include <string>

#include "simt.h"

namespace {

constexpr int kThreads = 256;

struct Check {
  std::string failure;
  void expect(bool ok, const std::string& what) {
    if (!ok && failure.empty()) failure = what;
  }
};

void run(const std::string& name, Check& check) {
  std::vector<int> out(kThreads, -1);
  if (name == "shfl_xor") {
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      const int t = threadIdx.x;
      out[t] = static_cast<int>(__shfl_xor_sync(0xffffffffu, static_cast<float>(t), 5));
    });
    for (int t = 0; t < kThreads; ++t) check.expect(out[t] == (t ^ 5), "xor 5: lane " + std::to_string(t));
  } else if (name == "shfl_down") {
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      const int t = threadIdx.x;
      out[t] = static_cast<int>(__shfl_down_sync(0xffffffffu, static_cast<float>(t), 3));
    });
    for (int t = 0; t < kThreads; ++t)
      check.expect(out[t] == (t % 32 < 29 ? t + 3 : t), "down 3: lane " + std::to_string(t));
  } else if (name == "votes") {
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      const int t = threadIdx.x;
      const bool any = __any_sync(0xffffffffu, t == 70);  // only warp 2 has it
      const unsigned ballot = __ballot_sync(0xffffffffu, t % 4 == 1);
      out[t] = (any ? 1 : 0) + (ballot == 0x22222222u ? 2 : 0);
    });
    for (int t = 0; t < kThreads; ++t) check.expect(out[t] == ((t / 32 == 2 ? 1 : 0) | 2), "vote " + std::to_string(t));
  } else if (name == "barrier_count") {
    // shared memory written before a barrier is seen after it by every thread; blocks in order
    std::vector<int> blocks;
    simt::launch({3, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      __shared__ int cell[kThreads];
      const int t = threadIdx.x;
      cell[t] = t * 2;
      const int count = __syncthreads_count(t % 3 == 0);
      out[t] = cell[(t + 17) % kThreads] == ((t + 17) % kThreads) * 2 ? count : -2;
      if (t == 0) blocks.push_back(static_cast<int>(blockIdx.x));
    });
    for (int t = 0; t < kThreads; ++t) check.expect(out[t] == 86, "count " + std::to_string(out[t]));
    check.expect(blocks == std::vector<int>{0, 1, 2}, "block order");
  } else if (name == "shared_memory_starts_poisoned") {
    // each block writes its shared memory after reading it: it reads NaN / -1 (0xff bytes), not the
    // previous block's values
    simt::launch({2, 1, 1}, {kThreads, 1, 1}, 4 * sizeof(float), [&] {
      __shared__ float cell[kThreads];
      __shared__ int count;
      LE3D_DYNAMIC_SHARED(float, ring);
      const int t = threadIdx.x;
      const bool poisoned = std::isnan(cell[t]) && count == -1 && std::isnan(ring[t % 4]);
      __syncthreads();
      cell[t] = 1.0f;
      ring[t % 4] = 1.0f;
      if (t == 0) count = 0;
      if (blockIdx.x == 1) out[t] = poisoned;
    });
    for (int t = 0; t < kThreads; ++t) check.expect(out[t] == 1, "not poisoned: thread " + std::to_string(t));
  } else if (name == "exited_threads_leave_the_barrier") {
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      const int t = threadIdx.x;
      if (t >= 96) return;
      out[t] = __syncthreads_count(1);
    });
    for (int t = 0; t < 96; ++t) check.expect(out[t] == 96, "count after exits " + std::to_string(out[t]));
  } else if (name == "dynamic_shared") {
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 2 * kThreads * sizeof(float), [&] {
      LE3D_DYNAMIC_SHARED(float, ring);
      const int t = threadIdx.x;
      ring[2 * t + 1] = static_cast<float>(t);
      __syncthreads();
      out[t] = static_cast<int>(ring[2 * ((t + 1) % kThreads) + 1]);
    });
    for (int t = 0; t < kThreads; ++t) check.expect(out[t] == (t + 1) % kThreads, "ring " + std::to_string(t));
  } else if (name == "bug_lane_exits_before_shuffle") {  // must throw: a deadlock
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      if (threadIdx.x == 40) return;
      out[threadIdx.x] = static_cast<int>(__shfl_xor_sync(0xffffffffu, 1.0f, 1));
    });
  } else if (name == "bug_barrier_in_divergent_branch") {  // must throw: half a warp at a barrier, half in a vote
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      if (threadIdx.x % 32 < 16) __syncthreads();
      out[threadIdx.x] = __any_sync(0xffffffffu, 1);
    });
  } else if (name == "bug_divergent_collectives") {  // must throw: lanes in two different collectives
    simt::launch({1, 1, 1}, {kThreads, 1, 1}, 0, [&] {
      if (threadIdx.x % 2) out[threadIdx.x] = __any_sync(0xffffffffu, 1);
      else out[threadIdx.x] = static_cast<int>(__shfl_xor_sync(0xffffffffu, 1.0f, 1));
    });
  } else if (name == "bug_partial_mask") {  // must throw: not emulated
    simt::launch({1, 1, 1}, {32, 1, 1}, 0, [&] { out[threadIdx.x] = __any_sync(0xffffu, 1); });
  } else {
    check.expect(false, "no such check: " + name);
  }
}

}  // namespace

SIMT_API int simt_selftest(const char* name, char* err, int err_len) {
  Check check;
  try {
    run(name, check);
  } catch (const std::exception& e) {
    std::snprintf(err, static_cast<size_t>(err_len), "%s", e.what());
    return 1;
  }
  std::snprintf(err, static_cast<size_t>(err_len), "%s", check.failure.c_str());
  return check.failure.empty() ? 0 : 2;
}
