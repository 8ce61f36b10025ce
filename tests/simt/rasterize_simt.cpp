// The CUDA rasterizer's kernels (csrc/cuda/rasterize_kernels.cuh) run on the host by the SIMT emulator,
// behind a C interface for tests/simt_backend.py (ctypes). The host steps mirror rasterize_cuda.cu's:
// count tiles, scan, fill keys, a stable sort of the keys (cub's radix sort there), tile offsets, then one
// block per tile forward and backward. Every call returns 0, or 1 with a message in err.
#include "simt.h"
// (after simt.h, which defines the CUDA dialect; with the GPU's forms of the pixel maths: le3d/common.h)
#define LE3D_EMULATE_GPU_FAST_MATH 1
#include "../../csrc/cuda/rasterize_kernels.cuh"

#include <numeric>

namespace {

using le3d::ConvexFootprint;
using le3d::GaussianFootprint;

constexpr unsigned kBlockThreads = le3d::kBlock;

simt::Dim3 dim(int64_t x) { return simt::Dim3{static_cast<unsigned>(x), 1, 1}; }

int tile_count(int W, int H) {
  return ((W + le3d::kTileSize - 1) / le3d::kTileSize) * ((H + le3d::kTileSize - 1) / le3d::kTileSize);
}

template <typename Fn>
int guarded(char* err, int err_len, Fn&& fn) {
  try {
    fn();
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(err, static_cast<size_t>(err_len), "%s", e.what());
    return 1;
  }
}

template <typename Fn>
void with_footprint(int footprint, Fn&& fn) {
  if (footprint == le3d::kFootprintGaussian) return fn(GaussianFootprint{});
  if (footprint == le3d::kFootprintConvex) return fn(ConvexFootprint{});
  throw std::invalid_argument("unknown footprint kind");
}

// bin_primitives: the number of tile entries M; with ids (capacity M) also the sorted lists.
template <typename Footprint>
int64_t bin(int N, const float* params, const float* bounds, const float* depths, int W, int H, int* offsets,
            int* ids) {
  const int tiles = tile_count(W, H);
  if (N == 0) {
    if (offsets) std::fill(offsets, offsets + tiles + 1, 0);
    return 0;
  }
  std::vector<int> counts(N);
  const auto grid = dim((N + 255) / 256);
  simt::launch(grid, dim(256), 0, [&] {
    le3d::count_tiles_kernel<Footprint>(N, params, bounds, W, H, counts.data());
  });
  std::vector<int64_t> ends(N);
  std::partial_sum(counts.begin(), counts.end(), ends.begin(),
                   [](int64_t a, int64_t b) { return a + b; });
  const int64_t M = ends.back();
  if (!ids) return M;
  if (M == 0) {
    std::fill(offsets, offsets + tiles + 1, 0);
    return 0;
  }
  std::vector<int64_t> keys(M);
  std::vector<int> values(M);
  simt::launch(grid, dim(256), 0, [&] {
    le3d::fill_keys_kernel<Footprint>(N, params, bounds, depths, W, H, ends.data(), counts.data(), keys.data(),
                                      values.data());
  });
  std::vector<int64_t> order(M);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return static_cast<uint64_t>(keys[a]) < static_cast<uint64_t>(keys[b]);
  });
  std::vector<uint64_t> sorted_keys(M);
  for (int64_t e = 0; e < M; ++e) {
    sorted_keys[e] = static_cast<uint64_t>(keys[order[e]]);
    ids[e] = values[order[e]];
  }
  simt::launch(dim((M + 255) / 256), dim(256), 0, [&] {
    le3d::tile_offsets_kernel(static_cast<int>(M), sorted_keys.data(), tiles, offsets);
  });
  return M;
}

}  // namespace

SIMT_API int64_t simt_bin(int footprint, int N, const float* params, const float* bounds, const float* depths, int W,
                          int H, int* offsets, int* ids, char* err, int err_len) {
  int64_t M = -1;
  const int status = guarded(err, err_len, [&] {
    with_footprint(footprint, [&](auto fp) {
      M = bin<decltype(fp)>(N, params, bounds, depths, W, H, offsets, ids);
    });
  });
  return status ? -1 : M;
}

// Floats per pixel of the forward's aux output for a render with these outputs (common.h, AuxLayout).
SIMT_API int simt_aux_dim(int has_distortion, int k) { return le3d::AuxLayout(has_distortion != 0, k).dim; }

// has_distortion: whether the render has a distortion output (coords may be null with it: no primitives).
SIMT_API int simt_forward(int footprint, const float* params, const float* features, int C, const float* depths,
                          const float* coords, int has_distortion, const float* background, int W, int H, int k,
                          const int* offsets, const int* ids, float* image, float* alpha, float* depth,
                          float* distortion, float* near, float* far, float* aux, char* err, int err_len) {
  return guarded(err, err_len, [&] {
    with_footprint(footprint, [&](auto fp) {
      using Footprint = decltype(fp);
      const size_t ring_bytes = 2 * static_cast<size_t>(k) * kBlockThreads * sizeof(float);
      const le3d::AuxLayout layout(has_distortion != 0, k);
      le3d::dispatch_kernels(C, has_distortion != 0, [&](auto cmax, auto dist) {
        simt::launch(dim(tile_count(W, H)), dim(kBlockThreads), ring_bytes, [&] {
          le3d::forward_kernel<Footprint, decltype(cmax)::value, decltype(dist)::value>(
              params, features, depths, coords, background, C, W, H, k, layout, offsets, ids, image, alpha, depth,
              distortion, near, far, aux);
        });
      });
    });
  });
}

// up_data[6]: image, alpha, depth, distortion, near, far upstream gradients (null: zero);
// up_strides[6][3]: their row, column and channel strides in elements.
SIMT_API int simt_backward(int footprint, const float* params, const float* features, int C, const float* depths,
                           const float* coords, int has_distortion, const float* background, int W, int H, int k,
                           const float* near, const float* far, const float* aux, const int* offsets, const int* ids,
                           const float* const* up_data, const int64_t* up_strides, float* g_params, float* g_features,
                           float* g_depths, float* g_coords, float* g_background, char* err, int err_len) {
  return guarded(err, err_len, [&] {
    le3d::PixelGradMap maps[6];
    for (int m = 0; m < 6; ++m)
      maps[m] = le3d::PixelGradMap{up_data[m], up_strides[3 * m], up_strides[3 * m + 1], up_strides[3 * m + 2]};
    const le3d::UpstreamGrads up{maps[0], maps[1], maps[2], maps[3], maps[4], maps[5]};
    with_footprint(footprint, [&](auto fp) {
      using Footprint = decltype(fp);
      const le3d::AuxLayout layout(has_distortion != 0, k);
      le3d::dispatch_kernels(C, has_distortion != 0, [&](auto cmax, auto dist) {
        simt::launch(dim(tile_count(W, H)), dim(kBlockThreads), 0, [&] {
          le3d::backward_kernel<Footprint, decltype(cmax)::value, decltype(dist)::value>(
              params, features, depths, coords, background, C, W, H, k, layout, near, far, aux, offsets, ids, up,
              g_params, g_features, g_depths, g_coords, g_background);
        });
      });
    });
  });
}

