// C++ CPU backend of the tile rasterizer: binning, per-tile forward, per-tile backward.
// Tiles are processed in parallel with OpenMP; the per-pixel math is in include/le3d/.
#include <algorithm>
#include <numeric>
#include <vector>

#include "le3d/common.h"
#include "le3d/composite.h"
#include "le3d/footprint_convex.h"
#include "le3d/footprint_gaussian.h"
#include "le3d/rasterize_api.h"
#include "le3d/tiles.h"
#ifdef _OPENMP
#include <omp.h>
#endif

namespace le3d {
namespace {

int thread_count() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

void check_inputs(const torch::Tensor& params, const torch::Tensor& features,
                  const torch::Tensor& depths, const torch::Tensor& coords,
                  const torch::Tensor& background, int64_t nearfar_k) {
  for (const auto* t : {&params, &features, &depths, &background}) {
    TORCH_CHECK(t->device().is_cpu(), "le3d cpu rasterizer: tensors must be on the CPU");
    TORCH_CHECK(t->scalar_type() == torch::kFloat32, "le3d cpu rasterizer: tensors must be float32");
    TORCH_CHECK(t->is_contiguous(), "le3d cpu rasterizer: tensors must be contiguous");
  }
  TORCH_CHECK(features.size(1) >= 1 && features.size(1) <= kMaxChannels, "features: 1..64 channels");
  TORCH_CHECK(nearfar_k >= 0 && nearfar_k <= kNearFarMaxK, "nearfar_k out of range");
  TORCH_CHECK(coords.numel() == 0 || coords.numel() == params.size(0), "coords: [N] or empty");
}

// Per-tile lists of primitive ids, each in (depth, id) order.
void bin_primitives(const torch::Tensor& bounds, const torch::Tensor& depths, int width, int height,
                    torch::Tensor* offsets_out, torch::Tensor* ids_out) {
  const int N = static_cast<int>(depths.size(0));
  const int tiles_x = (width + kTileSize - 1) / kTileSize;
  const int tiles_y = (height + kTileSize - 1) / kTileSize;
  const float* b = bounds.data_ptr<float>();
  const float* z = depths.data_ptr<float>();
  std::vector<TileRect> rects(N);
  std::vector<int> order;
  order.reserve(N);
  for (int i = 0; i < N; ++i) {
    rects[i] = tile_rect(b + 4 * i, width, height);
    if (!rects[i].empty()) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [z](int a, int c) { return z[a] < z[c]; });
  auto offsets = torch::zeros({tiles_x * tiles_y + 1}, torch::kInt32);
  int* off = offsets.data_ptr<int>();
  for (int i : order) {
    const TileRect& r = rects[i];
    for (int ty = r.y0; ty <= r.y1; ++ty)
      for (int tx = r.x0; tx <= r.x1; ++tx) off[ty * tiles_x + tx + 1] += 1;
  }
  for (int t = 0; t < tiles_x * tiles_y; ++t) off[t + 1] += off[t];
  auto ids = torch::empty({off[tiles_x * tiles_y]}, torch::kInt32);
  int* out = ids.data_ptr<int>();
  std::vector<int> cursor(off, off + tiles_x * tiles_y);
  for (int i : order) {
    const TileRect& r = rects[i];
    for (int ty = r.y0; ty <= r.y1; ++ty)
      for (int tx = r.x0; tx <= r.x1; ++tx) out[cursor[ty * tiles_x + tx]++] = i;
  }
  *offsets_out = offsets;
  *ids_out = ids;
}

// A tile's primitives copied into contiguous arrays (front to back), so the per-pixel loops read
// memory in order, plus each primitive's skip threshold (computed once per tile, not per pixel).
template <typename Footprint>
struct TileBatch {
  std::vector<float> params, depth, coord, threshold;
  std::vector<int> id;

  void gather(const float* all_params, const float* depths, const float* coords, const int* ids,
              int begin, int end) {
    constexpr int P = Footprint::kParams;
    const int n = end - begin;
    params.resize(static_cast<size_t>(n) * P);
    depth.resize(n);
    coord.resize(n);
    threshold.resize(n);
    id.resize(n);
    for (int k = 0; k < n; ++k) {
      const int i = ids[begin + k];
      id[k] = i;
      std::copy(all_params + static_cast<int64_t>(i) * P, all_params + static_cast<int64_t>(i + 1) * P,
                params.data() + static_cast<size_t>(k) * P);
      depth[k] = depths[i];
      coord[k] = coords ? coords[i] : 0.0f;
      threshold[k] = Footprint::skip_threshold(params.data() + static_cast<size_t>(k) * P);
    }
  }
};

template <typename Footprint>
void forward_tiles(const float* params, const float* features, const float* depths,
                   const float* coords, const float* background, int C, int width, int height,
                   int nearfar_k, const int* offsets, const int* ids, float* image, float* alpha,
                   float* depth, float* distortion, float* near, float* far, float* aux) {
  const int tiles_x = (width + kTileSize - 1) / kTileSize;
  const int tiles_y = (height + kTileSize - 1) / kTileSize;
  constexpr int P = Footprint::kParams;
#pragma omp parallel for schedule(dynamic, 1)
  for (int tile = 0; tile < tiles_x * tiles_y; ++tile) {
    const int tx = tile % tiles_x, ty = tile / tiles_x;
    const int begin = offsets[tile], end = offsets[tile + 1];
    TileBatch<Footprint> batch;
    batch.gather(params, depths, coords, ids, begin, end);
    float colour[kMaxChannels];
    float ring_w[kNearFarMaxK], ring_z[kNearFarMaxK];
    for (int i = ty * kTileSize; i < std::min(height, (ty + 1) * kTileSize); ++i) {
      for (int j = tx * kTileSize; j < std::min(width, (tx + 1) * kTileSize); ++j) {
        const float px = j + 0.5f, py = i + 0.5f;
        PixelForward pf(RingBuffer{ring_w, ring_z, 1});
        std::fill(colour, colour + C, 0.0f);
        for (int k = 0; k < end - begin; ++k) {
          const float raw = Footprint::raw_alpha_fast(batch.params.data() + static_cast<size_t>(k) * P,
                                                      batch.threshold[k], px, py);
          float w;
          const int step = pf.add(raw, batch.depth[k], batch.coord[k], nearfar_k, k, &w);
          if (step == PixelForward::kDone) break;
          if (step == PixelForward::kAdded) {
            const float* f = features + static_cast<int64_t>(batch.id[k]) * C;
            for (int c = 0; c < C; ++c) colour[c] += w * f[c];
          }
        }
        const int64_t pix = static_cast<int64_t>(i) * width + j;
        for (int c = 0; c < C; ++c) image[pix * C + c] = colour[c] + pf.T * background[c];
        alpha[pix] = 1.0f - pf.T;
        depth[pix] = pf.depth;
        distortion[pix] = pf.distortion();
        near[pix] = nearfar_k > 0 ? pf.near_depth() : 0.0f;
        far[pix] = nearfar_k > 0 ? pf.far_depth(nearfar_k) : 0.0f;
        pf.save(aux + pix * kAuxDim, nearfar_k);
      }
    }
  }
}

template <typename Footprint>
void backward_tiles(const float* params, const float* features, const float* depths,
                    const float* coords, const float* background, int N, int C, int width,
                    int height, int nearfar_k, const float* near, const float* far, const float* aux,
                    const int* offsets, const int* ids, const float* d_image, const float* d_alpha,
                    const float* d_depth, const float* d_distortion, const float* d_near,
                    const float* d_far, float* grad_buffers) {
  // grad_buffers: [threads][N * (P + C + 2) + C], one private slice per thread, summed later.
  const int tiles_x = (width + kTileSize - 1) / kTileSize;
  const int tiles_y = (height + kTileSize - 1) / kTileSize;
  constexpr int P = Footprint::kParams;
  const int64_t stride = static_cast<int64_t>(N) * (P + C + 2) + C;
  // Static round-robin tiles: each thread always sums the same tiles in the same order, so
  // gradients are bit-for-bit reproducible for a given thread count (training resumes exactly).
#pragma omp parallel for schedule(static, 1)
  for (int tile = 0; tile < tiles_x * tiles_y; ++tile) {
    float* g = grad_buffers + thread_id() * stride;
    float* g_params = g;
    float* g_features = g + static_cast<int64_t>(N) * P;
    float* g_depths = g_features + static_cast<int64_t>(N) * C;
    float* g_coords = g_depths + N;
    float* g_background = g_coords + N;
    const int tx = tile % tiles_x, ty = tile / tiles_x;
    const int begin = offsets[tile];
    TileBatch<Footprint> batch;
    batch.gather(params, depths, coords, ids, begin, offsets[tile + 1]);
    for (int i = ty * kTileSize; i < std::min(height, (ty + 1) * kTileSize); ++i) {
      for (int j = tx * kTileSize; j < std::min(width, (tx + 1) * kTileSize); ++j) {
        const float px = j + 0.5f, py = i + 0.5f;
        const int64_t pix = static_cast<int64_t>(i) * width + j;
        const float* a = aux + pix * kAuxDim;
        const float* dimg = d_image + pix * C;
        PixelGrads pg;
        pg.d_alpha = d_alpha[pix];
        pg.d_depth = d_depth[pix];
        pg.d_distortion = coords ? d_distortion[pix] : 0.0f;
        pg.d_near = nearfar_k > 0 ? d_near[pix] : 0.0f;
        pg.d_far = nearfar_k > 0 ? d_far[pix] : 0.0f;
        pg.near = near[pix];
        pg.far = far[pix];
        float bg_dot = 0.0f;
        for (int c = 0; c < C; ++c) {
          bg_dot += dimg[c] * background[c];
          g_background[c] += dimg[c] * a[kAuxTransmittance];
        }
        PixelBackward pb;
        pb.init(a, bg_dot, pg, nearfar_k);
        const int last = static_cast<int>(a[kAuxLastIndex]);
        for (int k = last - 1; k >= 0 && pb.position > 0; --k) {
          const int id = batch.id[k];
          const float* p = batch.params.data() + static_cast<size_t>(k) * P;
          typename Footprint::Eval ev;  // kept for the gradient (a convex's exponentials, once)
          const float raw = Footprint::raw_alpha_eval(p, batch.threshold[k], px, py, &ev);
          if (raw < kAlphaMin) continue;  // skipped in the forward pass too
          const float* f = features + static_cast<int64_t>(id) * C;
          float colour_dot = 0.0f;
          for (int c = 0; c < C; ++c) colour_dot += dimg[c] * f[c];
          float d_raw, w, dz, du;
          if (!pb.step(raw, batch.depth[k], batch.coord[k], colour_dot, pg, &d_raw, &w, &dz, &du))
            continue;
          if (d_raw != 0.0f)
            Footprint::raw_alpha_backward_eval(p, px, py, raw, ev, d_raw, g_params + static_cast<int64_t>(id) * P);
          float* gf = g_features + static_cast<int64_t>(id) * C;
          for (int c = 0; c < C; ++c) gf[c] += w * dimg[c];
          g_depths[id] += dz;
          g_coords[id] += du;
        }
      }
    }
  }
}

template <typename Footprint>
std::vector<torch::Tensor> forward_impl(const torch::Tensor& params, const torch::Tensor& features,
                                        const torch::Tensor& depths, const torch::Tensor& coords,
                                        const torch::Tensor& bounds, const torch::Tensor& background,
                                        int W, int H, int k) {
  TORCH_CHECK(params.size(1) == Footprint::kParams, "params: wrong width for this footprint");
  const int C = static_cast<int>(features.size(1));
  PixelOutputs out(H, W, C, features.options());
  torch::Tensor offsets, ids;
  bin_primitives(bounds, depths, W, H, &offsets, &ids);
  forward_tiles<Footprint>(params.data_ptr<float>(), features.data_ptr<float>(),
                           depths.data_ptr<float>(),
                           coords.numel() ? coords.data_ptr<float>() : nullptr,
                           background.data_ptr<float>(), C, W, H, k, offsets.data_ptr<int>(),
                           ids.data_ptr<int>(), out.image.data_ptr<float>(), out.alpha.data_ptr<float>(),
                           out.depth.data_ptr<float>(), out.distortion.data_ptr<float>(),
                           out.near.data_ptr<float>(), out.far.data_ptr<float>(), out.aux.data_ptr<float>());
  return out.with_tiles(offsets, ids);
}

template <typename Footprint>
std::vector<torch::Tensor> backward_impl(
    const torch::Tensor& params, const torch::Tensor& features, const torch::Tensor& depths,
    const torch::Tensor& coords, const torch::Tensor& background, int W, int H, int k,
    const torch::Tensor& near, const torch::Tensor& far, const torch::Tensor& aux,
    const torch::Tensor& offsets, const torch::Tensor& ids, const torch::Tensor& d_image,
    const torch::Tensor& d_alpha, const torch::Tensor& d_depth, const torch::Tensor& d_distortion,
    const torch::Tensor& d_near, const torch::Tensor& d_far) {
  const int N = static_cast<int>(params.size(0));
  const int C = static_cast<int>(features.size(1));
  constexpr int P = Footprint::kParams;
  const int threads = thread_count();
  const int64_t stride = static_cast<int64_t>(N) * (P + C + 2) + C;
  auto buffers = torch::zeros({threads, stride}, features.options());
  backward_tiles<Footprint>(
      params.data_ptr<float>(), features.data_ptr<float>(), depths.data_ptr<float>(),
      coords.numel() ? coords.data_ptr<float>() : nullptr, background.data_ptr<float>(), N, C, W, H,
      k, near.data_ptr<float>(), far.data_ptr<float>(), aux.data_ptr<float>(),
      offsets.data_ptr<int>(), ids.data_ptr<int>(), d_image.data_ptr<float>(),
      d_alpha.data_ptr<float>(), d_depth.data_ptr<float>(), d_distortion.data_ptr<float>(),
      d_near.data_ptr<float>(), d_far.data_ptr<float>(), buffers.data_ptr<float>());
  auto total = threads == 1 ? buffers[0] : buffers.sum(0);
  const int64_t n_params = static_cast<int64_t>(N) * P, n_feat = static_cast<int64_t>(N) * C;
  auto d_params = total.narrow(0, 0, n_params).view({N, P});
  auto d_features = total.narrow(0, n_params, n_feat).view({N, C});
  auto d_depths = total.narrow(0, n_params + n_feat, N);
  auto d_coords = total.narrow(0, n_params + n_feat + N, N);
  auto d_background = total.narrow(0, n_params + n_feat + 2 * N, C);
  return {d_params, d_features, d_depths, d_coords, d_background};
}

}  // namespace

std::vector<torch::Tensor> rasterize_forward_cpu(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features,
    const torch::Tensor& depths, const torch::Tensor& coords, const torch::Tensor& bounds,
    const torch::Tensor& background, int64_t width, int64_t height, int64_t nearfar_k) {
  check_inputs(params, features, depths, coords, background, nearfar_k);
  const int W = static_cast<int>(width), H = static_cast<int>(height), k = static_cast<int>(nearfar_k);
  if (footprint == kFootprintGaussian)
    return forward_impl<GaussianFootprint>(params, features, depths, coords, bounds, background, W, H, k);
  TORCH_CHECK(footprint == kFootprintConvex, "unknown footprint kind");
  return forward_impl<ConvexFootprint>(params, features, depths, coords, bounds, background, W, H, k);
}

std::vector<torch::Tensor> rasterize_backward_cpu(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features,
    const torch::Tensor& depths, const torch::Tensor& coords, const torch::Tensor& background,
    int64_t width, int64_t height, int64_t nearfar_k, const torch::Tensor& near,
    const torch::Tensor& far, const torch::Tensor& aux, const torch::Tensor& tile_offsets,
    const torch::Tensor& tile_ids, const torch::Tensor& d_image, const torch::Tensor& d_alpha,
    const torch::Tensor& d_depth, const torch::Tensor& d_distortion, const torch::Tensor& d_near,
    const torch::Tensor& d_far) {
  check_inputs(params, features, depths, coords, background, nearfar_k);
  const int W = static_cast<int>(width), H = static_cast<int>(height), k = static_cast<int>(nearfar_k);
  if (footprint == kFootprintGaussian)
    return backward_impl<GaussianFootprint>(params, features, depths, coords, background, W, H, k,
                                            near, far, aux, tile_offsets, tile_ids, d_image,
                                            d_alpha, d_depth, d_distortion, d_near, d_far);
  TORCH_CHECK(footprint == kFootprintConvex, "unknown footprint kind");
  return backward_impl<ConvexFootprint>(params, features, depths, coords, background, W, H, k, near,
                                        far, aux, tile_offsets, tile_ids, d_image, d_alpha, d_depth,
                                        d_distortion, d_near, d_far);
}

}  // namespace le3d
