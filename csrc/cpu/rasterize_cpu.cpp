// C++ CPU backend of the tile rasterizer: binning, per-tile forward, per-tile backward.
// Tiles are processed in parallel with OpenMP; the per-pixel math is in include/le3d/.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "le3d/common.h"
#include "le3d/composite.h"
#include "le3d/footprint_convex.h"
#include "le3d/footprint_gaussian.h"
#include "le3d/rasterize_api.h"
#include "le3d/tiles.h"
#include "footprint_rows.h"
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

// Asks the CPU to fetch the cache lines of floats [p, p + count) ahead of use (for_write: they will be
// added to). A tile's primitives lie scattered in memory (the list is in depth order), and the row loops
// stalled on the first load of each one's params: a fifth of the convex alpha's time at 200k/720p (perf).
inline void prefetch_floats(const float* p, int count, bool for_write = false) {
#if defined(__GNUC__)
  const auto first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
  const auto last = reinterpret_cast<uintptr_t>(p + count - 1);
  for (uintptr_t line = first; line <= last; line += 64) {
    if (for_write) __builtin_prefetch(reinterpret_cast<const void*>(line), 1);
    else __builtin_prefetch(reinterpret_cast<const void*>(line), 0);
  }
#else
  (void)p, (void)count, (void)for_write;
#endif
}

// How many primitives ahead of the one being composited the tile loops prefetch (2 to 6 measured alike;
// a convex's 29 params span two or three cache lines).
constexpr int kPrefetchAhead = 4;

// Prefetches primitive i's params and features and, given gradient buffers (the backward), its rows there.
template <int P>
inline void prefetch_primitive(int i, const float* params, const float* features, int C, float* g_params = nullptr,
                               float* g_features = nullptr) {
  prefetch_floats(params + static_cast<int64_t>(i) * P, P);
  prefetch_floats(features + static_cast<int64_t>(i) * C, C);
  if (g_params) prefetch_floats(g_params + static_cast<int64_t>(i) * P, P, true);
  if (g_features) prefetch_floats(g_features + static_cast<int64_t>(i) * C, C, true);
}

// Calls visit(c) for each set bit c of mask, lowest first.
template <typename Visit>
inline void for_each_bit(RowMask mask, Visit&& visit) {
  while (mask) {
    visit(__builtin_ctz(mask));
    mask &= mask - 1;
  }
}

// What the tile loops need of each primitive, computed once per pass (not once per tile it reaches):
// the image pixels its screen bound covers and its skip threshold.
template <typename Footprint>
struct PrimitiveSetup {
  std::vector<PixelRect> rect;
  std::vector<float> threshold;

  PrimitiveSetup(const float* params, const float* bounds, int N, int width, int height) : rect(N), threshold(N) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < N; ++i) {
      rect[i] = pixel_rect(bounds + 4 * static_cast<int64_t>(i), width, height);
      threshold[i] = Footprint::skip_threshold(params + static_cast<int64_t>(i) * Footprint::kParams);
    }
  }
};

// Per-tile lists of primitive ids, each in (depth, id) order. A primitive goes to the tiles of its
// screen bound that its footprint reaches (Footprint::reaches_tile: exact, the bound's box is loose
// around tilted ellipses and rounded hulls). The tile tests run in parallel over primitives (into
// one run of tiles per primitive, in depth order); a stable counting sort by tile then makes the lists.
template <typename Footprint>
void bin_primitives(const float* params, const PrimitiveSetup<Footprint>& setup, const torch::Tensor& depths,
                    int width, int height, torch::Tensor* offsets_out, torch::Tensor* ids_out) {
  constexpr int P = Footprint::kParams;
  const int N = static_cast<int>(depths.size(0));
  const int tiles_x = (width + kTileSize - 1) / kTileSize;
  const int tiles = tiles_x * ((height + kTileSize - 1) / kTileSize);
  const float* z = depths.data_ptr<float>();
  std::vector<int> order;
  order.reserve(N);
  for (int i = 0; i < N; ++i)
    if (!setup.rect[i].empty()) order.push_back(i);
  std::stable_sort(order.begin(), order.end(), [z](int a, int c) { return z[a] < z[c]; });
  const int n = static_cast<int>(order.size());
  // The tiles of primitive i's pixel range, and whether its footprint reaches the k-th of them (row-major).
  auto tile_range = [&](int i) { return tiles_of(setup.rect[i]); };
  auto tile_of = [&](const TileRect& tr, int k) {
    const int w = tr.x1 - tr.x0 + 1;
    return (tr.y0 + k / w) * tiles_x + tr.x0 + k % w;
  };
  auto reaches = [&](int i, int tile) {
    float box[4];
    tile_centre_box(tile % tiles_x, tile / tiles_x, width, height, box);
    return Footprint::reaches_tile(params + static_cast<int64_t>(i) * P, setup.threshold[i], box);
  };
  // Count pass: the reached tiles of a range of up to 64 tiles are kept as bits, so that the fill
  // pass need not test them again; larger ranges are tested in both passes.
  std::vector<int64_t> start(n + 1, 0);
  std::vector<uint64_t> reached(n, 0);
#pragma omp parallel for schedule(dynamic, 256)
  for (int r = 0; r < n; ++r) {
    const TileRect tr = tile_range(order[r]);
    const int count = tr.count();
    uint64_t bits = 0;
    int64_t hits = 0;
    for (int k = 0; k < count; ++k) {
      if (!reaches(order[r], tile_of(tr, k))) continue;
      ++hits;
      if (count <= 64) bits |= uint64_t{1} << k;
    }
    reached[r] = bits;
    start[r + 1] = hits;
  }
  for (int r = 0; r < n; ++r) start[r + 1] += start[r];
  const int64_t M = start[n];
  TORCH_CHECK(M <= kMaxTileEntries, "le3d cpu rasterizer: more than ", kMaxTileEntries, " tile entries");
  std::vector<int> entry_tile(M);
#pragma omp parallel for schedule(dynamic, 256)
  for (int r = 0; r < n; ++r) {
    const TileRect tr = tile_range(order[r]);
    const int count = tr.count();
    int64_t e = start[r];
    if (count <= 64) {
      for (uint64_t bits = reached[r]; bits; bits &= bits - 1) entry_tile[e++] = tile_of(tr, __builtin_ctzll(bits));
    } else {
      for (int k = 0; k < count; ++k)
        if (reaches(order[r], tile_of(tr, k))) entry_tile[e++] = tile_of(tr, k);
    }
  }
  auto offsets = torch::zeros({tiles + 1}, torch::kInt32);
  int* off = offsets.data_ptr<int>();
  for (int64_t e = 0; e < M; ++e) off[entry_tile[e] + 1] += 1;
  for (int t = 0; t < tiles; ++t) off[t + 1] += off[t];
  auto ids = torch::empty({M}, torch::kInt32);
  int* out = ids.data_ptr<int>();
  std::vector<int> cursor(off, off + tiles);
  for (int r = 0; r < n; ++r)
    for (int64_t e = start[r]; e < start[r + 1]; ++e) out[cursor[entry_tile[e]]++] = order[r];
  *offsets_out = offsets;
  *ids_out = ids;
}

// Where a tile lies in the image: its first pixel and how many of its rows and columns exist.
struct TileGeometry {
  int x0, y0, rows, cols;
  TileGeometry(int tile, int width, int height) {
    const int tiles_x = (width + kTileSize - 1) / kTileSize;
    x0 = (tile % tiles_x) * kTileSize;
    y0 = (tile / tiles_x) * kTileSize;
    rows = std::min(kTileSize, height - y0);
    cols = std::min(kTileSize, width - x0);
  }
  int64_t pixel(int r, int c, int width) const { return static_cast<int64_t>(y0 + r) * width + x0 + c; }
};

// A tile's primitives in list order (front to back): their ids, depths, coordinates and skip
// thresholds copied into contiguous arrays, and the box of tile pixels each one's screen bound reaches
// (rows r0..r1, columns c0..c1, tile-local): outside it alpha < 1/255 by the bound's construction, so
// no pixel there is evaluated or composited. (The parameters stay where they are: each is read once
// per tile by the row loops, so copying them cost more than it saved; the loops prefetch them.)
template <typename Footprint>
struct TileBatch {
  const float* all_params = nullptr;
  std::vector<float> depth, coord, threshold;
  std::vector<int> id, r0, r1, c0, c1;

  void gather(const float* params, const PrimitiveSetup<Footprint>& setup, const float* depths, const float* coords,
              const int* ids, int begin, int end, const TileGeometry& tile) {
    all_params = params;
    const int n = end - begin;
    for (auto* v : {&depth, &coord, &threshold}) v->resize(n);
    for (auto* v : {&id, &r0, &r1, &c0, &c1}) v->resize(n);
    for (int k = 0; k < n; ++k) {
      const int i = ids[begin + k];
      id[k] = i;
      depth[k] = depths[i];
      coord[k] = coords ? coords[i] : 0.0f;
      threshold[k] = setup.threshold[i];
      // The list holds only primitives whose bound reaches this tile: the clipped ranges are not empty.
      const PixelRect& px = setup.rect[i];
      c0[k] = std::max(px.x0 - tile.x0, 0);
      r0[k] = std::max(px.y0 - tile.y0, 0);
      c1[k] = std::min(px.x1 - tile.x0, tile.cols - 1);
      r1[k] = std::min(px.y1 - tile.y0, tile.rows - 1);
    }
  }
  const float* params_of(int k) const { return all_params + static_cast<int64_t>(id[k]) * Footprint::kParams; }
};

// Per-thread working memory of the forward pass, reused across tiles.
struct ForwardScratch {
  std::vector<PixelForward> pixels;
  std::vector<float> ring_w, ring_z, colour, alpha;
  RowMask live[kTileSize];  // per row, the pixels still compositing
  explicit ForwardScratch(int C)
      : ring_w(rows::kTilePixels * kNearFarMaxK), ring_z(rows::kTilePixels * kNearFarMaxK),
        colour(static_cast<size_t>(rows::kTilePixels) * C), alpha(rows::kTilePixels) {
    pixels.reserve(rows::kTilePixels);
  }
};

// Front to back, one primitive at a time: its alpha over the rows of its box (vectorised, see
// footprint_rows.h), then every live pixel of the box composites it.
// kDistortion = false: no distortion output; the compositing skips its running sums. layout: aux's slots
// for the render (PixelOutputs).
template <typename Footprint, bool kDistortion>
void forward_tiles(const float* params, const PrimitiveSetup<Footprint>& setup, const float* features,
                   const float* depths, const float* coords, const float* background, int C, int width, int height,
                   int nearfar_k, const AuxLayout layout, const int* offsets, const int* ids, float* image,
                   float* alpha, float* depth, float* distortion, float* near, float* far, float* aux) {
  const int tiles = ((width + kTileSize - 1) / kTileSize) * ((height + kTileSize - 1) / kTileSize);
#pragma omp parallel
  {
    ForwardScratch scratch(C);
    TileBatch<Footprint> batch;
#pragma omp for schedule(dynamic, 1)
    for (int t = 0; t < tiles; ++t) {
      const TileGeometry tile(t, width, height);
      batch.gather(params, setup, depths, coords, ids, offsets[t], offsets[t + 1], tile);
      auto& pixels = scratch.pixels;
      pixels.clear();
      for (int px = 0; px < rows::kTilePixels; ++px)
        pixels.emplace_back(RingBuffer{&scratch.ring_w[px * kNearFarMaxK], &scratch.ring_z[px * kNearFarMaxK], 1});
      std::fill(scratch.colour.begin(), scratch.colour.end(), 0.0f);
      RowMask* live = scratch.live;
      for (int r = 0; r < kTileSize; ++r) live[r] = r < tile.rows ? columns_mask(0, tile.cols - 1) : 0;
      int alive = tile.rows * tile.cols;
      const int n = offsets[t + 1] - offsets[t];
      for (int k = 0; k < n && alive > 0; ++k) {
        if (k + kPrefetchAhead < n)
          prefetch_primitive<Footprint::kParams>(batch.id[k + kPrefetchAhead], params, features, C);
        int r0 = batch.r0[k], r1 = batch.r1[k];
        while (r0 <= r1 && live[r0] == 0) ++r0;
        while (r1 >= r0 && live[r1] == 0) --r1;
        if (r0 > r1) continue;
        // The pixels that take this primitive: in its box, still compositing, alpha >= 1/255.
        const RowMask box = columns_mask(batch.c0[k], batch.c1[k]);
        RowMask masks[kTileSize];
        for (int r = r0; r <= r1; ++r) masks[r] = live[r] & box;
        FootprintRows<Footprint>::alpha(batch.params_of(k), batch.threshold[k], tile.x0, tile.y0, r0, r1, masks,
                                        scratch.alpha.data(), nullptr);
        const float* f = features + static_cast<int64_t>(batch.id[k]) * C;
        for (int r = r0; r <= r1; ++r) {
          if (!masks[r]) continue;
          for_each_bit(visible_mask(&scratch.alpha[r * kTileSize]) & masks[r], [&](int c) {
            const int px = r * kTileSize + c;
            float w;
            const int step = pixels[px].template add<kDistortion>(scratch.alpha[px], batch.depth[k], batch.coord[k],
                                                                 nearfar_k, k, &w);
            if (step == PixelForward::kAdded) {
              float* colour = &scratch.colour[static_cast<size_t>(px) * C];
              for (int ch = 0; ch < C; ++ch) colour[ch] += w * f[ch];
            } else if (step == PixelForward::kDone) {
              live[r] &= ~(RowMask{1} << c);
              alive -= 1;
            }
          });
        }
      }
      for (int r = 0; r < tile.rows; ++r) {
        for (int c = 0; c < tile.cols; ++c) {
          const int px = r * kTileSize + c;
          const PixelForward& pf = pixels[px];
          const int64_t pix = tile.pixel(r, c, width);
          const float* colour = &scratch.colour[static_cast<size_t>(px) * C];
          for (int ch = 0; ch < C; ++ch) image[pix * C + ch] = colour[ch] + pf.T * background[ch];
          pf.write_outputs(pix, alpha, depth, distortion, near, far, aux, layout, nearfar_k);
        }
      }
    }
  }
}

// Per-thread working memory of the backward pass, reused across tiles.
struct BackwardScratch {
  std::vector<PixelBackward> pixels;
  std::vector<PixelGrads> grads;
  std::vector<int> last;      // one past each pixel's last contributor (0 outside the image)
  std::vector<int> row_last;  // the largest `last` of each row
  std::vector<float> alpha, d_raw, feature_grad;
  std::vector<float> d_image;  // the tile's upstream image gradient, [pixel][C] (read per contributor)
  rows::RowCache cache;  // the current primitive's evaluation, kept for its gradient
  explicit BackwardScratch(int C)
      : pixels(rows::kTilePixels), grads(rows::kTilePixels), last(rows::kTilePixels), row_last(kTileSize),
        alpha(rows::kTilePixels), d_raw(rows::kTilePixels), feature_grad(C), d_image(rows::kTilePixels * C) {}
};

// Back to front, one primitive at a time, from the largest last contributor of the tile: its alpha
// over the rows of its box, each pixel's compositing step (which gives dL/d(raw alpha) per pixel),
// then the footprint's parameter gradient summed over those pixels in one vectorised pass.
template <typename Footprint, bool kDistortion>
void backward_tiles(const float* params, const PrimitiveSetup<Footprint>& setup, const float* features,
                    const float* depths, const float* coords, const float* background, int N, int C, int width, int height,
                    int nearfar_k, const AuxLayout layout, const float* near, const float* far, const float* aux,
                    const int* offsets, const int* ids, const UpstreamGrads& up, int threads, float* grad_buffers) {
  // grad_buffers: [threads][raster_grads_size(N, P, C)] in raster_grads' layout (rasterize_api.h),
  // uninitialised: each thread zeroes and fills its own slice, then the slices are summed into the
  // first (in thread order: reproducible).
  const int tiles = ((width + kTileSize - 1) / kTileSize) * ((height + kTileSize - 1) / kTileSize);
  constexpr int P = Footprint::kParams;
  const int64_t stride = raster_grads_size(N, P, C);
#pragma omp parallel num_threads(threads)
  {
    BackwardScratch scratch(C);
    TileBatch<Footprint> batch;
    float* g = grad_buffers + thread_id() * stride;
    std::fill(g, g + stride, 0.0f);
#ifdef _OPENMP
    const int team = omp_get_num_threads();  // <= threads
#else
    const int team = 1;
#endif
    float* g_params = g;
    float* g_features = g + static_cast<int64_t>(N) * P;
    float* g_depths = g_features + static_cast<int64_t>(N) * C;
    float* g_coords = g_depths + N;
    float* g_background = g_coords + N;
    // Static round-robin tiles: each thread always sums the same tiles in the same order, so
    // gradients are bit-for-bit reproducible for a given thread count (training resumes exactly).
#pragma omp for schedule(static, 1)
    for (int t = 0; t < tiles; ++t) {
      const TileGeometry tile(t, width, height);
      batch.gather(params, setup, depths, coords, ids, offsets[t], offsets[t + 1], tile);
      std::fill(scratch.last.begin(), scratch.last.end(), 0);
      std::fill(scratch.row_last.begin(), scratch.row_last.end(), 0);
      int k_end = 0;
      for (int r = 0; r < tile.rows; ++r) {
        for (int c = 0; c < tile.cols; ++c) {
          const int px = r * kTileSize + c;
          const int64_t pix = tile.pixel(r, c, width);
          const float* a = aux + pix * layout.dim;
          float* dimg = scratch.d_image.data() + px * C;
          for (int ch = 0; ch < C; ++ch) dimg[ch] = up.image.at(tile.y0 + r, tile.x0 + c, ch);
          PixelGrads& pg = scratch.grads[px];
          pg.load(tile.y0 + r, tile.x0 + c, pix, up, near, far, nearfar_k);
          float bg_dot = 0.0f;
          for (int ch = 0; ch < C; ++ch) {
            bg_dot += dimg[ch] * background[ch];
            g_background[ch] += dimg[ch] * a[kAuxTransmittance];
          }
          scratch.pixels[px].init(a, layout, bg_dot, pg, nearfar_k);
          scratch.last[px] = static_cast<int>(a[kAuxLastIndex]);
          scratch.row_last[r] = std::max(scratch.row_last[r], scratch.last[px]);
          k_end = std::max(k_end, scratch.last[px]);
        }
      }
      for (int k = k_end - 1; k >= 0; --k) {
        if (k >= kPrefetchAhead)
          prefetch_primitive<P>(batch.id[k - kPrefetchAhead], params, features, C, g_params, g_features);
        int r0 = batch.r0[k], r1 = batch.r1[k];
        while (r0 <= r1 && scratch.row_last[r0] <= k) ++r0;
        while (r1 >= r0 && scratch.row_last[r1] <= k) --r1;
        if (r0 > r1) continue;
        // The pixels this primitive may have contributed to: in its box, before the pixel's last
        // contributor, and (after the alpha call) with alpha >= 1/255, as in the forward pass.
        const RowMask box = columns_mask(batch.c0[k], batch.c1[k]);
        RowMask masks[kTileSize];
        for (int r = r0; r <= r1; ++r) {
          masks[r] = pending_mask(&scratch.last[r * kTileSize], k) & box;
        }
        const float* p = batch.params_of(k);
        FootprintRows<Footprint>::alpha(p, batch.threshold[k], tile.x0, tile.y0, r0, r1, masks, scratch.alpha.data(),
                                        &scratch.cache);
        std::fill(scratch.d_raw.begin() + r0 * kTileSize, scratch.d_raw.begin() + (r1 + 1) * kTileSize, 0.0f);
        const int id = batch.id[k];
        const float* f = features + static_cast<int64_t>(id) * C;
        float* gf = scratch.feature_grad.data();
        std::fill(gf, gf + C, 0.0f);
        float dz_sum = 0.0f, du_sum = 0.0f;
        bool contributed = false;
        for (int r = r0; r <= r1; ++r) {
          if (!masks[r]) continue;
          for_each_bit(visible_mask(&scratch.alpha[r * kTileSize]) & masks[r], [&](int c) {
            const int px = r * kTileSize + c;
            PixelBackward& pb = scratch.pixels[px];
            if (pb.position <= 0) return;
            const float* dimg = scratch.d_image.data() + px * C;
            float colour_dot = 0.0f;
            for (int ch = 0; ch < C; ++ch) colour_dot += dimg[ch] * f[ch];
            float d_raw, w, dz, du;
            if (!pb.template step<kDistortion>(scratch.alpha[px], batch.depth[k], batch.coord[k], colour_dot,
                                               scratch.grads[px], &d_raw, &w, &dz, &du))
              return;
            scratch.d_raw[px] = d_raw;
            for (int ch = 0; ch < C; ++ch) gf[ch] += w * dimg[ch];
            dz_sum += dz;
            du_sum += du;
            contributed = true;
          });
        }
        if (!contributed) continue;
        FootprintRows<Footprint>::grad(p, tile.x0, tile.y0, r0, r1, scratch.alpha.data(), scratch.d_raw.data(),
                                       scratch.cache, g_params + static_cast<int64_t>(id) * P);
        float* g_f = g_features + static_cast<int64_t>(id) * C;
        for (int ch = 0; ch < C; ++ch) g_f[ch] += gf[ch];
        g_depths[id] += dz_sum;
        g_coords[id] += du_sum;
      }
    }
    // (the tile loop's implicit barrier: every slice is complete)
#pragma omp for schedule(static)
    for (int64_t i = 0; i < stride; ++i) {
      float sum = grad_buffers[i];
      for (int t = 1; t < team; ++t) sum += grad_buffers[t * stride + i];
      grad_buffers[i] = sum;
    }
  }
}

template <typename Footprint>
std::vector<torch::Tensor> forward_impl(const torch::Tensor& params, const torch::Tensor& features,
                                        const torch::Tensor& depths, const OptionalCoords& coords,
                                        const torch::Tensor& bounds, const torch::Tensor& background,
                                        int W, int H, int k) {
  TORCH_CHECK(params.size(1) == Footprint::kParams, "params: wrong width for this footprint");
  const int C = static_cast<int>(features.size(1));
  PixelOutputs out(H, W, C, coords.has_value(), k, features.options());
  torch::Tensor offsets, ids;
  const PrimitiveSetup<Footprint> setup(params.data_ptr<float>(), bounds.data_ptr<float>(),
                                        static_cast<int>(params.size(0)), W, H);
  bin_primitives<Footprint>(params.data_ptr<float>(), setup, depths, W, H, &offsets, &ids);
  auto* tiles_fn = coords ? forward_tiles<Footprint, true> : forward_tiles<Footprint, false>;
  tiles_fn(params.data_ptr<float>(), setup, features.data_ptr<float>(), depths.data_ptr<float>(),
           coord_data(coords), background.data_ptr<float>(), C, W, H, k, out.layout,
           offsets.data_ptr<int>(), ids.data_ptr<int>(), out.image.data_ptr<float>(), out.alpha.data_ptr<float>(),
           out.depth.data_ptr<float>(), PixelOutputs::data(out.distortion), PixelOutputs::data(out.near),
           PixelOutputs::data(out.far), out.aux.data_ptr<float>());
  return out.with_tiles(offsets, ids);
}

template <typename Footprint>
std::vector<torch::Tensor> backward_impl(
    const torch::Tensor& params, const torch::Tensor& features, const torch::Tensor& depths,
    const OptionalCoords& coords, const torch::Tensor& bounds, const torch::Tensor& background, int W, int H,
    int k, const torch::Tensor& near, const torch::Tensor& far, const torch::Tensor& aux,
    const torch::Tensor& offsets, const torch::Tensor& ids, const torch::Tensor& d_image,
    const torch::Tensor& d_alpha, const torch::Tensor& d_depth, const torch::Tensor& d_distortion,
    const torch::Tensor& d_near, const torch::Tensor& d_far) {
  const int N = static_cast<int>(params.size(0));
  const int C = static_cast<int>(features.size(1));
  constexpr int P = Footprint::kParams;
  const int threads = thread_count();
  const int64_t stride = raster_grads_size(N, P, C);
  auto buffers = torch::empty({threads, stride}, features.options());
  const PrimitiveSetup<Footprint> setup(params.data_ptr<float>(), bounds.data_ptr<float>(), N, W, H);
  auto* tiles_fn = coords ? backward_tiles<Footprint, true> : backward_tiles<Footprint, false>;
  tiles_fn(
      params.data_ptr<float>(), setup, features.data_ptr<float>(), depths.data_ptr<float>(), coord_data(coords),
      background.data_ptr<float>(), N, C, W, H, k, AuxLayout(coords.has_value(), k), PixelOutputs::data(near),
      PixelOutputs::data(far), aux.data_ptr<float>(), offsets.data_ptr<int>(), ids.data_ptr<int>(),
      upstream_grads(params, H, W, C, coords.has_value(), d_image, d_alpha, d_depth, d_distortion, d_near, d_far),
      threads, buffers.data_ptr<float>());
  auto total = buffers[0];  // the sum of the threads' slices
  return raster_grads(total, N, P, C).outputs();
}

}  // namespace

std::vector<torch::Tensor> rasterize_forward_cpu(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features,
    const torch::Tensor& depths, const OptionalCoords& coords, const torch::Tensor& bounds,
    const torch::Tensor& background, int64_t width, int64_t height, int64_t nearfar_k) {
  check_raster_inputs("le3d cpu rasterizer", false, params, features, depths, coords, bounds, background, nearfar_k);
  const int W = static_cast<int>(width), H = static_cast<int>(height), k = static_cast<int>(nearfar_k);
  if (footprint == kFootprintGaussian)
    return forward_impl<GaussianFootprint>(params, features, depths, coords, bounds, background, W, H, k);
  TORCH_CHECK(footprint == kFootprintConvex, "unknown footprint kind");
  return forward_impl<ConvexFootprint>(params, features, depths, coords, bounds, background, W, H, k);
}

std::vector<torch::Tensor> rasterize_backward_cpu(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features,
    const torch::Tensor& depths, const OptionalCoords& coords, const torch::Tensor& bounds,
    const torch::Tensor& background, int64_t width, int64_t height, int64_t nearfar_k,
    const torch::Tensor& near, const torch::Tensor& far, const torch::Tensor& aux,
    const torch::Tensor& tile_offsets, const torch::Tensor& tile_ids, const torch::Tensor& d_image,
    const torch::Tensor& d_alpha, const torch::Tensor& d_depth, const torch::Tensor& d_distortion,
    const torch::Tensor& d_near, const torch::Tensor& d_far) {
  check_raster_inputs("le3d cpu rasterizer", false, params, features, depths, coords, bounds, background, nearfar_k);
  check_raster_saved("le3d cpu rasterizer", height, width, coords.has_value(), nearfar_k, near, far, aux);
  const int W = static_cast<int>(width), H = static_cast<int>(height), k = static_cast<int>(nearfar_k);
  if (footprint == kFootprintGaussian)
    return backward_impl<GaussianFootprint>(params, features, depths, coords, bounds, background, W, H, k,
                                            near, far, aux, tile_offsets, tile_ids, d_image,
                                            d_alpha, d_depth, d_distortion, d_near, d_far);
  TORCH_CHECK(footprint == kFootprintConvex, "unknown footprint kind");
  return backward_impl<ConvexFootprint>(params, features, depths, coords, bounds, background, W, H, k, near,
                                        far, aux, tile_offsets, tile_ids, d_image, d_alpha, d_depth,
                                        d_distortion, d_near, d_far);
}

}  // namespace le3d
