// A SIMT emulator for CUDA kernels on the host, for tests (tests/simt/README.md): each thread of a block is
// a fiber (its own stack, switched cooperatively in one OS thread), a block's barriers and a warp's
// shuffles and votes wait until every thread concerned has arrived, as on the GPU. Blocks run one after
// another, so a kernel's __shared__ variables become function statics, poisoned before each block. What
// it checks: the kernels' indexing, barriers, warp collectives, atomics and shared-memory reads, with the
// host's exact maths; not timing, not races between blocks or between two sync points.
//
// Include it before the kernels' source. Errors the GPU would leave undefined (a barrier or warp
// collective that not every thread concerned reaches, lanes in different collectives, a partial warp
// mask) throw simt::Error.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

// Fibers switch by a few lines of x86-64 assembly (tens of nanoseconds); elsewhere, or with SIMT_UCONTEXT
// (a test builds it too), by ucontext's swapcontext (a system call per switch).
#if defined(__x86_64__) && !defined(SIMT_UCONTEXT)
#define SIMT_ASM_SWITCH 1
#else
#define SIMT_ASM_SWITCH 0
#include <ucontext.h>
#endif

// --- the CUDA dialect, as host C++ ---
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// Blocks run one at a time, so a static is the block's shared memory. All of them go to one section, which
// launch() fills with 0xff bytes (float NaN, int -1) before each block: on the GPU shared memory starts
// undefined, and a read of a slot no thread wrote then shows as NaN instead of the last block's value.
#define __shared__ static __attribute__((section("simt_shared")))
#define LE3D_DYNAMIC_SHARED(type, name) type* name = ::simt::dynamic_shared<type>()

struct alignas(16) float4 {
  float x, y, z, w;
};

// The C interface of a library built on this (ctypes calls it). Everything else stays hidden
// (-fvisibility=hidden): two builds loaded in one process (the assembly and the ucontext switch) must
// not share one Block through an exported inline function's static.
#define SIMT_API extern "C" __attribute__((visibility("default")))

namespace simt {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

constexpr int kWarp = 32;

// What a fiber waits for.
enum class Wait { kNone, kBarrier, kWarp, kDone };
enum class Op { kNone, kShflXor, kShflDown, kAny, kBallot };

struct Fiber {
  void* sp = nullptr;  // saved stack pointer (x86-64) while switched out
#if !SIMT_ASM_SWITCH
  ucontext_t context;
#endif
  std::vector<unsigned char> stack;
  Wait wait = Wait::kNone;
  uint64_t generation = 0;  // of the barrier or warp collective it waits for
};

struct WarpState {
  int arrived = 0;
  uint64_t generation = 0;
  Op op = Op::kNone;
  uint32_t value[kWarp] = {};
  int arg[kWarp] = {};
  uint32_t result[kWarp] = {};
};

struct Block {
  int threads = 0;
  Dim3 block_idx, block_dim;
  std::vector<Fiber> fibers;
  std::vector<WarpState> warps;
  int barrier_arrived = 0, barrier_sum = 0, barrier_result = 0, live = 0;
  uint64_t barrier_generation = 0;
  std::vector<unsigned char> dynamic_shared;
  const std::function<void()>* body = nullptr;
  int current = -1;  // running fiber, -1: the scheduler
  void* scheduler_sp = nullptr;
#if !SIMT_ASM_SWITCH
  ucontext_t scheduler_context;
#endif
  std::string error;  // first exception a thread threw
};

inline Block& block() {
  static Block b;
  return b;
}

template <typename T>
T* dynamic_shared() {
  return reinterpret_cast<T*>(block().dynamic_shared.data());
}

inline Dim3 thread_idx() { return Dim3{static_cast<unsigned>(block().current), 0, 0}; }

// --- fiber switching ---
#if SIMT_ASM_SWITCH
// simt_switch(save, load): pushes the callee-saved registers and the SSE/x87 control words, stores the
// stack pointer in *save, loads `load` and pops the same from there (weak: each translation unit that
// includes this emits it).
extern "C" void simt_switch(void** save, void* load);
asm(R"(
  .text
  .weak simt_switch
  .type simt_switch, @function
simt_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size simt_switch, .-simt_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif

void fiber_main();

#if SIMT_ASM_SWITCH
extern "C" inline void simt_fiber_entry() {
  fiber_main();
  __builtin_trap();  // fiber_main never returns
}
#else
inline void simt_fiber_entry_uc() { fiber_main(); }
#endif

inline void to_scheduler() {
  Block& b = block();
  Fiber& f = b.fibers[b.current];
#if SIMT_ASM_SWITCH
  simt_switch(&f.sp, b.scheduler_sp);
#else
  swapcontext(&f.context, &b.scheduler_context);
#endif
}

inline void resume(int t) {
  Block& b = block();
  b.current = t;
#if SIMT_ASM_SWITCH
  simt_switch(&b.scheduler_sp, b.fibers[t].sp);
#else
  swapcontext(&b.scheduler_context, &b.fibers[t].context);
#endif
  b.current = -1;
}

constexpr size_t kStackBytes = 256 * 1024;

inline void start_fiber(int t) {
  Block& b = block();
  Fiber& f = b.fibers[t];
  if (f.stack.size() != kStackBytes) f.stack.assign(kStackBytes, 0);
  f.wait = Wait::kNone;
  f.generation = 0;
#if SIMT_ASM_SWITCH
  // The frame simt_switch pops: control words, r15..r12, rbx, rbp, then the return address (the entry);
  // above it a dummy return address, so that the entry starts with rsp = 8 mod 16, as after a call.
  uintptr_t top = reinterpret_cast<uintptr_t>(f.stack.data() + f.stack.size()) & ~uintptr_t(15);
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = 0;                                                  // the entry's own "return address"
  *--sp = reinterpret_cast<uint64_t>(&simt_fiber_entry);      // ret -> entry
  for (int r = 0; r < 6; ++r) *--sp = 0;                      // rbp, rbx, r12..r15
  uint32_t words[2];
  asm volatile("stmxcsr %0" : "=m"(words[0]));
  asm volatile("fnstcw %0" : "=m"(words[1]));
  uint64_t control;
  std::memcpy(&control, words, 8);
  *--sp = control;
  f.sp = sp;
#else
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack.data();
  f.context.uc_stack.ss_size = f.stack.size();
  f.context.uc_link = nullptr;
  makecontext(&f.context, simt_fiber_entry_uc, 0);
#endif
}

inline void check_mask(unsigned mask) {
  if (mask != 0xffffffffu) throw Error("simt: only full-warp masks are emulated");
}

// A thread's arrival at a warp collective; returns its result once all 32 lanes have arrived.
inline uint32_t warp_collective(Op op, uint32_t value, int arg) {
  Block& b = block();
  const int t = b.current;
  const int lane = t % kWarp;
  WarpState& w = b.warps[t / kWarp];
  if (w.arrived == 0) {
    w.op = op;
  } else if (w.op != op) {
    throw Error("simt: the lanes of a warp are in different collectives (divergent __shfl/__any)");
  }
  w.value[lane] = value;
  w.arg[lane] = arg;
  const uint64_t generation = w.generation;
  if (++w.arrived == kWarp) {  // the last lane computes every lane's result
    for (int l = 0; l < kWarp; ++l) {
      switch (op) {
        case Op::kShflXor: w.result[l] = w.value[(l ^ w.arg[l]) & (kWarp - 1)]; break;
        case Op::kShflDown: w.result[l] = l + w.arg[l] < kWarp ? w.value[l + w.arg[l]] : w.value[l]; break;
        case Op::kAny: {
          uint32_t any = 0;
          for (int m = 0; m < kWarp; ++m) any |= w.value[m] != 0;
          w.result[l] = any;
          break;
        }
        case Op::kBallot: {
          uint32_t ballot = 0;
          for (int m = 0; m < kWarp; ++m) ballot |= (w.value[m] != 0 ? 1u : 0u) << m;
          w.result[l] = ballot;
          break;
        }
        default: throw Error("simt: unknown warp op");
      }
    }
    w.arrived = 0;
    w.generation += 1;
    return w.result[lane];
  }
  Fiber& f = b.fibers[t];
  f.wait = Wait::kWarp;
  f.generation = generation;
  to_scheduler();
  return w.result[lane];  // valid until the warp's next collective completes, which needs this lane
}

// Opens the block's barrier: every live thread has arrived (or the last one it waited for exited).
inline void release_barrier(Block& b) {
  b.barrier_result = b.barrier_sum;
  b.barrier_sum = 0;
  b.barrier_arrived = 0;
  b.barrier_generation += 1;
}

// A thread's arrival at the block's barrier; returns the number of threads whose predicate was true.
inline int barrier(int predicate) {
  Block& b = block();
  const uint64_t generation = b.barrier_generation;
  b.barrier_sum += predicate != 0;
  if (++b.barrier_arrived == b.live) {
    release_barrier(b);
    return b.barrier_result;
  }
  Fiber& f = b.fibers[b.current];
  f.wait = Wait::kBarrier;
  f.generation = generation;
  to_scheduler();
  return b.barrier_result;
}

inline void fiber_main() {
  Block& b = block();
  try {
    (*b.body)();
  } catch (const std::exception& e) {
    if (b.error.empty()) b.error = e.what();
  }
  Fiber& f = b.fibers[b.current];
  f.wait = Wait::kDone;
  b.live -= 1;
  // exited threads leave the barrier (as on sm_70+); a warp collective still waiting for this lane never
  // completes, which the scheduler reports
  if (b.barrier_arrived > 0 && b.barrier_arrived == b.live) release_barrier(b);
  to_scheduler();
  __builtin_trap();  // a finished fiber is never resumed
}

inline bool runnable(const Block& b, const Fiber& f, int t) {
  switch (f.wait) {
    case Wait::kNone: return true;
    case Wait::kBarrier: return b.barrier_generation != f.generation;
    case Wait::kWarp: return b.warps[t / kWarp].generation != f.generation;
    default: return false;
  }
}

// The __shared__ statics' section (the linker names its bounds; weak: a library without any has none).
extern "C" unsigned char __start_simt_shared[] __attribute__((weak, visibility("hidden")));
extern "C" unsigned char __stop_simt_shared[] __attribute__((weak, visibility("hidden")));

inline void poison_shared_memory() {
  Block& b = block();
  std::fill(b.dynamic_shared.begin(), b.dynamic_shared.end(), 0xff);
  if (__start_simt_shared && __stop_simt_shared) std::fill(__start_simt_shared, __stop_simt_shared, 0xff);
}

// Runs body() as every thread of every block of the grid (blocks in order, x fastest), with
// `dynamic_shared_bytes` of dynamic shared memory.
inline void launch(Dim3 grid, Dim3 block_dim, size_t dynamic_shared_bytes, const std::function<void()>& body) {
  Block& b = block();
  if (b.current != -1) throw Error("simt: a launch from inside a kernel");
  const int threads = static_cast<int>(block_dim.x);
  if (block_dim.y > 1 || block_dim.z > 1 || threads <= 0 || threads % kWarp)
    throw Error("simt: 1D blocks of whole warps only");
  b.threads = threads;
  b.block_dim = block_dim;
  b.fibers.resize(threads);
  b.warps.assign((threads + kWarp - 1) / kWarp, WarpState{});
  b.dynamic_shared.assign(dynamic_shared_bytes + 16, 0);
  b.body = &body;
  for (unsigned y = 0; y < std::max(1u, grid.y); ++y)
    for (unsigned x = 0; x < grid.x; ++x) {
      b.block_idx = Dim3{x, y, 0};
      poison_shared_memory();
      b.live = threads;
      b.barrier_arrived = b.barrier_sum = 0;
      b.error.clear();
      for (int t = 0; t < threads; ++t) start_fiber(t);
      for (auto& w : b.warps) w.arrived = 0;
      int done = 0;
      while (done < threads) {
        bool progress = false;
        for (int t = 0; t < threads; ++t) {
          Fiber& f = b.fibers[t];
          while (f.wait != Wait::kDone && runnable(b, f, t)) {
            f.wait = Wait::kNone;
            resume(t);
            progress = true;
            if (f.wait == Wait::kDone) ++done;
          }
        }
        if (!b.error.empty()) throw Error("simt: a thread threw: " + b.error);
        if (!progress && done < threads) {
          int at_barrier = 0, in_warp = 0;
          for (const Fiber& f : b.fibers) {
            at_barrier += f.wait == Wait::kBarrier;
            in_warp += f.wait == Wait::kWarp;
          }
          throw Error("simt: deadlock in block " + std::to_string(x) + ": " + std::to_string(at_barrier) +
                      " threads at a barrier, " + std::to_string(in_warp) + " in warp collectives, " +
                      std::to_string(done) + " exited (a barrier or collective not every thread reaches)");
        }
      }
    }
}

}  // namespace simt

// --- built-in variables and intrinsics ---
#define threadIdx (::simt::thread_idx())
#define blockIdx (::simt::block().block_idx)
#define blockDim (::simt::block().block_dim)

inline void __syncthreads() { simt::barrier(0); }
inline int __syncthreads_count(int predicate) { return simt::barrier(predicate); }

inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask) {
  simt::check_mask(mask);
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = simt::warp_collective(simt::Op::kShflXor, bits, lane_mask);
  std::memcpy(&v, &bits, 4);
  return v;
}
inline float __shfl_down_sync(unsigned mask, float v, unsigned delta) {
  simt::check_mask(mask);
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  bits = simt::warp_collective(simt::Op::kShflDown, bits, static_cast<int>(delta));
  std::memcpy(&v, &bits, 4);
  return v;
}
inline bool __any_sync(unsigned mask, int predicate) {
  simt::check_mask(mask);
  return simt::warp_collective(simt::Op::kAny, predicate != 0, 0) != 0;
}
inline unsigned __ballot_sync(unsigned mask, int predicate) {
  simt::check_mask(mask);
  return simt::warp_collective(simt::Op::kBallot, predicate != 0, 0);
}

// One OS thread runs every fiber, so the atomics are plain read-modify-writes.
inline float atomicAdd(float* at, float v) {
  const float old = *at;
  *at = old + v;
  return old;
}
inline int atomicMax(int* at, int v) {
  const int old = *at;
  *at = std::max(old, v);
  return old;
}
inline unsigned __float_as_uint(float v) {
  unsigned u;
  std::memcpy(&u, &v, 4);
  return u;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a < b ? b : a; }
