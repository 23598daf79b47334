// Products with weights packed once: C[M,N] = A[M,K] W^T for a W[N,K] that never changes (the frozen
// layers' projections). OpenBLAS packs W again at every call, which at the few rows of a step's new
// tokens costs as much as the product; packed once, the product streams W from memory and runs near
// the FMA units' rate.
//
// Layout: W's rows in panels of 16 (16 output columns), each panel [K][16] (k-major), the last one
// padded with zero rows. Every output element is ONE chain of fused multiply-adds over k = 0..K-1,
// from 0: its value depends on its row of A and its row of W only, never on M, the rows beside it,
// the blocking or the threads. The AVX-512, AVX2 and portable (std::fma) paths give the same bits.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels.h"
#include "pool.h"

namespace fk {
namespace {

constexpr int kPanel = kPackedPanel;  // two 8-wide vectors
constexpr int kRows = 6;    // rows of A per micro-tile: 12 accumulators + 2 weights + 1 broadcast

// C rows [R, cols] (cols <= 16) = A rows [R, K] (stride lda) x panel [K][16].
template <int R>
__attribute__((target("avx2,fma"), always_inline)) inline void tile_avx2(const float* A, int lda, const float* P,
                                                                         int K, float* C, int ldc, int cols) {
  __m256 c0[R], c1[R];
  for (int i = 0; i < R; i++) c0[i] = c1[i] = _mm256_setzero_ps();
  for (int k = 0; k < K; k++) {
    const __m256 w0 = _mm256_loadu_ps(P + (int64_t)k * kPanel), w1 = _mm256_loadu_ps(P + (int64_t)k * kPanel + 8);
    for (int i = 0; i < R; i++) {
      const __m256 a = _mm256_broadcast_ss(A + (int64_t)i * lda + k);
      c0[i] = _mm256_fmadd_ps(a, w0, c0[i]);
      c1[i] = _mm256_fmadd_ps(a, w1, c1[i]);
    }
  }
  for (int i = 0; i < R; i++) {
    float* c = C + (int64_t)i * ldc;
    if (cols == kPanel) {
      _mm256_storeu_ps(c, c0[i]);
      _mm256_storeu_ps(c + 8, c1[i]);
    } else {
      alignas(32) float t[kPanel];
      _mm256_store_ps(t, c0[i]);
      _mm256_store_ps(t + 8, c1[i]);
      std::memcpy(c, t, sizeof(float) * cols);
    }
  }
}

// One panel over rows [m0, m1) of A.
__attribute__((target("avx2,fma"))) void panel_avx2(const float* A, int lda, const float* P, int K, float* C,
                                                    int ldc, int cols, int m0, int m1) {
  int i = m0;
  for (; i + kRows <= m1; i += kRows) tile_avx2<kRows>(A + (int64_t)i * lda, lda, P, K, C + (int64_t)i * ldc, ldc, cols);
  const float* a = A + (int64_t)i * lda;
  float* c = C + (int64_t)i * ldc;
  switch (m1 - i) {
    case 5: tile_avx2<5>(a, lda, P, K, c, ldc, cols); break;
    case 4: tile_avx2<4>(a, lda, P, K, c, ldc, cols); break;
    case 3: tile_avx2<3>(a, lda, P, K, c, ldc, cols); break;
    case 2: tile_avx2<2>(a, lda, P, K, c, ldc, cols); break;
    case 1: tile_avx2<1>(a, lda, P, K, c, ldc, cols); break;
    default: break;
  }
}

// AVX-512: a panel row is one 16-wide vector, and a tile covers two panels (32 columns) so that
// 12 accumulators hide the FMA latency; fewer instructions per FLOP than AVX2 (Zen 4 runs 512-bit
// FMAs at the same FLOP rate, but its front end no longer limits). Same chains, same bits.
template <int R, int NP>
__attribute__((target("avx512f"), always_inline)) inline void tile_avx512(const float* A, int lda, const float* P, int K,
                                                                        int64_t stride, float* C, int ldc, int cols) {
  __m512 c[NP][R];
  for (int p = 0; p < NP; p++)
    for (int i = 0; i < R; i++) c[p][i] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    __m512 w[NP];
    for (int p = 0; p < NP; p++) w[p] = _mm512_loadu_ps(P + p * stride + (int64_t)k * kPanel);
    for (int i = 0; i < R; i++) {
      const __m512 a = _mm512_set1_ps(A[(int64_t)i * lda + k]);
      for (int p = 0; p < NP; p++) c[p][i] = _mm512_fmadd_ps(a, w[p], c[p][i]);
    }
  }
  for (int p = 0; p < NP; p++) {
    const int n = std::min(kPanel, cols - p * kPanel);
    const __mmask16 mask = (__mmask16)((1u << n) - 1);
    for (int i = 0; i < R; i++) _mm512_mask_storeu_ps(C + (int64_t)i * ldc + p * kPanel, mask, c[p][i]);
  }
}

// `stride`: floats from one panel to the next.
template <int NP>
__attribute__((target("avx512f"))) void panels_avx512(const float* A, int lda, const float* P, int K, int64_t stride,
                                                      float* C, int ldc, int cols, int m0, int m1) {
  int i = m0;
  for (; i + kRows <= m1; i += kRows) tile_avx512<kRows, NP>(A + (int64_t)i * lda, lda, P, K, stride, C + (int64_t)i * ldc, ldc, cols);
  const float* a = A + (int64_t)i * lda;
  float* c = C + (int64_t)i * ldc;
  switch (m1 - i) {
    case 5: tile_avx512<5, NP>(a, lda, P, K, stride, c, ldc, cols); break;
    case 4: tile_avx512<4, NP>(a, lda, P, K, stride, c, ldc, cols); break;
    case 3: tile_avx512<3, NP>(a, lda, P, K, stride, c, ldc, cols); break;
    case 2: tile_avx512<2, NP>(a, lda, P, K, stride, c, ldc, cols); break;
    case 1: tile_avx512<1, NP>(a, lda, P, K, stride, c, ldc, cols); break;
    default: break;
  }
}

// The same chains without vectors (std::fma: the same roundings as the FMA instructions).
void panel_portable(const float* A, int lda, const float* P, int K, float* C, int ldc, int cols, int m0, int m1) {
  for (int i = m0; i < m1; i++) {
    float acc[kPanel] = {};
    const float* a = A + (int64_t)i * lda;
    for (int k = 0; k < K; k++)
      for (int j = 0; j < kPanel; j++) acc[j] = std::fma(a[k], P[(int64_t)k * kPanel + j], acc[j]);
    std::memcpy(C + (int64_t)i * ldc, acc, sizeof(float) * cols);
  }
}

enum class Isa { portable, avx2, avx512 };

// The widest path this CPU runs; FLAG_TRADER_KERNEL_ISA (portable, avx2, avx512) asks for one (tests
// compare the paths' bits). One the CPU lacks, or an unknown name, gets the widest: the TypeScript
// side sees that packed_isa() differs from what was asked and refuses to load (src/kernels/native.ts).
Isa detect_isa() {
  Isa best = Isa::portable;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
  if (best == Isa::avx2 && __builtin_cpu_supports("avx512f")) best = Isa::avx512;
#endif
  const char* want = std::getenv("FLAG_TRADER_KERNEL_ISA");
  if (want == nullptr || *want == 0) return best;
  const std::string w(want);
  const Isa asked = w == "portable" ? Isa::portable : w == "avx2" ? Isa::avx2 : w == "avx512" ? Isa::avx512 : best;
  return asked <= best ? asked : best;
}

Isa isa() {
  static const Isa chosen = detect_isa();
  return chosen;
}

}  // namespace

int64_t packed_size(int N, int K) { return (int64_t)((N + kPanel - 1) / kPanel) * kPanel * K; }

void pack_weights(float* out, const float* W, int N, int K) { pack_strided(out, W, N, K, K); }

namespace {

// AVX-512 tiles take two panels at a time.
int panel_group(Isa path) { return path == Isa::avx512 ? 2 : 1; }

// Rows [m0, m1) by the panel group starting at panel p (of a product with N columns): one item.
void run_group(Isa path, const float* A, int lda, const float* Wp, int64_t stride, int K, float* C, int ldc, int N,
               int p, int m0, int m1) {
  const int cols = std::min(panel_group(path) * kPanel, N - p * kPanel);
  const float* P = Wp + (int64_t)p * stride;
  float* c = C + p * kPanel;
  if (path == Isa::avx512) {
    if (cols > kPanel) panels_avx512<2>(A, lda, P, K, stride, c, ldc, cols, m0, m1);
    else panels_avx512<1>(A, lda, P, K, stride, c, ldc, cols, m0, m1);
  } else if (path == Isa::avx2) {
    panel_avx2(A, lda, P, K, c, ldc, cols, m0, m1);
  } else {
    panel_portable(A, lda, P, K, c, ldc, cols, m0, m1);
  }
}

}  // namespace

void gemm_packed(int M, int N, int K, const float* A, int lda, const float* Wp, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  const int panels = (N + kPanel - 1) / kPanel;
  // Rows in blocks whose part of A stays in the L2 cache (about 512 KB) while the panels pass.
  const int block = std::max(kRows, (131072 / std::max(K, 1)) / kRows * kRows);
  const int blocks = (M + block - 1) / block;
  const Isa path = isa();
  const int group = panel_group(path);
  const int groups = (panels + group - 1) / group;
  // Item = (row block, panel group), row block major: the threads share a block of A while it is in cache.
  parallel_items(blocks * groups, [&](int item) {
    const int b = item / groups, p = (item % groups) * group;
    run_group(path, A, lda, Wp, (int64_t)K * kPanel, K, C, ldc, N, p, b * block, std::min(M, (b + 1) * block));
  });
}

void gemm_packed_serial(int M, int N, int K, const float* A, int lda, const float* Wp, int64_t stride, float* C, int ldc) {
  const Isa path = isa();
  const int panels = (N + kPanel - 1) / kPanel;
  for (int p = 0; p < panels; p += panel_group(path)) run_group(path, A, lda, Wp, stride, K, C, ldc, N, p, 0, M);
}

void pack_strided(float* out, const float* W, int N, int K, int ldw) {
  const int panels = (N + kPanel - 1) / kPanel;
  for (int p = 0; p < panels; p++) {
    float* P = out + (int64_t)p * K * kPanel;
    for (int j = 0; j < kPanel; j++) {
      const int n = p * kPanel + j;
      for (int k = 0; k < K; k++) P[(int64_t)k * kPanel + j] = n < N ? W[(int64_t)n * ldw + k] : 0.0f;
    }
  }
}

void pack_transposed(float* out, const float* V, int N, int K, int ldv) {
  const int panels = (N + kPanel - 1) / kPanel;
  for (int p = 0; p < panels; p++) {
    float* P = out + (int64_t)p * K * kPanel;
    const int n0 = p * kPanel, cols = std::min(kPanel, N - n0);
    for (int k = 0; k < K; k++) {
      float* row = P + (int64_t)k * kPanel;
      std::memcpy(row, V + (int64_t)k * ldv + n0, sizeof(float) * cols);
      for (int j = cols; j < kPanel; j++) row[j] = 0.0f;
    }
  }
}

const char* packed_isa() {
  switch (isa()) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "portable";
  }
}

}  // namespace fk
