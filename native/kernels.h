// Fused Llama-layer kernels and BLAS wrappers on raw float pointers. All dimensions and lengths are
// checked by the caller (binding.cc) before these run; nothing here validates again.
#pragma once
#include <cstdint>
#include <string>

namespace fk {

void set_threads(int n);
int get_threads();
std::string info();

// C[M,N] = alpha op(A) op(B) + beta C (row-major, cblas_sgemm).
void sgemm(bool transA, bool transB, int M, int N, int K, float alpha, const float* A, int lda,
           const float* B, int ldb, float beta, float* C, int ldc);
// y = alpha op(A) x + beta y; A stored [M,N].
void sgemv(bool trans, int M, int N, float alpha, const float* A, int lda, const float* x, float beta, float* y);

// out[T,C] = w * x * rstd, rstd[T] = 1/sqrt(mean(x^2)+eps).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int T, int C, float eps);
// dx[T,C] overwritten, dw[C] accumulated.
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                      const float* rstd, int T, int C);

// In-place rotate_half RoPE on x[T, H*D]; tables cos/sin [maxPos, D/2].
void rope(float* x, const float* cos, const float* sin, int T, int H, int D, int pos0, bool inverse);

// Causal GQA attention; q[T,H*D], k/v[past+T, KVH*D], out[T,H*D], probs[H,T,past+T].
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v,
                       int T, int past, int H, int KVH, int D);
// dq overwritten; dk, dv accumulated.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* probs, int T, int past, int H,
                        int KVH, int D);

// out = silu(gate) * up, and its backward (dgate, dup overwritten).
void swiglu_forward(float* out, const float* gate, const float* up, int n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int n);

// Products with a weight matrix packed once (packed.cc). pack_weights writes W[N,K] into
// packed_size(N, K) floats; gemm_packed overwrites C[M,N] = A[M,K] W^T, every element one chain of
// fused multiply-adds over k in order (independent of M, of the other rows and of the threads).
constexpr int kPackedPanel = 16;  // output columns per packed panel: panel p holds W rows 16p..16p+15, [K][16]
int64_t packed_size(int N, int K);
void pack_weights(float* out, const float* W, int N, int K);
void gemm_packed(int M, int N, int K, const float* A, int lda, const float* Wp, float* C, int ldc);
// The same on the calling thread alone, panels `stride` floats apart (a product may use fewer columns N
// or inputs K than were packed: attention's keys up to a causal limit).
void gemm_packed_serial(int M, int N, int K, const float* A, int lda, const float* Wp, int64_t stride, float* C, int ldc);
// pack_weights from W rows ldw apart; pack_transposed packs the W[N,K] whose element (n, k) is V[k*ldv + n].
void pack_strided(float* out, const float* W, int N, int K, int ldw);
void pack_transposed(float* out, const float* V, int N, int K, int ldv);
// The instruction set gemm_packed uses here: "avx512", "avx2" or "portable".
const char* packed_isa();

// y += alpha x.
void axpy(int n, float alpha, const float* x, float* y);

}  // namespace fk
