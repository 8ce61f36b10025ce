// CUDA backend of the tile rasterizer, its host side. The per-pixel and per-footprint math comes from
// include/le3d/ (shared with the CPU backend), the kernels from rasterize_kernels.cuh; this file launches
// them: binning (one sort of (tile, depth) keys), one block per tile with shared-memory batches, and a
// back-to-front backward pass that accumulates primitive gradients with atomics.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>

#include <algorithm>

#include <cub/device/device_radix_sort.cuh>

#include "le3d/rasterize_api.h"
#include "rasterize_kernels.cuh"

namespace le3d {
namespace {

// Per-tile lists in (depth, id) order, in the same format as the CPU backend. One radix sort of
// (tile, depth bits) keys over only the bits in use (32 + bits of the tile count), stable, so equal
// depths keep the id order. A primitive goes to the tiles of its box that its footprint reaches.
template <typename Footprint>
void bin_primitives(const torch::Tensor& params, const torch::Tensor& bounds, const torch::Tensor& depths,
                    int width, int height, torch::Tensor* offsets_out, torch::Tensor* ids_out) {
  const int N = static_cast<int>(depths.size(0));
  const int tiles = ((width + kTileSize - 1) / kTileSize) * ((height + kTileSize - 1) / kTileSize);
  auto int_opts = depths.options().dtype(torch::kInt32);
  auto stream = at::cuda::getCurrentCUDAStream();
  auto no_entries = [&] {  // every tile's list empty
    *offsets_out = torch::zeros({tiles + 1}, int_opts);
    *ids_out = torch::empty({0}, int_opts);
  };
  if (N == 0) return no_entries();
  auto counts = torch::empty({N}, int_opts);
  const int grid = (N + 255) / 256;
  count_tiles_kernel<Footprint><<<grid, 256, 0, stream>>>(N, params.data_ptr<float>(), bounds.data_ptr<float>(),
                                                          width, height, counts.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();  // before .item() below reads what it wrote
  auto ends = counts.cumsum(0, torch::kInt64);
  const int64_t total = ends[-1].item<int64_t>();  // the one host sync of a render: sizes the lists
  TORCH_CHECK(total <= kMaxTileEntries, "le3d cuda rasterizer: more than ", kMaxTileEntries, " tile entries");
  const int M = static_cast<int>(total);
  if (M == 0) return no_entries();
  auto key_opts = depths.options().dtype(torch::kInt64);
  auto keys = torch::empty({M}, key_opts), sorted_keys = torch::empty({M}, key_opts);
  auto values = torch::empty({M}, int_opts), sorted_values = torch::empty({M}, int_opts);
  fill_keys_kernel<Footprint><<<grid, 256, 0, stream>>>(N, params.data_ptr<float>(), bounds.data_ptr<float>(),
                                                        depths.data_ptr<float>(), width, height,
                                                        ends.data_ptr<int64_t>(), counts.data_ptr<int>(),
                                                        keys.data_ptr<int64_t>(), values.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  int tile_bits = 0;
  while ((1 << tile_bits) < tiles) ++tile_bits;
  const auto* keys_in = reinterpret_cast<const uint64_t*>(keys.data_ptr<int64_t>());
  auto* keys_out = reinterpret_cast<uint64_t*>(sorted_keys.data_ptr<int64_t>());
  size_t temp_bytes = 0;
  C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, temp_bytes, keys_in, keys_out, values.data_ptr<int>(),
                                                 sorted_values.data_ptr<int>(), M, 0, 32 + tile_bits, stream));
  auto temp = torch::empty({static_cast<int64_t>(temp_bytes)}, depths.options().dtype(torch::kUInt8));
  C10_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.data_ptr(), temp_bytes, keys_in, keys_out,
                                                 values.data_ptr<int>(), sorted_values.data_ptr<int>(), M, 0,
                                                 32 + tile_bits, stream));
  auto offsets = torch::empty({tiles + 1}, int_opts);
  tile_offsets_kernel<<<(M + 255) / 256, 256, 0, stream>>>(M, keys_out, tiles, offsets.data_ptr<int>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  *offsets_out = offsets;
  *ids_out = sorted_values;
}

// The near/far ring (2 * nearfar_k floats a pixel, dynamic shared memory) must fit beside the kernel's own
// shared memory within what this GPU lets a block opt in to (64 KB on sm_75, 227 KB on sm_90): a clear
// ValueError naming nearfar_k and its largest value here, instead of cudaFuncSetAttribute's bare error.
void check_ring_fits(const void* kernel, int ring_bytes, int nearfar_k, int C) {
  cudaFuncAttributes attributes;
  C10_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
  int device = 0, optin = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int own = static_cast<int>(attributes.sharedSizeBytes);
  const int per_k = ring_bytes / nearfar_k;
  TORCH_CHECK_VALUE(own + ring_bytes <= optin, "nearfar_k = ", nearfar_k, " needs ", own + ring_bytes,
                    " bytes of shared memory per block for this primitive with ", C, " channels; this GPU allows ",
                    optin, ": use nearfar_k <= ", std::max(0, (optin - own) / per_k));
}

template <typename Footprint>
std::vector<torch::Tensor> forward_impl(const torch::Tensor& params, const torch::Tensor& features,
                                        const torch::Tensor& depths, const OptionalCoords& coords,
                                        const torch::Tensor& bounds, const torch::Tensor& background,
                                        int W, int H, int k) {
  TORCH_CHECK(params.size(1) == Footprint::kParams, "params: wrong width for this footprint");
  const int C = static_cast<int>(features.size(1));
  const int ring_bytes = 2 * k * kBlock * static_cast<int>(sizeof(float));
  if (ring_bytes > 0) {  // before anything is allocated or launched
    dispatch_kernels(C, coords.has_value(), [&](auto cmax, auto distortion) {
      auto* kernel = forward_kernel<Footprint, decltype(cmax)::value, decltype(distortion)::value>;
      check_ring_fits(reinterpret_cast<const void*>(kernel), ring_bytes, k, C);
    });
  }
  PixelOutputs out(H, W, C, coords.has_value(), k, features.options());
  torch::Tensor offsets, ids;
  bin_primitives<Footprint>(params, bounds, depths, W, H, &offsets, &ids);
  const int tiles = ((W + kTileSize - 1) / kTileSize) * ((H + kTileSize - 1) / kTileSize);
  auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_kernels(C, coords.has_value(), [&](auto cmax, auto distortion) {
    auto* kernel = forward_kernel<Footprint, decltype(cmax)::value, decltype(distortion)::value>;
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, ring_bytes));
    kernel<<<tiles, kBlock, ring_bytes, stream>>>(
        params.data_ptr<float>(), features.data_ptr<float>(), depths.data_ptr<float>(), coord_data(coords),
        background.data_ptr<float>(), C, W, H, k, out.layout, offsets.data_ptr<int>(), ids.data_ptr<int>(),
        out.image.data_ptr<float>(), out.alpha.data_ptr<float>(), out.depth.data_ptr<float>(),
        PixelOutputs::data(out.distortion), PixelOutputs::data(out.near), PixelOutputs::data(out.far),
        out.aux.data_ptr<float>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out.with_tiles(offsets, ids);
}

template <typename Footprint>
std::vector<torch::Tensor> backward_impl(
    const torch::Tensor& params, const torch::Tensor& features, const torch::Tensor& depths,
    const OptionalCoords& coords, const torch::Tensor& background, int W, int H, int k,
    const torch::Tensor& near, const torch::Tensor& far, const torch::Tensor& aux,
    const torch::Tensor& offsets, const torch::Tensor& ids, const torch::Tensor& d_image,
    const torch::Tensor& d_alpha, const torch::Tensor& d_depth, const torch::Tensor& d_distortion,
    const torch::Tensor& d_near, const torch::Tensor& d_far) {
  const int N = static_cast<int>(params.size(0));
  const int C = static_cast<int>(features.size(1));
  // the five gradients as views of one zeroed buffer: one fill launch
  constexpr int P = Footprint::kParams;
  const auto g = raster_grads(torch::zeros({raster_grads_size(N, P, C)}, features.options()), N, P, C);
  const int tiles = ((W + kTileSize - 1) / kTileSize) * ((H + kTileSize - 1) / kTileSize);
  const auto up = upstream_grads(params, H, W, C, coords.has_value(), d_image, d_alpha, d_depth, d_distortion, d_near,
                                 d_far);
  auto stream = at::cuda::getCurrentCUDAStream();
  dispatch_kernels(C, coords.has_value(), [&](auto cmax, auto distortion) {
    backward_kernel<Footprint, decltype(cmax)::value, decltype(distortion)::value><<<tiles, kBlock, 0, stream>>>(
        params.data_ptr<float>(), features.data_ptr<float>(), depths.data_ptr<float>(), coord_data(coords),
        background.data_ptr<float>(), C, W, H, k, AuxLayout(coords.has_value(), k), PixelOutputs::data(near),
        PixelOutputs::data(far), aux.data_ptr<float>(), offsets.data_ptr<int>(),
        ids.data_ptr<int>(), up, g.params.data_ptr<float>(),
        g.features.data_ptr<float>(), g.depths.data_ptr<float>(), g.coords.data_ptr<float>(),
        g.background.data_ptr<float>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return g.outputs();
}

}  // namespace

std::vector<torch::Tensor> rasterize_forward_cuda(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features,
    const torch::Tensor& depths, const OptionalCoords& coords, const torch::Tensor& bounds,
    const torch::Tensor& background, int64_t width, int64_t height, int64_t nearfar_k) {
  check_raster_inputs("le3d cuda rasterizer", true, params, features, depths, coords, bounds, background, nearfar_k);
  const at::cuda::OptionalCUDAGuard guard(params.device());
  const int W = static_cast<int>(width), H = static_cast<int>(height), k = static_cast<int>(nearfar_k);
  if (footprint == kFootprintGaussian)
    return forward_impl<GaussianFootprint>(params, features, depths, coords, bounds, background, W, H, k);
  TORCH_CHECK(footprint == kFootprintConvex, "unknown footprint kind");
  return forward_impl<ConvexFootprint>(params, features, depths, coords, bounds, background, W, H, k);
}

std::vector<torch::Tensor> rasterize_backward_cuda(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features,
    const torch::Tensor& depths, const OptionalCoords& coords, const torch::Tensor& bounds /*checked only: the
    kernel evaluates every pixel of a tile, a thread per pixel*/,
    const torch::Tensor& background, int64_t width, int64_t height, int64_t nearfar_k,
    const torch::Tensor& near, const torch::Tensor& far, const torch::Tensor& aux,
    const torch::Tensor& tile_offsets, const torch::Tensor& tile_ids, const torch::Tensor& d_image,
    const torch::Tensor& d_alpha, const torch::Tensor& d_depth, const torch::Tensor& d_distortion,
    const torch::Tensor& d_near, const torch::Tensor& d_far) {
  // Checked here: the inputs and what the forward saved; the upstream gradients in upstream_map.
  check_raster_inputs("le3d cuda rasterizer", true, params, features, depths, coords, bounds, background, nearfar_k);
  check_raster_saved("le3d cuda rasterizer", height, width, coords.has_value(), nearfar_k, near, far, aux);
  const at::cuda::OptionalCUDAGuard guard(params.device());
  const int W = static_cast<int>(width), H = static_cast<int>(height), k = static_cast<int>(nearfar_k);
  if (footprint == kFootprintGaussian)
    return backward_impl<GaussianFootprint>(params, features, depths, coords, background, W, H, k, near,
                                            far, aux, tile_offsets, tile_ids, d_image, d_alpha, d_depth,
                                            d_distortion, d_near, d_far);
  TORCH_CHECK(footprint == kFootprintConvex, "unknown footprint kind");
  return backward_impl<ConvexFootprint>(params, features, depths, coords, background, W, H, k, near, far,
                                        aux, tile_offsets, tile_ids, d_image, d_alpha, d_depth,
                                        d_distortion, d_near, d_far);
}

}  // namespace le3d
