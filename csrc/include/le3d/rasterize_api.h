// Entry points of the tile rasterizer, one per backend (CPU in cpu/, CUDA in cuda/).
// Inputs (float32, contiguous, same device):
//   params [N, P]  footprint parameters (see footprint_*.h), P = footprint's kParams
//   features [N, C], depths [N] (view-space z: sort key and depth output),
//   coords [N] distortion coordinate u, or none (std::nullopt, None from Python): the render then has no
//   distortion output. Explicit rather than "an empty tensor means none": with no primitives the
//   coordinate is itself an empty [0] tensor. bounds [N, 4], background [C].
// forward returns {image [H,W,C], alpha, depth, distortion, near, far [H,W], aux [H,W,AuxLayout.dim],
//   tile_offsets [tiles+1] int32, tile_ids [M] int32}; distortion (without coords) and near, far
//   (nearfar_k = 0) are empty.
// backward takes the forward's inputs (bounds included: the CPU evaluates only the pixels a
// primitive's bound reaches) and returns {d_params, d_features, d_depths, d_coords, d_background}.
// Its upstream gradients d_image, d_alpha, d_depth, d_distortion, d_near, d_far may each be empty (zero)
// and have any strides (upstream_map).
#pragma once
#include <torch/extension.h>

#include <optional>
#include <vector>

#include "le3d/common.h"
#include "le3d/composite.h"  // PixelGradMap

namespace le3d {

// The most tile entries (primitive, tile) a render may have: both backends index them with int, and the
// CUDA grids round the count up to whole 256-thread blocks.
constexpr int64_t kMaxTileEntries = (int64_t{1} << 31) - 256;

using OptionalCoords = std::optional<torch::Tensor>;

// The entry points' own input checks, alike for both backends (`cuda`: which one is asking). The Python
// side has checked the user's inputs already; these guard the contract above (coords included).
inline void check_raster_inputs(const char* who, bool cuda, const torch::Tensor& params,
                                const torch::Tensor& features, const torch::Tensor& depths,
                                const OptionalCoords& coords, const torch::Tensor& bounds,
                                const torch::Tensor& background, int64_t nearfar_k) {
  std::vector<const torch::Tensor*> tensors{&params, &features, &depths, &bounds, &background};
  if (coords) tensors.push_back(&*coords);
  for (const auto* t : tensors) {
    TORCH_CHECK(cuda ? t->is_cuda() : t->device().is_cpu(), who, ": tensors must be on ", cuda ? "a CUDA device" : "the CPU");
    TORCH_CHECK(t->device() == params.device(), who, ": tensors must share one device");
    TORCH_CHECK(t->scalar_type() == torch::kFloat32, who, ": tensors must be float32");
    TORCH_CHECK(t->is_contiguous(), who, ": tensors must be contiguous");
  }
  TORCH_CHECK(features.dim() == 2 && features.size(0) == params.size(0) && features.size(1) >= 1 &&
                  features.size(1) <= kMaxChannels, "features: [N, 1..64]");
  TORCH_CHECK(nearfar_k >= 0 && nearfar_k <= kNearFarMaxK, "nearfar_k out of range");
  TORCH_CHECK(depths.numel() == params.size(0), "depths: [N]");
  TORCH_CHECK(!coords || coords->numel() == params.size(0), "coords: [N] or none");
  TORCH_CHECK(bounds.dim() == 2 && bounds.size(0) == params.size(0) && bounds.size(1) == 4, "bounds: [N, 4]");
  TORCH_CHECK(background.numel() == features.size(1), "background: [C]");
}

// The backward entry points' check of what their forward saved (read without bounds by the kernels).
inline void check_raster_saved(const char* who, int64_t H, int64_t W, bool has_distortion, int64_t nearfar_k,
                               const torch::Tensor& near, const torch::Tensor& far, const torch::Tensor& aux) {
  const int64_t dim = AuxLayout(has_distortion, static_cast<int>(nearfar_k)).dim;
  TORCH_CHECK(aux.dim() == 3 && aux.size(0) == H && aux.size(1) == W && aux.size(2) == dim, who,
              ": aux must be the forward's, [H, W, ", dim, "] for this render");
  for (const auto* t : {&near, &far}) {
    TORCH_CHECK(nearfar_k == 0 || (t->dim() == 2 && t->size(0) == H && t->size(1) == W), who,
                ": near and far must be the forward's [H, W] outputs");
  }
  for (const auto* t : {&near, &far, &aux}) {
    TORCH_CHECK(t->scalar_type() == torch::kFloat32 && t->is_contiguous() && t->device() == aux.device(), who,
                ": near, far and aux must be contiguous float32 on the primitives' device");
  }
}

// Per-pixel outputs of a forward pass (allocated the same way by every backend). Only the render's own
// outputs get memory: distortion with a distortion coordinate, near and far with nearfar_k > 0; the
// others are empty tensors (null pointers: `data`). aux holds AuxLayout's slots.
struct PixelOutputs {
  AuxLayout layout;  // aux's slots: the kernels take it from here (the render's, not a kernel's template flag)
  torch::Tensor image, alpha, depth, distortion, near, far, aux;

  PixelOutputs(int H, int W, int C, bool has_distortion, int nearfar_k, const torch::TensorOptions& opts)
      : layout(has_distortion, nearfar_k), image(torch::empty({H, W, C}, opts)), alpha(torch::empty({H, W}, opts)),
        depth(torch::empty({H, W}, opts)), distortion(has_distortion ? torch::empty({H, W}, opts) : absent(opts)),
        near(nearfar_k > 0 ? torch::empty({H, W}, opts) : absent(opts)),
        far(nearfar_k > 0 ? torch::empty({H, W}, opts) : absent(opts)),
        aux(torch::empty({H, W, layout.dim}, opts)) {}

  static torch::Tensor absent(const torch::TensorOptions& opts) { return torch::empty({0}, opts); }
  static float* data(const torch::Tensor& t) { return t.numel() ? t.data_ptr<float>() : nullptr; }

  std::vector<torch::Tensor> with_tiles(const torch::Tensor& offsets, const torch::Tensor& ids) const {
    return {image, alpha, depth, distortion, near, far, aux, offsets, ids};
  }
};

// The coordinate's data as the kernels read it: null without one, or with no primitives (nothing reads it).
inline const float* coord_data(const OptionalCoords& coords) { return coords ? PixelOutputs::data(*coords) : nullptr; }

// The gradients of a backward pass as views of one flat buffer, laid out alike by both backends:
// d_params [N, P], d_features [N, C], d_depths [N], d_coords [N], d_background [C].
struct RasterGrads {
  torch::Tensor params, features, depths, coords, background;
  std::vector<torch::Tensor> outputs() const { return {params, features, depths, coords, background}; }
};
inline int64_t raster_grads_size(int64_t N, int64_t P, int64_t C) { return N * (P + C + 2) + C; }
inline RasterGrads raster_grads(const torch::Tensor& flat, int64_t N, int64_t P, int64_t C) {
  return {flat.narrow(0, 0, N * P).view({N, P}), flat.narrow(0, N * P, N * C).view({N, C}),
          flat.narrow(0, N * (P + C), N), flat.narrow(0, N * (P + C + 1), N), flat.narrow(0, N * (P + C + 2), C)};
}

// An upstream gradient as the kernels read it (composite.h's PixelGradMap): its data and strides, any
// strides (an expanded gradient is read in place), or null data when it is empty (zeros). `channels` > 0:
// an [H, W, channels] image, else an [H, W] map; float32 on `like`'s device.
inline PixelGradMap upstream_map(const char* name, const torch::Tensor& g, const torch::Tensor& like, int64_t H,
                                 int64_t W, int64_t channels = 0) {
  if (g.numel() == 0) return PixelGradMap{};
  const bool image = channels > 0;
  TORCH_CHECK(g.dim() == (image ? 3 : 2) && g.size(0) == H && g.size(1) == W && (!image || g.size(2) == channels),
              "le3d rasterizer backward: ", name, " must be shaped like its output (", image ? "[H, W, C]" : "[H, W]",
              ") or empty");
  TORCH_CHECK(g.scalar_type() == torch::kFloat32 && g.device() == like.device(), "le3d rasterizer backward: ", name,
              " must be float32 on the primitives' device");
  return PixelGradMap{g.data_ptr<float>(), g.stride(0), g.stride(1), image ? g.stride(2) : 0};
}

// A backward pass's upstream gradients as maps (distortion: false when the render had no distortion
// coordinate, whose distortion output is then not a function of the primitives: its gradient is ignored).
inline UpstreamGrads upstream_grads(const torch::Tensor& like, int64_t H, int64_t W, int64_t C, bool distortion,
                                    const torch::Tensor& d_image, const torch::Tensor& d_alpha,
                                    const torch::Tensor& d_depth, const torch::Tensor& d_distortion,
                                    const torch::Tensor& d_near, const torch::Tensor& d_far) {
  return UpstreamGrads{upstream_map("d_image", d_image, like, H, W, C),
                       upstream_map("d_alpha", d_alpha, like, H, W),
                       upstream_map("d_depth", d_depth, like, H, W),
                       distortion ? upstream_map("d_distortion", d_distortion, like, H, W) : PixelGradMap{},
                       upstream_map("d_near", d_near, like, H, W),
                       upstream_map("d_far", d_far, like, H, W)};
}

// One signature per direction, shared by the CPU and CUDA entry points.
using RasterizeForward = std::vector<torch::Tensor>(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features, const torch::Tensor& depths,
    const OptionalCoords& coords, const torch::Tensor& bounds, const torch::Tensor& background, int64_t width,
    int64_t height, int64_t nearfar_k);

using RasterizeBackward = std::vector<torch::Tensor>(
    const torch::Tensor& params, int64_t footprint, const torch::Tensor& features, const torch::Tensor& depths,
    const OptionalCoords& coords, const torch::Tensor& bounds, const torch::Tensor& background, int64_t width,
    int64_t height, int64_t nearfar_k, const torch::Tensor& near, const torch::Tensor& far,
    const torch::Tensor& aux, const torch::Tensor& tile_offsets, const torch::Tensor& tile_ids,
    const torch::Tensor& d_image, const torch::Tensor& d_alpha, const torch::Tensor& d_depth,
    const torch::Tensor& d_distortion, const torch::Tensor& d_near, const torch::Tensor& d_far);

RasterizeForward rasterize_forward_cpu;
RasterizeBackward rasterize_backward_cpu;
// For tests (cpu/footprint_pixels_cpu.cpp): the CUDA kernels' per-pixel footprint functions run on the
// host over a W x H grid of pixel centres: {raw alpha [N, H, W], d_params [N, P]}, the gradient of
// sum(d_raw * raw alpha) over the pairs a kernel would composite (raw alpha >= 1/255).
std::vector<torch::Tensor> footprint_pixels_cpu(const torch::Tensor& params, int64_t footprint, int64_t width,
                                                int64_t height, const torch::Tensor& d_raw);
#ifdef LE3D_WITH_CUDA
RasterizeForward rasterize_forward_cuda;
RasterizeBackward rasterize_backward_cuda;
#endif

}  // namespace le3d
