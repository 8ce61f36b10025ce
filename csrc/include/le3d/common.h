// Constants and host/device qualifiers shared by the CPU and CUDA backends.
// Every rule of the rasterizer that both backends and the PyTorch reference must agree on
// is named here once (the Python twin is le3d/raster/constants.py).
#pragma once

#if defined(__CUDACC__)
#define LE3D_HD __host__ __device__ __forceinline__
#else
#define LE3D_HD inline
#endif

namespace le3d {

constexpr int kTileSize = 16;             // tiles are kTileSize x kTileSize pixels
constexpr float kAlphaMin = 1.0f / 255.0f;  // a primitive adds nothing to a pixel below this alpha
constexpr float kAlphaMax = 0.99f;        // alpha clamp (keeps 1 - alpha invertible in backward)
constexpr float kTransmittanceMin = 1e-4f;  // stop a pixel before T would fall below this
constexpr int kNearFarMaxK = 16;          // largest nearfar_k (size of the per-pixel ring buffer)
constexpr int kMaxChannels = 64;          // largest feature dimension C

// Per-pixel values saved by the forward pass for the backward pass (aux[H, W, kAuxDim]).
enum AuxSlot {
  kAuxTransmittance = 0,  // T after the last contributor
  kAuxLastIndex = 1,      // one past the last contributor, counted from the tile list's start
                          // (tile-local, so the float stays exact for any scene size)
  kAuxCount = 2,          // number of contributors
  kAuxWeightSum = 3,      // sum w
  kAuxCoordSum = 4,       // sum w u (distortion coordinate)
  kAuxDistortionSigned = 5,  // sum_k w_k (u_k W_<k - U_<k), before the absolute value
  kAuxNearWeight = 6,     // sum of w over the first k contributors
  kAuxFarWeight = 7,      // sum of w over the last k contributors
  kAuxDim = 8
};

enum FootprintKind { kFootprintGaussian = 0, kFootprintConvex = 1 };

}  // namespace le3d
