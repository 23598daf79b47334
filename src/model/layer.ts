/**
 * One Llama decoder layer, forward and backward, in the llm.c manner: explicit steps, flat buffers,
 * shapes in comments. All arithmetic goes through the Backend.
 *
 * Notation: C hidden size, F MLP size, H query heads, KVH key/value heads, D head dim,
 * HD = H*D, KVD = KVH*D. A forward processes T new rows at positions past .. past+T-1; keys and
 * values of all past+T rows are needed, but only the LAST n rows need queries, the attention
 * output and the MLP (n = T everywhere except in the top layer, where the caller only wants the
 * answer position).
 *
 *   xn1  = rmsnorm(x; inputNorm)                 [T, C]
 *   k, v = xn1 Wk^T (+bk), xn1 Wv^T (+bv)         [T, KVD]  (appended to kAll/vAll after `past` rows)
 *   k    = rmsnorm_D(k; kNorm) per head           [T*KVH, D]   (Qwen3 only)
 *   rope(k)
 *   q    = xn1[T-n:] Wq^T (+bq)                   [n, HD]
 *   q    = rmsnorm_D(q; qNorm) per head           [n*H, D]     (Qwen3 only)
 *   rope(q)
 *   att  = causal_gqa_attention(q, kAll, vAll)   [n, HD]
 *   xmid = x[T-n:] + att Wo^T (+bo)               [n, C]
 *   xn2  = rmsnorm(xmid; postNorm)               [n, C]
 *   h    = silu(xn2 Wg^T (+bg)) * (xn2 Wu^T (+bu)) [n, F]
 *   y    = xmid + h Wd^T (+bd)                    [n, C]
 *
 * The bracketed biases and the per-head q/k norms are applied exactly when the layer's weights
 * have them (the config decides which: src/model/weights.ts layerKeys), so one layer serves every
 * supported family (src/model/families.ts).
 *
 * LoRA (src/model/lora.ts): each adapted map M of q, k, v, o, gate, up, down adds its low-rank term
 * to the projection, before the bias-free steps that follow it (q/k norm, RoPE, SwiGLU, residual):
 *   u_M  = x_M A_M^T                              [rows, r]  (kept for the backward)
 *   M(x) = x_M W_M^T (+ b_M) + s * u_M B_M^T      [rows, out]
 * where x_M is the map's input (xn1 for q/k/v, att for o, xn2 for gate/up, h for down). With
 * adapters the base weights are frozen: the backward then skips their gradients (g = null) and
 * accumulates the adapters' instead.
 */
import type { Backend, PackedWeights } from '../kernels/backend.js';
import type { LayerWeights } from './weights.js';
import type { BufferPool } from './buffers.js';
import type { RopeTables } from './rope.js';
import type { LoraPair, LoraTarget } from './lora.js';

export interface Dims {
  C: number; F: number; H: number; KVH: number; D: number; eps: number;
  /** Per-head RMSNorm of queries and keys (Qwen3): the activations keep their pre-norm values. */
  qkNorm: boolean;
}

/** The adapters of one layer, as the layer functions take them. */
export interface LayerLora {
  r: number;
  /** s = lora_alpha / r */
  scale: number;
  /** A [r, in] and B [out, r] of each adapted map. */
  w: Partial<Record<LoraTarget, LoraPair>>;
  /** Their gradients, same shapes, ACCUMULATED by the backward (absent in inference). */
  g?: Partial<Record<LoraTarget, LoraPair>>;
}

/** What a layer forward reads and writes; the backward reads the same object. */
export interface LayerActs {
  T: number; n: number; past: number;
  x: Float32Array;      // [T, C]   layer input (not owned)
  xn1: Float32Array;    // [T, C]
  rstd1: Float32Array;  // [T]
  kAll: Float32Array;   // [>= past+T, KVD] keys after RoPE (own buffer in training, the KV cache in inference)
  vAll: Float32Array;   // [>= past+T, KVD]
  q: Float32Array;      // [n, HD] after RoPE
  /** With qkNorm: the projections before the per-head norm, and the norms' 1/rms per head row. */
  qRaw?: Float32Array;  // [n, HD]
  qRstd?: Float32Array; // [n*H]
  kRaw?: Float32Array;  // [T, KVD]
  kRstd?: Float32Array; // [T*KVH]
  probs: Float32Array;  // [H, n, past+T]
  att: Float32Array;    // [n, HD]
  xmid: Float32Array;   // [n, C]
  xn2: Float32Array;    // [n, C]
  rstd2: Float32Array;  // [n]
  gate: Float32Array;   // [n, F]
  up: Float32Array;     // [n, F]
  h: Float32Array;      // [n, F]
  y: Float32Array;      // [n, C]   layer output
  /** With LoRA: u = x A^T of each adapted map ([T, r] for k and v, [n, r] for the others). */
  lora?: Partial<Record<LoraTarget, Float32Array>>;
}

/**
 * Views for one layer call, taken from `pool` (so repeated calls reuse memory). kAll/vAll and the
 * output y are passed in because their lifetime is the caller's (KV cache, residual stream). The
 * attention probabilities and the SwiGLU output, the largest activations and cheap to compute again,
 * come from `lentPool` (default `pool`): see layerLentAgain.
 */
export function layerActs(pool: BufferPool, d: Dims, T: number, n: number, past: number,
  x: Float32Array, kAll: Float32Array, vAll: Float32Array, y: Float32Array, lora?: LayerLora, lentPool: BufferPool = pool): LayerActs {
  const { C, F, H, KVH, D } = d;
  const HD = H * D, S = past + T;
  let u: Partial<Record<LoraTarget, Float32Array>> | undefined;
  if (lora) {
    u = {};
    for (const t of Object.keys(lora.w) as LoraTarget[]) u[t] = pool.get(`lora_${t}`, (t === 'k' || t === 'v' ? T : n) * lora.r);
  }
  return {
    ...(u && { lora: u }),
    T, n, past, x, kAll, vAll, y,
    ...(d.qkNorm && {
      qRaw: pool.get('qRaw', n * HD), qRstd: pool.get('qRstd', n * H),
      kRaw: pool.get('kRaw', T * KVH * D), kRstd: pool.get('kRstd', T * KVH),
    }),
    xn1: pool.get('xn1', T * C),
    rstd1: pool.get('rstd1', T),
    q: pool.get('q', n * HD),
    probs: lentPool.get('probs', H * n * S),
    att: pool.get('att', n * HD),
    xmid: pool.get('xmid', n * C),
    xn2: pool.get('xn2', n * C),
    rstd2: pool.get('rstd2', n),
    gate: pool.get('gate', n * F),
    up: pool.get('up', n * F),
    h: lentPool.get('h', n * F),
  };
}

// ---------------------------------------------------------------------------------------------
// Linear layer without bias, W stored [O, I] as in HF.

/**
 * A frozen layer's matrices packed once for Backend.gemmPacked: its products then run near the FMA
 * rate at the few rows of a step's new tokens (sgemm packs W again at every call), and each row's
 * result is the same whatever rows it runs with.
 */
export type PackedLayer = Record<'q' | 'k' | 'v' | 'o' | 'gate' | 'up' | 'down', PackedWeights>;

/** out[T, O] = x[T, I] W^T (with `packed`, W's packed copy does the product) */
export function linearForward(be: Backend, out: Float32Array, x: Float32Array, W: Float32Array,
  T: number, I: number, O: number, packed?: PackedWeights): void {
  if (packed) be.gemmPacked(T, x, I, packed, out, O);
  else if (T === 1) be.sgemv(false, O, I, 1, W, I, x, 0, out);
  else be.sgemm(false, true, T, O, I, 1, x, I, W, I, 0, out, O);
}

/**
 * dW[O, I] += dout[T, O]^T x[T, I] (skipped when dW is null: a frozen W); and when dx is given:
 * dx[T, I] = dout W + beta * dx (beta = 1 adds to what dx holds).
 */
export function linearBackward(be: Backend, dx: Float32Array | null, dW: Float32Array | null,
  dout: Float32Array, x: Float32Array, W: Float32Array, T: number, I: number, O: number, beta = 0): void {
  if (dW !== null) be.sgemm(true, false, O, I, T, 1, dout, O, x, I, 1, dW, I);
  if (dx === null) return;
  if (T === 1) be.sgemv(true, O, I, 1, W, I, dout, beta, dx);
  else be.sgemm(false, false, T, I, O, 1, dout, O, W, I, beta, dx, I);
}

// Biases as products with a column of ones, so that each is ONE BLAS call: row by row (one axpy per
// row) cost 5x more, about 3% of the product the bias follows at 500 rows of a Qwen2-0.5B layer.
let onesBuf = new Float32Array(0);

/** A vector of n ones (shared and never written; grown on demand). */
function ones(n: number): Float32Array {
  if (onesBuf.length < n) onesBuf = new Float32Array(Math.max(n, 2 * onesBuf.length)).fill(1);
  return onesBuf.subarray(0, n);
}

/** out[T, O] += ones[T, 1] b[1, O]: the bias of a linear layer, added to every row. */
export function biasForward(be: Backend, out: Float32Array, b: Float32Array, T: number, O: number): void {
  if (T === 1) be.axpy(O, 1, b, out);
  else be.sgemm(false, false, T, O, 1, 1, ones(T), 1, b, O, 1, out, O);
}

/** db[O] += dout[T, O]^T ones[T]: every row received the same bias, so its gradient is the column sum. */
export function biasBackward(be: Backend, db: Float32Array, dout: Float32Array, T: number, O: number): void {
  be.sgemv(true, T, O, 1, dout, O, ones(T), 1, db);
}

/**
 * LoRA term of one map: u[T, r] = x[T, I] A^T; out[T, O] += s * u B^T.
 */
export function loraForward(be: Backend, out: Float32Array, u: Float32Array, x: Float32Array, p: LoraPair,
  T: number, I: number, O: number, r: number, s: number): void {
  linearForward(be, u, x, p.A, T, I, r);
  be.sgemm(false, true, T, O, r, s, u, r, p.B, r, 1, out, O);
}

/**
 * Backward of loraForward from dout[T, O], ACCUMULATING into g.A, g.B and dx:
 *   dB[O, r] += s * dout^T u
 *   du[T, r]  = s * dout B
 *   dA[r, I] += du^T x
 *   dx[T, I] += du A
 */
export function loraBackward(be: Backend, dx: Float32Array, g: LoraPair, dout: Float32Array, u: Float32Array,
  x: Float32Array, p: LoraPair, T: number, I: number, O: number, r: number, s: number, du: Float32Array): void {
  be.sgemm(true, false, O, r, T, s, dout, O, u, r, 1, g.B, r);
  be.sgemm(false, false, T, r, O, s, dout, O, p.B, r, 0, du, r);
  be.sgemm(true, false, r, I, T, 1, du, r, x, I, 1, g.A, I);
  be.sgemm(false, false, T, I, r, 1, du, r, p.A, I, 1, dx, I);
}

// ---------------------------------------------------------------------------------------------
// The layer.

/**
 * The lent activations of a forward computed again: the attention probabilities into a.probs (a.att
 * gets the same values again) and the SwiGLU output a.h, by the calls layerForward makes on what it
 * kept, so the results are the same to the bit. For activations whose probs and h buffers were lent
 * to later forwards meanwhile (layerActs' lentPool).
 */
export function layerLentAgain(be: Backend, d: Dims, a: LayerActs): void {
  be.attentionForward(a.att, a.probs, a.q, a.kAll, a.vAll, a.n, a.past + a.T - a.n, d.H, d.KVH, d.D);
  be.swigluForward(a.h, a.gate, a.up, a.n * d.F);
}

/** `packed`: the layer's matrices packed for gemmPacked (frozen layers without adapters; LlamaModel decides). */
export function layerForward(be: Backend, d: Dims, w: LayerWeights, a: LayerActs, rope: RopeTables, lora?: LayerLora,
  packed?: PackedLayer): void {
  const { C, F, H, KVH, D, eps } = d;
  const { T, n, past } = a;
  const HD = H * D, KVD = KVH * D;
  const q0 = T - n; // first query row among the T new rows
  rope.ensure(past + T);
  // The LoRA term of map t (when adapted) over `rows` rows of input x: out += s * (x A^T) B^T.
  const adapt = (t: LoraTarget, out: Float32Array, x: Float32Array, rows: number, I: number, O: number): void => {
    const p = lora?.w[t];
    if (p) loraForward(be, out, a.lora![t]!, x, p, rows, I, O, lora!.r, lora!.scale);
  };

  // Attention block. Keys and values are needed for every row; queries only for the last n.
  be.rmsnormForward(a.xn1, a.rstd1, a.x, w.inputNorm, T, C, eps);
  const kNew = a.kAll.subarray(past * KVD, (past + T) * KVD);
  const vNew = a.vAll.subarray(past * KVD, (past + T) * KVD);
  // With q/k norms the projections land in kRaw/qRaw (kept for the backward) and the per-head norm
  // writes the keys/queries that RoPE then rotates; the KV cache holds keys after both.
  const kProj = w.kNorm ? a.kRaw! : kNew;
  linearForward(be, kProj, a.xn1, w.k, T, C, KVD, packed?.k);
  if (w.kBias) biasForward(be, kProj, w.kBias, T, KVD);
  adapt('k', kProj, a.xn1, T, C, KVD);
  if (w.kNorm) be.rmsnormForward(kNew, a.kRstd!, kProj, w.kNorm, T * KVH, D, eps);
  linearForward(be, vNew, a.xn1, w.v, T, C, KVD, packed?.v);
  if (w.vBias) biasForward(be, vNew, w.vBias, T, KVD);
  adapt('v', vNew, a.xn1, T, C, KVD);
  be.rope(kNew, rope.cos, rope.sin, T, KVH, D, past, false);
  const qProj = w.qNorm ? a.qRaw! : a.q;
  const xq = a.xn1.subarray(q0 * C);
  linearForward(be, qProj, xq, w.q, n, C, HD, packed?.q);
  if (w.qBias) biasForward(be, qProj, w.qBias, n, HD);
  adapt('q', qProj, xq, n, C, HD);
  if (w.qNorm) be.rmsnormForward(a.q, a.qRstd!, qProj, w.qNorm, n * H, D, eps);
  be.rope(a.q, rope.cos, rope.sin, n, H, D, past + q0, false);
  be.attentionForward(a.att, a.probs, a.q, a.kAll, a.vAll, n, past + q0, H, KVH, D);
  linearForward(be, a.xmid, a.att, w.o, n, HD, C, packed?.o);
  if (w.oBias) biasForward(be, a.xmid, w.oBias, n, C);
  adapt('o', a.xmid, a.att, n, HD, C);
  be.axpy(n * C, 1, a.x.subarray(q0 * C), a.xmid); // residual

  // MLP block.
  be.rmsnormForward(a.xn2, a.rstd2, a.xmid, w.postNorm, n, C, eps);
  linearForward(be, a.gate, a.xn2, w.gate, n, C, F, packed?.gate);
  if (w.gateBias) biasForward(be, a.gate, w.gateBias, n, F);
  adapt('gate', a.gate, a.xn2, n, C, F);
  linearForward(be, a.up, a.xn2, w.up, n, C, F, packed?.up);
  if (w.upBias) biasForward(be, a.up, w.upBias, n, F);
  adapt('up', a.up, a.xn2, n, C, F);
  be.swigluForward(a.h, a.gate, a.up, n * F);
  linearForward(be, a.y, a.h, w.down, n, F, C, packed?.down);
  if (w.downBias) biasForward(be, a.y, w.downBias, n, C);
  adapt('down', a.y, a.h, n, F, C);
  be.axpy(n * C, 1, a.xmid, a.y); // residual
}

/**
 * Gradients of keys and values (after RoPE) that cross the boundary between a shared prompt prefix
 * and the rows computed after it (see layerBackward).
 */
export interface KvGrads {
  /** [past, KVD] += gradient w.r.t. the past rows' keys / values (when the layer ran with past > 0). */
  pastDk?: Float32Array;
  pastDv?: Float32Array;
  /** [T, KVD] gradient w.r.t. this call's own keys / values from rows computed elsewhere, added in. */
  extraDk?: Float32Array;
  extraDv?: Float32Array;
}

/**
 * Backward of layerForward. Reads dy[n, C] (gradient w.r.t. the layer output), ACCUMULATES
 * parameter gradients into g (which has every tensor w has; null: the base weights are frozen and get
 * none), OVERWRITES dx[T, C] (gradient w.r.t. the layer input; rows before T-n get only the attention
 * path). With `lora` (the adapters the forward ran with), their gradients accumulate into lora.g. Work
 * buffers come from `pool`. With past > 0 (rows after a prefix whose keys/values fill kAll/vAll rows
 * 0..past-1), the gradient w.r.t. those keys/values is added to kv.pastDk/pastDv; kv.extraDk/extraDv
 * add gradient that later rows sent to this call's keys/values.
 */
export function layerBackward(be: Backend, d: Dims, w: LayerWeights, g: LayerWeights | null, a: LayerActs,
  rope: RopeTables, dy: Float32Array, dx: Float32Array, pool: BufferPool, kv: KvGrads = {}, lora?: LayerLora): void {
  const { C, F, H, KVH, D } = d;
  const { T, n, past } = a;
  const HD = H * D, KVD = KVH * D;
  if (past > 0 && (kv.pastDk === undefined || kv.pastDv === undefined)) {
    throw new Error('layerBackward: a layer that ran after past rows needs kv.pastDk/pastDv for their gradient');
  }
  if (lora && !lora.g) throw new Error('layerBackward: the adapters need gradient buffers (lora.g)');
  const q0 = T - n;
  const dxmid = pool.get('dxmid', n * C);
  const tmpC = pool.get('tmpC', n * C);
  const dh = pool.get('dh', n * F), dgate = pool.get('dgate', n * F), dup = pool.get('dup', n * F);
  const dxn2 = pool.get('dxn2', n * C);
  const datt = pool.get('datt', n * HD), dq = pool.get('dq', n * HD);
  const dkAll = pool.get('dk', (past + T) * KVD), dvAll = pool.get('dv', (past + T) * KVD);
  const dxn1 = pool.get('dxn1', T * C);
  // A frozen norm weight still needs a place for the kernel's accumulation: scratch, never read.
  const normSink = (size: number): Float32Array => pool.get('normSink', size).fill(0);
  // The adapters' backward of map t: adds into dxM (the map input's gradient) after the base map's.
  const adapt = (t: LoraTarget, dxM: Float32Array, dout: Float32Array, x: Float32Array, rows: number, I: number, O: number): void => {
    const p = lora?.w[t];
    if (p) loraBackward(be, dxM, lora!.g![t]!, dout, a.lora![t]!, x, p, rows, I, O, lora!.r, lora!.scale, pool.get('loraDu', rows * lora!.r));
  };

  // y = xmid + h Wd^T + bd
  dxmid.set(dy);
  if (g && w.downBias) biasBackward(be, g.downBias!, dy, n, C);
  linearBackward(be, dh, g && g.down, dy, a.h, w.down, n, F, C);
  adapt('down', dh, dy, a.h, n, F, C);
  // h = silu(gate) * up; gate = xn2 Wg^T + bg; up = xn2 Wu^T + bu
  be.swigluBackward(dgate, dup, dh, a.gate, a.up, n * F);
  if (g && w.gateBias) biasBackward(be, g.gateBias!, dgate, n, F);
  if (g && w.upBias) biasBackward(be, g.upBias!, dup, n, F);
  linearBackward(be, dxn2, g && g.gate, dgate, a.xn2, w.gate, n, C, F);
  linearBackward(be, dxn2, g && g.up, dup, a.xn2, w.up, n, C, F, 1);
  adapt('gate', dxn2, dgate, a.xn2, n, C, F);
  adapt('up', dxn2, dup, a.xn2, n, C, F);
  // xn2 = rmsnorm(xmid)
  be.rmsnormBackward(tmpC, g ? g.postNorm : normSink(C), dxn2, a.xmid, w.postNorm, a.rstd2, n, C);
  be.axpy(n * C, 1, tmpC, dxmid);

  // xmid = x[q0:] + att Wo^T + bo
  if (g && w.oBias) biasBackward(be, g.oBias!, dxmid, n, C);
  linearBackward(be, datt, g && g.o, dxmid, a.att, w.o, n, HD, C);
  adapt('o', datt, dxmid, a.att, n, HD, C);
  // attention (dk/dv accumulate in the kernel, so start from zero)
  dkAll.fill(0); dvAll.fill(0);
  be.attentionBackward(dq, dkAll, dvAll, datt, a.q, a.kAll, a.vAll, a.probs, n, past + q0, H, KVH, D);
  if (past > 0) {
    be.axpy(past * KVD, 1, dkAll.subarray(0, past * KVD), kv.pastDk!);
    be.axpy(past * KVD, 1, dvAll.subarray(0, past * KVD), kv.pastDv!);
  }
  const dk = dkAll.subarray(past * KVD), dv = dvAll.subarray(past * KVD);
  if (kv.extraDk) be.axpy(T * KVD, 1, kv.extraDk, dk);
  if (kv.extraDv) be.axpy(T * KVD, 1, kv.extraDv, dv);
  // RoPE is a rotation: its backward is the inverse rotation
  be.rope(dq, rope.cos, rope.sin, n, H, D, past + q0, true);
  be.rope(dk, rope.cos, rope.sin, T, KVH, D, past, true);
  // q = rmsnorm_D(qRaw), k = rmsnorm_D(kRaw) per head: back to the projections' outputs
  let dqProj = dq, dkProj = dk;
  if (w.qNorm) {
    dqProj = pool.get('dqRaw', n * HD);
    be.rmsnormBackward(dqProj, g ? g.qNorm! : normSink(D), dq, a.qRaw!, w.qNorm, a.qRstd!, n * H, D);
  }
  if (w.kNorm) {
    dkProj = pool.get('dkRaw', T * KVD);
    be.rmsnormBackward(dkProj, g ? g.kNorm! : normSink(D), dk, a.kRaw!, w.kNorm, a.kRstd!, T * KVH, D);
  }
  // q = xn1[q0:] Wq^T + bq; k = xn1 Wk^T + bk; v = xn1 Wv^T + bv
  if (g && w.qBias) biasBackward(be, g.qBias!, dqProj, n, HD);
  if (g && w.kBias) biasBackward(be, g.kBias!, dkProj, T, KVD);
  if (g && w.vBias) biasBackward(be, g.vBias!, dv, T, KVD);
  const xq = a.xn1.subarray(q0 * C), dxq = dxn1.subarray(q0 * C);
  linearBackward(be, dxn1, g && g.k, dkProj, a.xn1, w.k, T, C, KVD);
  linearBackward(be, dxn1, g && g.v, dv, a.xn1, w.v, T, C, KVD, 1);
  linearBackward(be, dxq, g && g.q, dqProj, xq, w.q, n, C, HD, 1);
  adapt('k', dxn1, dkProj, a.xn1, T, C, KVD);
  adapt('v', dxn1, dv, a.xn1, T, C, KVD);
  adapt('q', dxq, dqProj, xq, n, C, HD);
  // xn1 = rmsnorm(x); plus the residual path into the last n rows
  be.rmsnormBackward(dx, g ? g.inputNorm : normSink(C), dxn1, a.x, w.inputNorm, a.rstd1, T, C);
  be.axpy(n * C, 1, dxmid, dx.subarray(q0 * C));
}
