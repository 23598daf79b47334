// N-API glue: checks every argument (type, integer dimensions, array lengths) and throws a JS
// TypeError naming the argument and what it needs, so no call from JS can read or write out of
// bounds; then calls the kernels in kernels.cc on the Float32Arrays' memory directly (no copies).
#include <napi.h>

#include <climits>
#include <cmath>
#include <string>

#include "kernels.h"

namespace {

struct Args {
  const Napi::CallbackInfo& info;
  const char* kernel;

  [[noreturn]] void fail(const std::string& msg) const {
    throw Napi::TypeError::New(info.Env(), std::string(kernel) + ": " + msg);
  }

  void count(size_t n) const {
    if (info.Length() != n) fail("expected " + std::to_string(n) + " arguments, got " + std::to_string(info.Length()));
  }

  // A non-negative integer that fits a BLAS int.
  int dim(size_t i, const char* name) const {
    if (!info[i].IsNumber()) fail(std::string(name) + " must be a number");
    double d = info[i].As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d != std::floor(d) || d > INT_MAX) {
      fail(std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
    }
    return (int)d;
  }

  float scalar(size_t i, const char* name) const {
    if (!info[i].IsNumber()) fail(std::string(name) + " must be a number");
    double d = info[i].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) fail(std::string(name) + " must be a finite number, got " + std::to_string(d));
    return (float)d;
  }

  bool flag(size_t i, const char* name) const {
    if (!info[i].IsBoolean()) fail(std::string(name) + " must be a boolean");
    return info[i].As<Napi::Boolean>().Value();
  }

  // A Float32Array with at least `need` entries (need computed in double: exact far beyond any length).
  float* array(size_t i, const char* name, double need) const {
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      fail(std::string(name) + " must be a Float32Array");
    }
    Napi::Float32Array a = info[i].As<Napi::Float32Array>();
    if ((double)a.ElementLength() < need) {
      fail(std::string(name) + " has " + std::to_string(a.ElementLength()) + " entries, expected at least " +
           std::to_string((long long)need));
    }
    return a.Data();  // already offset by the view's byteOffset
  }

  // Entries spanned by a row-major [rows, cols] matrix of row stride ld (checks ld >= max(1, cols)).
  double span(const char* name, int rows, int cols, int ld) const {
    if (ld < std::max(1, cols)) {
      fail(std::string("row stride of ") + name + " is " + std::to_string(ld) + ", expected at least " +
           std::to_string(std::max(1, cols)) + " (its columns)");
    }
    return rows == 0 || cols == 0 ? 0.0 : (double)(rows - 1) * ld + cols;
  }
};

// Dimensions shared by the attention kernels at argument index i0 (T, past, H, KVH, D).
struct AttnDims {
  int T, past, H, KVH, D, S;
};
AttnDims attn_dims(const Args& a, size_t i0) {
  AttnDims d;
  d.T = a.dim(i0, "T");
  d.past = a.dim(i0 + 1, "past");
  d.H = a.dim(i0 + 2, "H");
  d.KVH = a.dim(i0 + 3, "KVH");
  d.D = a.dim(i0 + 4, "D");
  if (d.KVH == 0 || d.H % d.KVH != 0) {
    a.fail("H (" + std::to_string(d.H) + ") must be a positive multiple of KVH (" + std::to_string(d.KVH) + ")");
  }
  if (d.D == 0) a.fail("D must be positive");
  if ((double)d.past + d.T > INT_MAX || (double)d.H * d.D > INT_MAX) a.fail("dimensions too large");
  d.S = d.past + d.T;
  return d;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args a{info, "setThreads"};
  a.count(1);
  int n = a.dim(0, "n");
  if (n < 1) a.fail("n must be a positive integer, got 0");
  fk::set_threads(n);
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fk::get_threads());
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), fk::info());
}

Napi::Value PackedIsa(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), fk::packed_isa());
}

// sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Args a{info, "sgemm"};
  a.count(13);
  bool tA = a.flag(0, "transA"), tB = a.flag(1, "transB");
  int M = a.dim(2, "M"), N = a.dim(3, "N"), K = a.dim(4, "K");
  float alpha = a.scalar(5, "alpha");
  int lda = a.dim(7, "lda"), ldb = a.dim(9, "ldb");
  float beta = a.scalar(10, "beta");
  int ldc = a.dim(12, "ldc");
  const float* A = a.array(6, "A", tA ? a.span("A", K, M, lda) : a.span("A", M, K, lda));
  const float* B = a.array(8, "B", tB ? a.span("B", N, K, ldb) : a.span("B", K, N, ldb));
  float* C = a.array(11, "C", a.span("C", M, N, ldc));
  fk::sgemm(tA, tB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return info.Env().Undefined();
}

// packWeights(W, N, K, out): out needs packedSize(N, K) entries.
Napi::Value PackedSize(const Napi::CallbackInfo& info) {
  Args a{info, "packedSize"};
  a.count(2);
  int N = a.dim(0, "N"), K = a.dim(1, "K");
  return Napi::Number::New(info.Env(), (double)fk::packed_size(N, K));
}

Napi::Value PackWeights(const Napi::CallbackInfo& info) {
  Args a{info, "packWeights"};
  a.count(4);
  int N = a.dim(1, "N"), K = a.dim(2, "K");
  const float* W = a.array(0, "W", (double)N * K);
  float* out = a.array(3, "out", (double)fk::packed_size(N, K));
  fk::pack_weights(out, W, N, K);
  return info.Env().Undefined();
}

// gemmPacked(M, N, K, A, lda, Wp, C, ldc): C = A W^T with W packed by packWeights.
Napi::Value GemmPacked(const Napi::CallbackInfo& info) {
  Args a{info, "gemmPacked"};
  a.count(8);
  int M = a.dim(0, "M"), N = a.dim(1, "N"), K = a.dim(2, "K");
  int lda = a.dim(4, "lda"), ldc = a.dim(7, "ldc");
  const float* A = a.array(3, "A", a.span("A", M, K, lda));
  const float* Wp = a.array(5, "Wp", (double)fk::packed_size(N, K));
  float* C = a.array(6, "C", a.span("C", M, N, ldc));
  fk::gemm_packed(M, N, K, A, lda, Wp, C, ldc);
  return info.Env().Undefined();
}

// sgemv(trans, M, N, alpha, A, lda, x, beta, y)
Napi::Value Sgemv(const Napi::CallbackInfo& info) {
  Args a{info, "sgemv"};
  a.count(9);
  bool tr = a.flag(0, "trans");
  int M = a.dim(1, "M"), N = a.dim(2, "N");
  float alpha = a.scalar(3, "alpha");
  int lda = a.dim(5, "lda");
  float beta = a.scalar(7, "beta");
  const float* A = a.array(4, "A", a.span("A", M, N, lda));
  const float* x = a.array(6, "x", tr ? M : N);
  float* y = a.array(8, "y", tr ? N : M);
  fk::sgemv(tr, M, N, alpha, A, lda, x, beta, y);
  return info.Env().Undefined();
}

// rmsnormForward(out, rstd, x, w, T, C, eps)
Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  Args a{info, "rmsnormForward"};
  a.count(7);
  int T = a.dim(4, "T"), C = a.dim(5, "C");
  float eps = a.scalar(6, "eps");
  if (C == 0) a.fail("C must be positive");
  double TC = (double)T * C;
  float* out = a.array(0, "out", TC);
  float* rstd = a.array(1, "rstd", T);
  const float* x = a.array(2, "x", TC);
  const float* w = a.array(3, "w", C);
  fk::rmsnorm_forward(out, rstd, x, w, T, C, eps);
  return info.Env().Undefined();
}

// rmsnormBackward(dx, dw, dout, x, w, rstd, T, C)
Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  Args a{info, "rmsnormBackward"};
  a.count(8);
  int T = a.dim(6, "T"), C = a.dim(7, "C");
  if (C == 0) a.fail("C must be positive");
  double TC = (double)T * C;
  float* dx = a.array(0, "dx", TC);
  float* dw = a.array(1, "dw", C);
  const float* dout = a.array(2, "dout", TC);
  const float* x = a.array(3, "x", TC);
  const float* w = a.array(4, "w", C);
  const float* rstd = a.array(5, "rstd", T);
  fk::rmsnorm_backward(dx, dw, dout, x, w, rstd, T, C);
  return info.Env().Undefined();
}

// rope(x, cos, sin, T, H, D, pos0, inverse)
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Args a{info, "rope"};
  a.count(8);
  int T = a.dim(3, "T"), H = a.dim(4, "H"), D = a.dim(5, "D"), pos0 = a.dim(6, "pos0");
  bool inverse = a.flag(7, "inverse");
  if (D == 0 || D % 2 != 0) a.fail("D must be a positive even number, got " + std::to_string(D));
  if ((double)pos0 + T > INT_MAX) a.fail("pos0 + T too large");
  float* x = a.array(0, "x", (double)T * H * D);
  const float* cs = a.array(1, "cos", ((double)pos0 + T) * (D / 2));
  const float* sn = a.array(2, "sin", ((double)pos0 + T) * (D / 2));
  fk::rope(x, cs, sn, T, H, D, pos0, inverse);
  return info.Env().Undefined();
}

// attentionForward(out, probs, q, k, v, T, past, H, KVH, D)
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Args a{info, "attentionForward"};
  a.count(10);
  AttnDims d = attn_dims(a, 5);
  double qn = (double)d.T * d.H * d.D, kn = (double)d.S * d.KVH * d.D;
  float* out = a.array(0, "out", qn);
  float* probs = a.array(1, "probs", (double)d.H * d.T * d.S);
  const float* q = a.array(2, "q", qn);
  const float* k = a.array(3, "k", kn);
  const float* v = a.array(4, "v", kn);
  fk::attention_forward(out, probs, q, k, v, d.T, d.past, d.H, d.KVH, d.D);
  return info.Env().Undefined();
}

// attentionBackward(dq, dk, dv, dout, q, k, v, probs, T, past, H, KVH, D)
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args a{info, "attentionBackward"};
  a.count(13);
  AttnDims d = attn_dims(a, 8);
  double qn = (double)d.T * d.H * d.D, kn = (double)d.S * d.KVH * d.D;
  float* dq = a.array(0, "dq", qn);
  float* dk = a.array(1, "dk", kn);
  float* dv = a.array(2, "dv", kn);
  const float* dout = a.array(3, "dout", qn);
  const float* q = a.array(4, "q", qn);
  const float* k = a.array(5, "k", kn);
  const float* v = a.array(6, "v", kn);
  const float* probs = a.array(7, "probs", (double)d.H * d.T * d.S);
  fk::attention_backward(dq, dk, dv, dout, q, k, v, probs, d.T, d.past, d.H, d.KVH, d.D);
  return info.Env().Undefined();
}

// swigluForward(out, gate, up, n)
Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  Args a{info, "swigluForward"};
  a.count(4);
  int n = a.dim(3, "n");
  float* out = a.array(0, "out", n);
  const float* gate = a.array(1, "gate", n);
  const float* up = a.array(2, "up", n);
  fk::swiglu_forward(out, gate, up, n);
  return info.Env().Undefined();
}

// swigluBackward(dgate, dup, dout, gate, up, n)
Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  Args a{info, "swigluBackward"};
  a.count(6);
  int n = a.dim(5, "n");
  float* dgate = a.array(0, "dgate", n);
  float* dup = a.array(1, "dup", n);
  const float* dout = a.array(2, "dout", n);
  const float* gate = a.array(3, "gate", n);
  const float* up = a.array(4, "up", n);
  fk::swiglu_backward(dgate, dup, dout, gate, up, n);
  return info.Env().Undefined();
}

// axpy(n, alpha, x, y)
Napi::Value Axpy(const Napi::CallbackInfo& info) {
  Args a{info, "axpy"};
  a.count(4);
  int n = a.dim(0, "n");
  float alpha = a.scalar(1, "alpha");
  const float* x = a.array(2, "x", n);
  float* y = a.array(3, "y", n);
  fk::axpy(n, alpha, x, y);
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  fk::set_threads(1);
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("packedIsa", Napi::Function::New(env, PackedIsa));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm));
  exports.Set("sgemv", Napi::Function::New(env, Sgemv));
  exports.Set("packedSize", Napi::Function::New(env, PackedSize));
  exports.Set("packWeights", Napi::Function::New(env, PackWeights));
  exports.Set("gemmPacked", Napi::Function::New(env, GemmPacked));
  exports.Set("rmsnormForward", Napi::Function::New(env, RmsnormForward));
  exports.Set("rmsnormBackward", Napi::Function::New(env, RmsnormBackward));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
  exports.Set("swigluForward", Napi::Function::New(env, SwigluForward));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward));
  exports.Set("axpy", Napi::Function::New(env, Axpy));
  return exports;
}

}  // namespace

NODE_API_MODULE(flag_kernels, Init)
