// Constants and host/device qualifiers shared by the CPU and CUDA backends.
// Every rule of the rasterizer that both backends and the PyTorch reference must agree on
// is named here once (the Python twin is le3d/raster/constants.py).
#pragma once
#include <cmath>

#if defined(__CUDACC__)
#define LE3D_HD __host__ __device__ __forceinline__
#define LE3D_UNROLL _Pragma("unroll")  // nvcc: unroll the next loop (constant indices keep arrays in registers)
#else
#define LE3D_HD inline
#define LE3D_UNROLL  // host compilers decide for themselves
#endif

namespace le3d {

// exp2, log2 and division in the per-pixel loops: on the GPU the hardware approximations, flushing
// denormals to zero (ex2 / lg2 / rcp.approx.ftz: a few ulp, about 5e-7 relative for the exponents
// alpha needs; gsplat builds everything with -use_fast_math, which implies the same). Without .ftz,
// __expf / __logf / __fdividef wrap each MUFU instruction in a denormal range check and rescale
// (two to four more instructions each, several times per convex-pixel pair);
// nothing here needs denormals (an exponential below 2^-126 adds nothing to a sum >= 1 or to an
// alpha >= 1/255). On the host the C library's. Thresholds and bounds keep the precise versions.
// Building with LE3D_PRECISE_GPU_MATH (le3d/_build.py passes it when the environment variable of
// that name is 1) makes the GPU use the precise ones too. LE3D_EMULATE_GPU_FAST_MATH (tests/simt, the CUDA
// kernels run on the host) takes the GPU's code paths (a division as a reciprocal and a product, the
// near/far weight sums' reciprocals) with the host's exp2 and log2.
#if defined(__CUDA_ARCH__) && !defined(LE3D_PRECISE_GPU_MATH)
#define LE3D_GPU_FAST_MATH 1
#define LE3D_GPU_MUFU 1
#elif defined(LE3D_EMULATE_GPU_FAST_MATH) && !defined(__CUDACC__)
#define LE3D_GPU_FAST_MATH 1
#define LE3D_GPU_MUFU 0
#else
#define LE3D_GPU_FAST_MATH 0
#define LE3D_GPU_MUFU 0
#endif
// 2^x and log2 x: the MUFU ops themselves on the GPU (the footprints' pixel forms are in base 2 for them).
LE3D_HD float pixel_exp2(float x) {
#if LE3D_GPU_MUFU
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return exp2f(x);
#endif
}
LE3D_HD float pixel_log2(float x) {
#if LE3D_GPU_MUFU
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return log2f(x);
#endif
}
LE3D_HD float pixel_div(float a, float b) {
#if LE3D_GPU_MUFU
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(b));
  return a * r;
#elif LE3D_GPU_FAST_MATH
  return a * (1.0f / b);
#else
  return a / b;
#endif
}

// False for NaN and +-inf, for float and double on both sides of the CUDA boundary (which spell
// isfinite differently): x - x is NaN exactly then.
template <typename T>
LE3D_HD bool is_finite(T x) {
  return x - x == T(0);
}

constexpr int kTileSize = 16;             // tiles are kTileSize x kTileSize pixels
constexpr float kAlphaMin = 1.0f / 255.0f;  // a primitive adds nothing to a pixel below this alpha
constexpr float kAlphaMax = 0.99f;        // alpha clamp (keeps 1 - alpha invertible in backward)
constexpr float kTransmittanceMin = 1e-4f;  // stop a pixel before T would fall below this
constexpr int kNearFarMaxK = 16;          // largest nearfar_k (size of the per-pixel ring buffer)
constexpr int kMaxChannels = 64;          // largest feature dimension C

// Per-pixel values saved by the forward pass for the backward pass: aux[H, W, AuxLayout::dim]. Every
// render keeps slots 0-2; the running sums of the distortion and the near/far weights only when the
// render has those outputs, so an RGB+D render keeps 3 floats a pixel instead of 8 (at 1080p: 25 MB
// instead of 66).
enum AuxSlot {
  kAuxTransmittance = 0,  // T after the last contributor
  kAuxLastIndex = 1,      // one past the last contributor, counted from the tile list's start
                          // (tile-local, so the float stays exact for any scene size)
  kAuxCount = 2,          // number of contributors (the backward's walk stops after the first)
};

// Where the optional slots sit (-1: absent), from the render's outputs: with a distortion coordinate,
// sum w, sum w u and sum_k w_k (u_k W_<k - U_<k) (before the absolute value) from `distortion` on;
// with nearfar_k > 0, the weight sums of the first and of the last k contributors from `nearfar` on.
struct AuxLayout {
  int distortion, nearfar, dim;

  LE3D_HD AuxLayout(bool has_distortion, int nearfar_k)
      : distortion(has_distortion ? 3 : -1),
        nearfar(nearfar_k > 0 ? (has_distortion ? 6 : 3) : -1),
        dim(3 + (has_distortion ? 3 : 0) + (nearfar_k > 0 ? 2 : 0)) {}
};
enum AuxDistortionSlot { kAuxWeightSum = 0, kAuxCoordSum = 1, kAuxDistortionSigned = 2 };  // from .distortion
enum AuxNearFarSlot { kAuxNearWeight = 0, kAuxFarWeight = 1 };                              // from .nearfar

enum FootprintKind { kFootprintGaussian = 0, kFootprintConvex = 1 };

}  // namespace le3d
