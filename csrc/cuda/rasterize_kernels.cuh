// The CUDA rasterizer's kernels and their device helpers: binning (tile counts and keys), the per-tile
// forward and backward kernels, and the dispatch over their template parameters. Device code only (no
// torch, no launches): rasterize_cuda.cu launches them, and tests/simt runs the same source on the host
// (a thread per fiber, warps and barriers emulated) so that their plumbing is tested without a GPU.
#pragma once
#include <cstdint>
#include <type_traits>

#include "le3d/common.h"
#include "le3d/composite.h"
#include "le3d/footprint_convex.h"
#include "le3d/footprint_gaussian.h"
#include "le3d/tiles.h"

// A kernel's dynamically sized shared memory (the launch's third parameter), as an array `name` of `type`.
// The host emulator (tests/simt) defines its own.
#ifndef LE3D_DYNAMIC_SHARED
#define LE3D_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

namespace le3d {
namespace {

constexpr int kBlock = kTileSize * kTileSize;
constexpr unsigned kFullWarp = 0xffffffffu;
static_assert(kBlock % 32 == 0, "blocks are whole warps (the backward's warp sums need full warps)");

// Sum of v over the 32 lanes of a warp, valid in lane 0.
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(kFullWarp, v, offset);
  return v;
}

__host__ __device__ constexpr int log2_of(int n) { return n <= 1 ? 0 : 1 + log2_of(n / 2); }
__host__ __device__ constexpr int next_pow2(int n) { return n <= 1 ? 1 : 2 * next_pow2((n + 1) / 2); }

// Warp reduce-scatter of N values per lane (N a power of two <= 32): returns, in lane l, the sum
// over the warp's 32 lanes of value number scatter_index<N>(l). Recursive halving: at each step a
// lane keeps half of its values, sends the other half to its partner and adds the partner's copy
// of the half it keeps, so the warp sums N values with N - 1 + 5 - log2 N shuffles instead of the
// 5 N of one warp_sum per value (11 gradient values of a Gaussian: 18 instead of 55 shuffles), and
// the values' atomics go out as one instruction from several lanes instead of N from lane 0.
template <int N, int kOffset = 16>
__device__ __forceinline__ float warp_reduce_scatter(float* v, int lane) {
  static_assert(N >= 1 && N <= 32 && (N & (N - 1)) == 0, "N: a power of two up to 32");
  if constexpr (N > 1) {
    constexpr int kHalf = N / 2;
    const bool upper = lane & kOffset;  // this lane keeps the upper half, its partner the lower
#pragma unroll
    for (int i = 0; i < kHalf; ++i) {
      const float send = upper ? v[i] : v[i + kHalf];
      const float keep = upper ? v[i + kHalf] : v[i];
      v[i] = keep + __shfl_xor_sync(kFullWarp, send, kOffset);
    }
    return warp_reduce_scatter<kHalf, kOffset / 2>(v, lane);
  } else {
#pragma unroll
    for (int offset = kOffset; offset > 0; offset >>= 1) v[0] += __shfl_xor_sync(kFullWarp, v[0], offset);
    return v[0];
  }
}

// Which value lane l holds after warp_reduce_scatter<N>, and whether it is the one lane (of the
// 32 / N that hold it) that writes it out.
template <int N>
__device__ __forceinline__ int scatter_index(int lane) { return lane >> (5 - log2_of(N)); }
template <int N>
__device__ __forceinline__ bool scatter_writer(int lane) { return (lane & (32 / N - 1)) == 0; }

// Where the backward can carry its extra sums (depth, coordinate, colour: kExtra values) in the
// reduce-scatter of a primitive's kGrad gradient slots instead of one of their own: a convex of at most
// six edges (K = 6 points make at most six) leaves slot 0 free (its edge count has no gradient) and
// the slots from kHeader + 18 = 23 on, so extra value 0 goes to slot 0 and value x > 0 to slot
// 22 + x: 31 shuffles per convex and warp instead of 40. Such a convex's gradient is then taken over six
// edges only, on a path of its own (no selects between the two layouts, no products for edges 6 and 7:
// 16 of 205 instructions fewer per pair after the warp vote, sm_90 SASS). 0: never (a Gaussian's 6
// params leave 2 slots).
template <typename Footprint, int kGrad, int kExtra>
__host__ __device__ constexpr int merged_extras_at() {
  if constexpr (std::is_same_v<Footprint, ConvexFootprint>) {
    constexpr int at = ConvexFootprint::kHeader + 3 * 6;
    return at + kExtra - 1 <= kGrad ? at : 0;
  } else {
    return 0;
  }
}

// Blocks per SM each kernel is compiled for (__launch_bounds__), up to 4 channels (with 16 or 64 the
// register counts are far higher anyway); 0: no bound.
// - the convex backward, its params in registers, within 80 registers for 3 blocks of 256 threads
//   (unbounded, ptxas gave it 97: 2 blocks, 8% slower on the H200);
// - the Gaussian kernels at the counts they had before the pixel form's wider rows, which ptxas spent on
//   loads in flight in the batch load, outside the per-pair loop: forward 32 / 40 registers (8 / 6
//   blocks), backward 40 / 48 (6 / 5 blocks), without / with the distortion sums.
template <typename Footprint, int CMAX, bool kDistortion>
__host__ __device__ constexpr int forward_min_blocks() {
  if constexpr (std::is_same_v<Footprint, GaussianFootprint>) return CMAX <= 4 ? (kDistortion ? 6 : 8) : 0;
  return 0;
}
template <typename Footprint, int CMAX, bool kDistortion>
__host__ __device__ constexpr int backward_min_blocks() {
  if (CMAX > 4) return 0;
  if constexpr (std::is_same_v<Footprint, GaussianFootprint>) return kDistortion ? 5 : 6;
  return 3;
}

// One batch of a tile's primitives in shared memory (the forward and backward kernels load the
// same fields; slot t is filled by thread t). With at most 4 channels the features come along, so
// the per-pixel loops read them from shared memory rather than each thread from global memory.
template <typename Footprint, int CMAX, bool kParamsInRegisters_ = false>
struct SharedBatch {
  static constexpr int P = Footprint::kParams;
  static constexpr bool kFeatures = CMAX <= 4;
  // kParamsInRegisters: the params of a pair come into registers with 16-byte loads, rows padded to
  // whole float4s (8 broadcast loads per convex-pixel pair instead of one 4-byte load per use: the
  // convex forward kernel, H200, 200k convexes at 720p: 1.46 -> 1.36 ms; the convex backward, held to
  // 80 registers by backward_min_blocks: 4.01 -> 3.77 ms). Otherwise they are read in shared memory
  // where used: the Gaussian kernels (in registers their params cost 8 registers, a block per SM).
  static constexpr bool kParamsInRegisters = kParamsInRegisters_;
  // A row holds a primitive's params in the footprint's pixel form (Footprint::pixel_form_word: made
  // once per batch slot, read by every pixel of the tile).
  static constexpr int kPixel = Footprint::kPixelParams;
  static constexpr int kRow = kParamsInRegisters ? (kPixel + 3) / 4 * 4 : kPixel;
  alignas(16) float params[kBlock * kRow];
  float depth[kBlock];
  float coord[kBlock];
  float threshold[kBlock];  // Footprint::pixel_skip_limit: the per-pixel loops' skip limit
  float feature[kFeatures ? kBlock * CMAX : 1];
  int id[kBlock];

  // Slot `slot` of the batch: primitive `primitive`, loaded by the thread of that slot (its params
  // too unless kParamsInRegisters: load_wide_params then makes them).
  // kZeroPad: features padded with zeros to CMAX (the forward and the convex backward; in the Gaussian
  // backward the padding's code cost the kernel with distortion 10 registers, 47 -> 57, so it keeps its
  // loops over C).
  template <bool kZeroPad = false>
  __device__ void load(int slot, int primitive, const float* __restrict__ all_params,
                       const float* __restrict__ depths, const float* __restrict__ coords,
                       const float* __restrict__ features, int C) {
    id[slot] = primitive;
    depth[slot] = depths[primitive];
    coord[slot] = coords ? coords[primitive] : 0.0f;
    if constexpr (!kParamsInRegisters) {
      const float* raw = all_params + static_cast<int64_t>(primitive) * P;
#pragma unroll  // constant q: pixel_form_word's branches fold away
      for (int q = 0; q < kPixel; ++q) params[slot * kRow + q] = Footprint::pixel_form_word(raw, q);
      threshold[slot] = Footprint::pixel_skip_limit(raw);
    }
    if (kFeatures) {
      if (kZeroPad) {  // the forward's per-pair loop then runs over all CMAX channels, without a branch each
#pragma unroll
        for (int c = 0; c < CMAX; ++c)
          feature[slot * CMAX + c] = c < C ? features[static_cast<int64_t>(primitive) * C + c] : 0.0f;
      } else {
        for (int c = 0; c < C; ++c) feature[slot * CMAX + c] = features[static_cast<int64_t>(primitive) * C + c];
      }
    }
  }

  // The pixel-form rows of slots [0, n) (their ids loaded, a barrier since), made by the whole block:
  // word k of the batch by thread k mod kBlock. One thread per row would make the 32 lanes of a warp
  // store to one shared-memory bank (rows of 32 floats) and read 32 scattered global words per load
  // instead of a few rows. Every thread calls it (it holds a barrier); ends with a barrier.
  __device__ void load_wide_params(int t, int n, const float* __restrict__ all_params) {
    static_assert(kRow == kPixel, "every word of a row is a pixel-form word");
#pragma unroll 1  // unrolled, its loads in flight cost registers the pixel loop needs
    for (int k = t; k < n * kRow; k += kBlock) {
      const int slot = k / kRow, q = k - slot * kRow;
      params[k] = Footprint::pixel_form_word(all_params + static_cast<int64_t>(id[slot]) * P, q);
    }
    if (t < n) threshold[t] = Footprint::pixel_skip_limit(all_params + static_cast<int64_t>(id[t]) * P);
    __syncthreads();
  }

  // Slot b's params: copied into regs (registers, once the caller's loops are unrolled) when
  // kParamsInRegisters, else read in shared memory.
  __device__ __forceinline__ const float* params_of(int b, float (&regs)[kRow]) const {
    if constexpr (!kParamsInRegisters) {
      return params + b * kRow;
    } else {
      const float4* row = reinterpret_cast<const float4*>(params + b * kRow);
#pragma unroll
      for (int q = 0; q < kRow / 4; ++q) {
        const float4 v = row[q];
        regs[4 * q] = v.x;
        regs[4 * q + 1] = v.y;
        regs[4 * q + 2] = v.z;
        regs[4 * q + 3] = v.w;
      }
      return regs;
    }
  }

  // The features of slot b: from shared memory when loaded, else from global memory.
  __device__ const float* features_of(int b, const float* __restrict__ features, int C) const {
    return kFeatures ? feature + b * CMAX : features + static_cast<int64_t>(id[b]) * C;
  }
};

// Calls visit(tile) for each tile of primitive i's screen box that its footprint reaches
// (Footprint::reaches_tile); the count and the key kernels walk the same tiles in the same order.
template <typename Footprint, typename Visit>
__device__ void for_each_reached_tile(int i, const float* __restrict__ params, const float* __restrict__ bounds,
                                      int width, int height, Visit&& visit) {
  const TileRect r = tile_rect(bounds + 4 * i, width, height);
  if (r.empty()) return;
  // The params in registers, read once: the tile tests below read them for every tile of the box
  // (a convex's 29 floats, one thread per primitive: each read was a strided global load).
  const float* row = params + static_cast<int64_t>(i) * Footprint::kParams;
  float p[Footprint::kParams];
  LE3D_UNROLL
  for (int k = 0; k < Footprint::kParams; ++k) p[k] = row[k];
  const float threshold = Footprint::skip_threshold(p);
  const int tiles_x = (width + kTileSize - 1) / kTileSize;
  float box[4];
  for (int ty = r.y0; ty <= r.y1; ++ty)
    for (int tx = r.x0; tx <= r.x1; ++tx) {
      tile_centre_box(tx, ty, width, height, box);
      if (Footprint::reaches_tile(p, threshold, box)) visit(ty * tiles_x + tx);
    }
}

template <typename Footprint>
__global__ void count_tiles_kernel(int N, const float* __restrict__ params, const float* __restrict__ bounds,
                                   int width, int height, int* __restrict__ counts) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  int count = 0;
  for_each_reached_tile<Footprint>(i, params, bounds, width, height, [&](int) { ++count; });
  counts[i] = count;
}

template <typename Footprint>
__global__ void fill_keys_kernel(int N, const float* __restrict__ params, const float* __restrict__ bounds,
                                 const float* __restrict__ depths, int width, int height,
                                 const int64_t* __restrict__ ends, const int* __restrict__ counts,
                                 int64_t* __restrict__ keys, int* __restrict__ values) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N) return;
  // Culled primitives reach no tile, so depth > near > 0 here and its float bits sort like the value.
  const uint32_t depth_bits = __float_as_uint(depths[i]);
  int64_t out = ends[i] - counts[i];  // the inclusive scan's end minus the count: this one's first entry
  for_each_reached_tile<Footprint>(i, params, bounds, width, height, [&](int tile) {
    keys[out] = (static_cast<int64_t>(tile) << 32) | depth_bits;
    values[out] = i;
    ++out;
  });
}

// offsets[t] = index of the first sorted entry of tile t (offsets[tiles] = M): each entry writes the
// offsets of the tiles between its predecessor's tile and its own.
__global__ void tile_offsets_kernel(int M, const uint64_t* __restrict__ sorted_keys, int tiles,
                                    int* __restrict__ offsets) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= M) return;
  const int tile = static_cast<int>(sorted_keys[i] >> 32);
  const int prev = i == 0 ? -1 : static_cast<int>(sorted_keys[i - 1] >> 32);
  for (int t = prev + 1; t <= tile; ++t) offsets[t] = i;
  if (i == M - 1)
    for (int t = tile + 1; t <= tiles; ++t) offsets[t] = M;
}

// The pixel a thread of the forward and backward kernels holds: block blockIdx.x is tile `tile` (row-major
// tiles of kTileSize x kTileSize pixels), thread t is pixel (i, j) of it, row-major; in an edge tile some
// threads are past the image (inside false).
struct TilePixel {
  int tile, t, i, j;
  bool inside;
  float px, py;  // the pixel's centre

  __device__ TilePixel(int width, int height) : tile(blockIdx.x), t(threadIdx.x) {
    const int tiles_x = (width + kTileSize - 1) / kTileSize;
    j = (tile % tiles_x) * kTileSize + t % kTileSize;
    i = (tile / tiles_x) * kTileSize + t / kTileSize;
    inside = i < height && j < width;
    px = j + 0.5f;
    py = i + 0.5f;
  }
};

// kDistortion = false: no distortion output, the running sums it needs are skipped (the backward then
// runs with kDistortion = false too: dispatch_kernels picks both alike). layout: aux's slots for the
// render, from the host (PixelOutputs): with C > 4 a kernel keeping the distortion's sums serves renders
// without a distortion output too, so the template flag does not say which outputs exist.
template <typename Footprint, int CMAX, bool kDistortion>
__global__ void __launch_bounds__(kBlock, forward_min_blocks<Footprint, CMAX, kDistortion>()) forward_kernel(
    const float* __restrict__ params, const float* __restrict__ features,
    const float* __restrict__ depths, const float* __restrict__ coords,
    const float* __restrict__ background, int C, int width, int height, int nearfar_k, const AuxLayout layout,
    const int* __restrict__ offsets, const int* __restrict__ ids, float* __restrict__ image,
    float* __restrict__ alpha, float* __restrict__ depth, float* __restrict__ distortion,
    float* __restrict__ near, float* __restrict__ far, float* __restrict__ aux) {
  using Batch = SharedBatch<Footprint, CMAX, (Footprint::kParams > 8)>;
  __shared__ Batch sh;
  LE3D_DYNAMIC_SHARED(float, ring_memory);  // 2 * nearfar_k * kBlock floats (see RingBuffer)
  const TilePixel pixel(width, height);
  const int tile = pixel.tile, t = pixel.t, i = pixel.i, j = pixel.j;
  const bool inside = pixel.inside;
  const float px = pixel.px, py = pixel.py;
  const int begin = offsets[tile], end = offsets[tile + 1];
  PixelForward pf(RingBuffer{ring_memory + t, ring_memory + nearfar_k * kBlock + t, kBlock});
  float colour[CMAX];
#pragma unroll
  for (int c = 0; c < CMAX; ++c) colour[c] = 0.0f;
  bool done = !inside;
  for (int start = begin; start < end; start += kBlock) {
    if (__syncthreads_count(done) == kBlock) break;
    const int idx = start + t;
    if (idx < end) {
      sh.template load<true>(t, ids[idx], params, depths, coords, features, C);
    }
    __syncthreads();
    const int n_batch = min(kBlock, end - start);
    if constexpr (Batch::kParamsInRegisters) sh.load_wide_params(t, n_batch, params);
    for (int b = 0; b < n_batch && !done; ++b) {
      float regs[Batch::kRow];
      const float* p = sh.params_of(b, regs);
      const float raw = Footprint::raw_alpha_fast(p, sh.threshold[b], px, py);
      float w;
      const int step = pf.template add<kDistortion>(raw, sh.depth[b], sh.coord[b], nearfar_k, start - begin + b, &w);
      if (step == PixelForward::kDone) {
        done = true;
      } else if (step == PixelForward::kAdded) {
        const float* f = sh.features_of(b, features, C);
        if constexpr (Batch::kFeatures) {  // zero-padded: every slot, no branch per channel
#pragma unroll
          for (int c = 0; c < CMAX; ++c) colour[c] += w * f[c];
        } else {
          for (int c = 0; c < C && c < CMAX; ++c) colour[c] += w * f[c];
        }
      }
    }
  }
  if (!inside) return;
  const int64_t pix = static_cast<int64_t>(i) * width + j;
  for (int c = 0; c < C && c < CMAX; ++c) image[pix * C + c] = colour[c] + pf.T * background[c];
  pf.write_outputs(pix, alpha, depth, distortion, near, far, aux, layout, nearfar_k);
}

template <typename Footprint, int CMAX, bool kDistortion>
__global__ void __launch_bounds__(kBlock, backward_min_blocks<Footprint, CMAX, kDistortion>()) backward_kernel(
    const float* __restrict__ params, const float* __restrict__ features,
    const float* __restrict__ depths, const float* __restrict__ coords,
    const float* __restrict__ background, int C, int width, int height, int nearfar_k, const AuxLayout layout,
    const float* __restrict__ near, const float* __restrict__ far, const float* __restrict__ aux,
    const int* __restrict__ offsets, const int* __restrict__ ids, const UpstreamGrads up,
    float* __restrict__ g_params, float* __restrict__ g_features,
    float* __restrict__ g_depths, float* __restrict__ g_coords, float* __restrict__ g_background) {
  constexpr int P = Footprint::kParams;
  using Batch = SharedBatch<Footprint, CMAX, (Footprint::kParams > 8)>;
  // features zero-padded to CMAX in shared memory for a convex (its colour sum then has no branch per
  // channel); not for a Gaussian, where the padding's code cost the kernel 10 registers (47 -> 57)
  constexpr bool kPadFeatures = Batch::kFeatures && !std::is_same_v<Footprint, GaussianFootprint>;
  __shared__ Batch sh;
  __shared__ int sh_max_last;
  const TilePixel pixel(width, height);
  const int tile = pixel.tile, t = pixel.t, i = pixel.i, j = pixel.j;
  const bool inside = pixel.inside;
  const float px = pixel.px, py = pixel.py;
  const int begin = offsets[tile];
  const int64_t pix = inside ? static_cast<int64_t>(i) * width + j : 0;
  const float* a = aux + pix * layout.dim;
  // d background = sum over pixels of T_final * d image: a warp sum and an atomic per channel, first
  // (so that nothing of it stays live through the loop: ptxas keeps the registers and spills of the
  // C <= 4 kernels), instead of a product and a reduction over the image after the kernel (two launches
  // and an H x W x C temporary). Every lane takes part (pixels outside the image add zero).
  for (int c = 0; c < C && c < CMAX; ++c) {
    const float v = warp_sum(inside ? a[kAuxTransmittance] * up.image.at(i, j, c) : 0.0f);
    if ((t & 31) == 0 && v != 0.0f) atomicAdd(g_background + c, v);
  }
  const int my_last = begin + (inside ? static_cast<int>(a[kAuxLastIndex]) : 0);
  if (t == 0) sh_max_last = begin;
  __syncthreads();
  atomicMax(&sh_max_last, my_last);

  PixelGrads pg;
  PixelBackward pb;
  float dimg[CMAX];  // zero past C (and outside the image): the colour sums below run over all CMAX
#pragma unroll
  for (int c = 0; c < CMAX; ++c) dimg[c] = 0.0f;
  if (inside) {
    pg.load(i, j, pix, up, near, far, nearfar_k);
    float bg_dot = 0.0f;
    for (int c = 0; c < C && c < CMAX; ++c) {
      dimg[c] = up.image.at(i, j, c);
      bg_dot += dimg[c] * background[c];
    }
    pb.init(a, layout, bg_dot, pg, nearfar_k);
  } else {
    pb.position = 0;
  }
  __syncthreads();
  const int max_last = sh_max_last;
  for (int batch_end = max_last; batch_end > begin; batch_end -= kBlock) {
    const int batch_start = max(begin, batch_end - kBlock);
    __syncthreads();
    const int idx = batch_end - 1 - t;
    if (idx >= batch_start) {
      sh.template load<kPadFeatures>(t, ids[idx], params, depths, coords, features, C);
    }
    __syncthreads();
    const int n_batch = batch_end - batch_start;
    if constexpr (Batch::kParamsInRegisters) sh.load_wide_params(t, n_batch, params);
    for (int b = 0; b < n_batch; ++b) {
      // Every thread of the block walks the same primitive b, so the warp can sum its 32 pixels'
      // gradients with shuffles and issue one atomic per value instead of one per pixel. No thread
      // leaves the loop early: inactive ones (outside the image, past their last contributor,
      // skipped) contribute zeros.
      const int list_index = batch_end - 1 - b;
      float regs[Batch::kRow];
      const float* p = sh.params_of(b, regs);
      const int id = sh.id[b];
      bool active = list_index < my_last && pb.position > 0;
      float raw = 0.0f;
      // Kept for the gradient: a convex's edge weights, so its exponentials are evaluated once per
      // pair (H200, 200k convexes at 720p: fwd+bwd 12.8 -> 10.8 ms, and 80 registers instead of 111).
      typename Footprint::Eval ev;
      if (active) {
        raw = Footprint::raw_alpha_eval(p, sh.threshold[b], px, py, &ev);
        active = raw >= kAlphaMin;  // skipped in the forward pass too
      }
      float d_raw = 0.0f, w = 0.0f, dz = 0.0f, du = 0.0f;
      if (active) {
        const float* f = sh.features_of(b, features, C);
        float colour_dot = 0.0f;
        if constexpr (kPadFeatures) {
#pragma unroll
          for (int c = 0; c < CMAX; ++c) colour_dot += dimg[c] * f[c];
        } else {
          for (int c = 0; c < C && c < CMAX; ++c) colour_dot += dimg[c] * f[c];
        }
        active = pb.template step<kDistortion>(raw, sh.depth[b], sh.coord[b], colour_dot, pg, &d_raw, &w, &dz, &du);
        if (!active) d_raw = w = dz = du = 0.0f;
      }
      if (!__any_sync(kFullWarp, active)) continue;  // warp-uniform: no pixel of this warp uses b
      const int lane = threadIdx.x & 31;
      // The warp's sums of the gradients, by reduce-scatter (H200, 1M Gaussians at 1080p, colour
      // and depth: fwd+bwd 7.0 -> 5.7 ms against one warp_sum per value; docs/BENCHMARKS.md).
      constexpr int kGrad = next_pow2(P);  // padded with zeros
      // depth, coordinate and (features in shared memory: C <= 4) colour gradients
      constexpr int kFeat = SharedBatch<Footprint, CMAX>::kFeatures ? CMAX : 0;
      constexpr int kExtra = next_pow2(2 + kFeat);
      auto fill_extra = [&](float(&extra)[kExtra]) {
        extra[0] = dz;
        extra[1] = du;  // zero without a distortion output
#pragma unroll
        for (int c = 0; c < kExtra - 2; ++c) extra[2 + c] = c < kFeat ? w * dimg[c] : 0.0f;  // w = 0 if inactive
      };
      float* gf = g_features + static_cast<int64_t>(id) * C;
      auto add_extra = [&](int x, float v) {  // extra value x: the depth, the coordinate or feature x - 2
        if (x == 0) atomicAdd(g_depths + id, v);
        else if (x == 1) atomicAdd(g_coords + id, v);
        else if (x - 2 < C) atomicAdd(gf + (x - 2), v);
      };
      const int used = Footprint::used_params(p);  // a convex's unused edge slots get no atomics
      // The gradient in every lane (d_raw = 0 where the pair is not composited gives zeros: the footprints
      // guarantee it, footprint_pixels_cpu checks it): in a warp that reaches here some lane computes it
      // anyway, and the others would only add a branch and a zero fill. A lane that did not evaluate (or
      // stopped early) takes a blank record, here and not before the evaluation: there it cost every pair
      // the zeroing, also the many a warp skips.
      if (!active) ev = typename Footprint::Eval{};
      constexpr int kMergeAt = merged_extras_at<Footprint, kGrad, kExtra>();
      // The warp's sums of grad's slots, each added by one lane: to the params, or with extras_in_slots
      // (the merged layout) slot 0 and those from kMergeAt on to the extra values.
      auto sum_and_add = [&](float(&grad)[kGrad], bool extras_in_slots) {
        const float g = warp_reduce_scatter<kGrad>(grad, lane);
        const int q = scatter_index<kGrad>(lane);
        if (!scatter_writer<kGrad>(lane) || g == 0.0f) return;
        if (extras_in_slots && q == 0) add_extra(0, g);
        else if (extras_in_slots && q >= kMergeAt) add_extra(q - kMergeAt + 1, g);
        else if (q < used) atomicAdd(g_params + static_cast<int64_t>(id) * P + q, g);
      };
      bool merged = false;  // the same for the whole warp: its lanes walk the same primitive
      if constexpr (kMergeAt > 0) {
        static_assert((kMergeAt - Footprint::kHeader) / 3 == Footprint::kEdgesCommon, "merged: the common hulls");
        merged = Footprint::edges(p) <= Footprint::kEdgesCommon;
        if (merged) {  // the gradient of those edges only, the extra sums in the other edges' slots
          float grad[kGrad];
          Footprint::template raw_alpha_backward_edges<Footprint::kEdgesCommon>(p, px, py, ev, d_raw, grad);
          float extra[kExtra];
          fill_extra(extra);
          grad[0] = extra[0];  // the edge count's slot (no gradient)
#pragma unroll
          for (int x = 1; x < kExtra; ++x) grad[kMergeAt + x - 1] = extra[x];
#pragma unroll
          for (int q = kMergeAt + kExtra - 1; q < kGrad; ++q) grad[q] = 0.0f;
          sum_and_add(grad, true);
        }
      }
      if (!merged) {  // every param slot, then the extra values in a reduce-scatter of their own
        float grad[kGrad];
#pragma unroll
        for (int q = P; q < kGrad; ++q) grad[q] = 0.0f;  // the padding (the gradient writes every slot below)
        Footprint::raw_alpha_backward_eval(p, px, py, raw, ev, d_raw, grad);
        sum_and_add(grad, false);
        float extra[kExtra];
        fill_extra(extra);
        const float e = warp_reduce_scatter<kExtra>(extra, lane);
        const int x = scatter_index<kExtra>(lane);
        if (scatter_writer<kExtra>(lane) && e != 0.0f) add_extra(x, e);
      }
      if (kFeat == 0) {  // more than 4 channels: one warp sum per channel
        for (int c = 0; c < C && c < CMAX; ++c) {
          const float v = warp_sum(active ? w * dimg[c] : 0.0f);
          if (lane == 0 && v != 0.0f) atomicAdd(gf + c, v);
        }
      }
    }
  }
}

// Picks the smallest per-thread colour array that holds C channels, and whether the kernels keep the
// distortion's running sums: always with a distortion output; without one they are skipped, for up to 4
// channels only (the common case; more instantiations would cost compile time for little).
template <typename Fn>
void dispatch_kernels(int C, bool distortion, Fn&& fn) {
  if (C <= 4) {
    if (distortion)
      fn(std::integral_constant<int, 4>{}, std::true_type{});
    else
      fn(std::integral_constant<int, 4>{}, std::false_type{});
  } else if (C <= 16) {
    fn(std::integral_constant<int, 16>{}, std::true_type{});
  } else {
    fn(std::integral_constant<int, kMaxChannels>{}, std::true_type{});
  }
}

}  // namespace
}  // namespace le3d
