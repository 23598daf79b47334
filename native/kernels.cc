// Kernel bodies: OpenBLAS for the matrix products (attention's backward per head among them; the
// products on weights packed once, which attention's forward uses too, are in packed.cc), plain
// vectorised loops for the element-wise parts.
//
// Threads: OpenBLAS runs the projections multi-threaded. The element-wise kernels are single-threaded
// on purpose: a second thread pool (OpenMP) next to OpenBLAS's own on a 2-core machine made them
// contend (one pool's spinning workers stealing the core the other needs), and once vectorised these
// kernels are a small share of a layer's time. Attention splits its own work over the thread pool
// (pool.h) while OpenBLAS is held at one thread (run_items). Sums run in double where it costs little.
#include "kernels.h"
#include "pool.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

// Hot loops get an x86-64-v3 (AVX2+FMA) clone picked at load time where the CPU has it (ifunc), so the
// binary stays portable to any x86-64 while using 8-wide vectors here.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FK_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FK_VECTOR_CLONES
#endif

namespace fk {

static int g_threads = 1;

// exp(x) in float, written so the compiler can vectorise it (no libm call): x = n ln2 + r with
// |r| <= ln2/2, exp(r) by its degree-7 Taylor polynomial (truncation < 1e-8 relative), 2^n built in
// the exponent bits. x > 88 gives +inf, x < -87 gives 0 (within 2e-38), NaN stays NaN.
__attribute__((always_inline)) static inline float fast_exp(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;  // ln2 split so n*kLn2Hi is exact
  float xc = x > 88.0f ? 88.0f : x;  // 2^n must stay a normal float: n in [-126, 127]
  xc = xc < -87.0f ? -87.0f : xc;
  xc = x == x ? xc : 0.0f;  // NaN: compute on 0 (no undefined float-to-int conversion), restored below
  // Round to nearest by the 1.5 * 2^23 trick (exact for |x log2e| < 2^22).
  const float fn = (xc * kLog2e + 12582912.0f) - 12582912.0f;
  const float r = (xc - fn * kLn2Hi) - fn * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (uint32_t)((int32_t)fn + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  float y = p * scale;
  y = x > 88.0f ? INFINITY : y;  // exp overflows float at 88.72; inputs this large never matter here
  y = x < -87.0f ? 0.0f : y;
  y = x == x ? y : x;
  return y;
}

void set_threads(int n) {
  g_threads = n;
  openblas_set_num_threads(n);
  pool_set_workers(n - 1);
}

int get_threads() { return g_threads; }

std::string info() {
  std::string s = openblas_get_config();
  s += " (threads " + std::to_string(g_threads) + ")";
  return s;
}

void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sgemv(bool trans, int M, int N, float alpha, const float* A, int lda, const float* x, float beta, float* y) {
  if (M == 0 || N == 0) {
    // BLAS does nothing here, but y = beta * y is still owed for the empty product.
    int ny = trans ? N : M;
    for (int i = 0; i < ny; i++) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
    return;
  }
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
}

FK_VECTOR_CLONES
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int T, int C, float eps) {
  for (int t = 0; t < T; t++) {
    const float* xr = x + (int64_t)t * C;
    float* orow = out + (int64_t)t * C;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int c = 0; c < C; c++) ss += (double)xr[c] * xr[c];
    const float r = (float)(1.0 / std::sqrt(ss / C + (double)eps));
    rstd[t] = r;
#pragma omp simd
    for (int c = 0; c < C; c++) orow[c] = w[c] * (xr[c] * r);
  }
}

FK_VECTOR_CLONES
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int T, int C) {
  // dw sums over rows in double; scratch kept between calls (it only grows).
  static thread_local std::vector<double> dwAcc;
  dwAcc.assign(C, 0.0);
  double* acc = dwAcc.data();
  for (int t = 0; t < T; t++) {
    const int64_t o = (int64_t)t * C;
    const float r = rstd[t];
    double gx = 0;
#pragma omp simd reduction(+ : gx)
    for (int c = 0; c < C; c++) gx += (double)(dout[o + c] * w[c]) * x[o + c];
    const float coef = (float)((double)r * r * gx / C);
#pragma omp simd
    for (int c = 0; c < C; c++) {
      dx[o + c] = r * (dout[o + c] * w[c] - x[o + c] * coef);
      acc[c] += (double)(dout[o + c] * x[o + c]) * r;
    }
  }
  for (int c = 0; c < C; c++) dw[c] += (float)acc[c];
}

FK_VECTOR_CLONES
void rope(float* x, const float* cos, const float* sin, int T, int H, int D, int pos0, bool inverse) {
  const int half = D / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  for (int t = 0; t < T; t++) {
    const float* ct = cos + (int64_t)(pos0 + t) * half;
    const float* st = sin + (int64_t)(pos0 + t) * half;
    for (int h = 0; h < H; h++) {
      float* x1 = x + ((int64_t)t * H + h) * D;
      float* x2 = x1 + half;
#pragma omp simd
      for (int i = 0; i < half; i++) {
        const float c = ct[i], s = sign * st[i];
        const float a = x1[i], b = x2[i];
        x1[i] = a * c - b * s;
        x2[i] = b * c + a * s;
      }
    }
  }
}

// Causal softmax in place over one row of scores times `scale`: keys 0..last are kept, the rest set to 0.
FK_VECTOR_CLONES
static void softmax_row(float* p, int last, int S, float scale) {
  float mx = -INFINITY;  // the largest score before scaling (scale > 0)
#pragma omp simd reduction(max : mx)
  for (int s = 0; s <= last; s++) mx = p[s] > mx ? p[s] : mx;
  double sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int s = 0; s <= last; s++) {
    const float e = fast_exp((p[s] - mx) * scale);
    p[s] = e;
    sum += e;
  }
  const float inv = (float)(1.0 / sum);
#pragma omp simd
  for (int s = 0; s <= last; s++) p[s] *= inv;
  for (int s = last + 1; s < S; s++) p[s] = 0.0f;
}

// Attention is computed in blocks of query rows so that a block's products stop at the last key
// its rows can see: with past = 0 this skips most of the masked upper triangle.
static const int kRowBlock = 64;

// Attention's products are many small ones (64-wide heads, one row block at a time), which a
// multi-threaded BLAS splits badly (measured slower on 2 threads than on 1). So attention splits its
// own work instead: independent items (a head and a row block forward, a head backward) are dealt
// to the thread pool (pool.h), each running single-threaded products. Every item computes exactly
// what it would alone, in the same order, so results do not depend on the number of threads.
template <typename F>
static void run_items(int n, F item) {
  openblas_set_num_threads(1);
  parallel_items(n, item);
  openblas_set_num_threads(g_threads);
}

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       int T, int past, int H, int KVH, int D) {
  const int S = past + T, rep = H / KVH;
  const float scale = 1.0f / std::sqrt((float)D);
  const int blocks = (T + kRowBlock - 1) / kRowBlock;
  // Each key/value head packed once for the packed products (packed.cc), which a head's few query
  // rows would otherwise pay OpenBLAS to pack again per head and row block: keys as the "weights" of
  // the scores (N = keys, K = D), values transposed as those of the output (N = D, K = keys).
  const int64_t kSize = packed_size(S, D), vSize = packed_size(D, S);
  static thread_local std::vector<float> packs;  // the caller's (workers only write through kp/vp)
  if (packs.size() < (size_t)(kSize + vSize) * KVH) packs.resize((size_t)(kSize + vSize) * KVH);
  float* kp = packs.data();
  float* vp = kp + kSize * KVH;
  run_items(2 * KVH, [&](int item) {
    const int g = item / 2;
    if (item % 2 == 0) pack_strided(kp + kSize * g, k + (int64_t)g * D, S, D, KVH * D);
    else pack_transposed(vp + vSize * g, v + (int64_t)g * D, D, S, KVH * D);
  });
  // Item = (head h, row block b): it writes its own rows of out and probs only.
  run_items(H * blocks, [&](int item) {
    const int h = item / blocks, t0 = (item % blocks) * kRowBlock, g = h / rep;
    const int rows = std::min(kRowBlock, T - t0), keys = past + t0 + rows;
    float* Pb = probs + (int64_t)h * T * S + (int64_t)t0 * S;
    // scores [rows, keys] = q_h[t0:t0+rows] [rows,D] @ k_g[:keys]^T [D,keys] (scaled in the softmax)
    gemm_packed_serial(rows, keys, D, q + (int64_t)t0 * H * D + (int64_t)h * D, H * D, kp + kSize * g,
                       (int64_t)D * kPackedPanel, Pb, S);
    for (int i = 0; i < rows; i++) softmax_row(Pb + (int64_t)i * S, past + t0 + i, S, scale);
    // out_h[t0:t0+rows] [rows,D] = P [rows,keys] @ v_g[:keys] [keys,D]
    gemm_packed_serial(rows, D, keys, Pb, S, vp + vSize * g, (int64_t)S * kPackedPanel, out + (int64_t)t0 * H * D + (int64_t)h * D,
                       H * D);
  });
}

// dS = scale * P * (dP - sum_s P dP) over one row, in place on dP; 0 beyond the causal limit.
FK_VECTOR_CLONES
static void softmax_backward_row(float* d, const float* p, int last, int S, float scale) {
  double pdp = 0;
#pragma omp simd reduction(+ : pdp)
  for (int s = 0; s <= last; s++) pdp += (double)p[s] * d[s];
  const float c = (float)pdp;
#pragma omp simd
  for (int s = 0; s <= last; s++) d[s] = scale * p[s] * (d[s] - c);
  for (int s = last + 1; s < S; s++) d[s] = 0.0f;
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, int T, int past, int H,
                        int KVH, int D) {
  const int S = past + T, rep = H / KVH;
  const float scale = 1.0f / std::sqrt((float)D);
  // Item = head h: its dq columns are its own; its key/value gradients go to a buffer of its own
  // [S, D] each, added to the shared dk/dv afterwards in head order (a fixed order of sums).
  // Scratch (dS per head, the per-head gradients) is kept between calls; it only grows.
  static thread_local std::vector<float> scratch;
  const size_t dsSize = (size_t)std::min(kRowBlock, T) * S, kvSize = (size_t)S * D;
  const size_t per = dsSize + 2 * kvSize;
  if (scratch.size() < per * H) scratch.resize(per * H);
  float* base = scratch.data();  // the calling thread's scratch (a worker's thread_local would be its own)
  run_items(H, [&](int h) {
    float* dS = base + per * h;
    float* dkh = dS + dsSize;
    float* dvh = dkh + kvSize;
    std::fill(dkh, dkh + 2 * kvSize, 0.0f);
    const int64_t kvOff = (int64_t)(h / rep) * D;
    const float* Ph = probs + (int64_t)h * T * S;
    for (int t0 = 0; t0 < T; t0 += kRowBlock) {
      const int rows = std::min(kRowBlock, T - t0), keys = past + t0 + rows;
      const int64_t qOff = (int64_t)t0 * H * D + (int64_t)h * D;
      const float* Pb = Ph + (int64_t)t0 * S;
      // dP [rows,keys] = dout_h [rows,D] @ v_g^T [D,keys]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, keys, D, 1.0f, dout + qOff, H * D,
                  v + kvOff, KVH * D, 0.0f, dS, keys);
      for (int i = 0; i < rows; i++) softmax_backward_row(dS + (int64_t)i * keys, Pb + (int64_t)i * S, past + t0 + i, keys, scale);
      // dq_h [rows,D] = dS [rows,keys] @ k_g [keys,D]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, keys, 1.0f, dS, keys, k + kvOff, KVH * D,
                  0.0f, dq + qOff, H * D);
      // dk_h [keys,D] += dS^T [keys,rows] @ q_h [rows,D]
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, D, rows, 1.0f, dS, keys, q + qOff, H * D,
                  1.0f, dkh, D);
      // dv_h [keys,D] += P^T [keys,rows] @ dout_h [rows,D]
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, keys, D, rows, 1.0f, Pb, S, dout + qOff, H * D,
                  1.0f, dvh, D);
    }
  });
  for (int h = 0; h < H; h++) {
    const float* dkh = base + per * h + dsSize;
    const float* dvh = dkh + kvSize;
    const int64_t kvOff = (int64_t)(h / rep) * D;
    for (int s = 0; s < S; s++) {
      float* dkr = dk + (int64_t)s * KVH * D + kvOff;
      float* dvr = dv + (int64_t)s * KVH * D + kvOff;
#pragma omp simd
      for (int d = 0; d < D; d++) { dkr[d] += dkh[(int64_t)s * D + d]; dvr[d] += dvh[(int64_t)s * D + d]; }
    }
  }
}

FK_VECTOR_CLONES
void swiglu_forward(float* out, const float* gate, const float* up, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) {
    const float g = gate[i];
    out[i] = g / (1.0f + fast_exp(-g)) * up[i];
  }
}

FK_VECTOR_CLONES
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int n) {
#pragma omp simd
  for (int i = 0; i < n; i++) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float sig = 1.0f / (1.0f + fast_exp(-g));
    dgate[i] = d * u * sig * (1.0f + g * (1.0f - sig));
    dup[i] = d * g * sig;
  }
}

void axpy(int n, float alpha, const float* x, float* y) {
  if (n == 0) return;
  cblas_saxpy(n, alpha, x, 1, y, 1);
}

}  // namespace fk
