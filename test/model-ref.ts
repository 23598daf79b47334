// An independent float64 Llama decoder for the model tests: plain loops over arrays of rows, no
// Backend, no shared code with src/model (only the config and weight containers). It follows the
// Hugging Face LlamaForCausalLM definition directly, with the other families' features where the
// config has them (q/k/v/o and MLP biases, Qwen3's per-head q/k RMSNorm before RoPE, linear and
// llama3 rope scaling), and a seeded random-weight maker for small test configs.
import type { LlamaConfig } from '../src/model/config.js';
import type { LayerWeights, LlamaWeights } from '../src/model/weights.js';
import { Rng } from '../src/util/rng.js';
import { toFloat32, type StoredTensor } from '../src/model/bf16.js';

export type Rows = Float64Array[];

export interface RefLayer {
  inputNorm: Float64Array; q: Float64Array; k: Float64Array; v: Float64Array; o: Float64Array;
  postNorm: Float64Array; gate: Float64Array; up: Float64Array; down: Float64Array;
  qBias?: Float64Array; kBias?: Float64Array; vBias?: Float64Array; oBias?: Float64Array;
  qNorm?: Float64Array; kNorm?: Float64Array;
  gateBias?: Float64Array; upBias?: Float64Array; downBias?: Float64Array;
}
export interface RefWeights {
  embed: Float64Array; layers: RefLayer[]; norm: Float64Array; lmHead: Float64Array | null;
}

/** Float64 copies (bf16-stored matrices read as the float32 values they hold). */
export function toRef(w: LlamaWeights<StoredTensor>): RefWeights {
  const d = (a: StoredTensor): Float64Array => Float64Array.from(toFloat32(a));
  return {
    embed: d(w.embed),
    layers: w.layers.map((l) => {
      const r: RefLayer = {
        inputNorm: d(l.inputNorm), q: d(l.q), k: d(l.k), v: d(l.v), o: d(l.o),
        postNorm: d(l.postNorm), gate: d(l.gate), up: d(l.up), down: d(l.down),
      };
      for (const key of ['qBias', 'kBias', 'vBias', 'oBias', 'qNorm', 'kNorm', 'gateBias', 'upBias', 'downBias'] as const) {
        const t = l[key];
        if (t) r[key] = d(t);
      }
      return r;
    }),
    norm: d(w.norm),
    lmHead: w.lmHead ? d(w.lmHead) : null,
  };
}

export function testConfig(tied: boolean, over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    hidden_size: 48, intermediate_size: 80, num_hidden_layers: 3, num_attention_heads: 6,
    num_key_value_heads: 2, head_dim: 8, vocab_size: 97, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 64, tie_word_embeddings: tied, eos_token_id: 2, ...over,
  };
}

/**
 * Random weights with enough scale that every part matters: embeddings ~N(0,1), projections
 * ~N(0, s^2/fan_in) (queries/keys larger so attention is far from uniform), norm weights 1 + N(0, 0.1^2).
 * The config's extra tensors (biases ~N(0, 0.3^2), q/k norm weights 1 + N(0, 0.2^2)) are drawn after
 * a layer's Llama tensors, so a plain Llama config gets the weights it always got.
 */
export function testWeights(c: LlamaConfig, seed: number): LlamaWeights {
  const rng = new Rng(seed);
  const C = c.hidden_size, F = c.intermediate_size, HD = c.num_attention_heads * c.head_dim;
  const KVD = c.num_key_value_heads * c.head_dim;
  const normal = (n: number, std: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = std * rng.normal();
    return a;
  };
  const normW = (): Float32Array => {
    const a = new Float32Array(C);
    for (let i = 0; i < C; i++) a[i] = 1 + 0.1 * rng.normal();
    return a;
  };
  const embed = normal(c.vocab_size * C, 1);
  const headNorm = (): Float32Array => Float32Array.from({ length: c.head_dim }, () => 1 + 0.2 * rng.normal());
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.num_hidden_layers; l++) {
    const layer: LayerWeights = {
      inputNorm: normW(), q: normal(HD * C, 2 / Math.sqrt(C)), k: normal(KVD * C, 2 / Math.sqrt(C)),
      v: normal(KVD * C, 1 / Math.sqrt(C)), o: normal(C * HD, 1 / Math.sqrt(HD)), postNorm: normW(),
      gate: normal(F * C, 1 / Math.sqrt(C)), up: normal(F * C, 1 / Math.sqrt(C)), down: normal(C * F, 1 / Math.sqrt(F)),
    };
    if (c.qkv_bias) { layer.qBias = normal(HD, 0.3); layer.kBias = normal(KVD, 0.3); layer.vBias = normal(KVD, 0.3); }
    if (c.o_bias) layer.oBias = normal(C, 0.3);
    if (c.qk_norm) { layer.qNorm = headNorm(); layer.kNorm = headNorm(); }
    if (c.mlp_bias) { layer.gateBias = normal(F, 0.3); layer.upBias = normal(F, 0.3); layer.downBias = normal(C, 0.3); }
    layers.push(layer);
  }
  const norm = normW();
  const lmHead = c.tie_word_embeddings ? null : normal(c.vocab_size * C, 1 / Math.sqrt(C));
  return { embed, layers, norm, lmHead };
}

function rmsnorm(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  let ss = 0;
  for (const v of x) ss += v * v;
  const r = 1 / Math.sqrt(ss / x.length + eps);
  return x.map((v, i) => w[i]! * v * r);
}

/** y = W x (+ b) for W stored [out, in]. */
function matvec(W: Float64Array, x: Float64Array, out: number, b?: Float64Array): Float64Array {
  const n = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = b ? b[o]! : 0;
    for (let i = 0; i < n; i++) s += W[o * n + i]! * x[i]!;
    y[o] = s;
  }
  return y;
}

/**
 * The rotary frequencies in float64, from the definitions: theta^(-2i/D); `linear` divides by
 * factor; `llama3` divides those whose wavelength 2 pi / f exceeds L0 / low_freq_factor by factor,
 * keeps those under L0 / high_freq_factor, and in between mixes f / factor and f with weight
 * s = (L0 / wavelength - low) / (high - low) on f.
 */
export function refInvFreq(c: LlamaConfig): number[] {
  const D = c.head_dim, rs = c.rope_scaling;
  return Array.from({ length: D / 2 }, (_, i) => {
    const f = Math.pow(c.rope_theta, (-2 * i) / D);
    if (!rs) return f;
    if (rs.rope_type === 'linear') return f / rs.factor;
    const L0 = rs.original_max_position_embeddings, wavelength = (2 * Math.PI) / f;
    if (wavelength > L0 / rs.low_freq_factor) return f / rs.factor;
    if (wavelength < L0 / rs.high_freq_factor) return f;
    const s = (L0 / wavelength - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
    return (1 - s) * (f / rs.factor) + s * f;
  });
}

/** RMSNorm of each D-wide head of x in place (Qwen3's q_norm / k_norm). */
function headNorm(x: Float64Array, heads: number, D: number, w: Float64Array, eps: number): void {
  for (let h = 0; h < heads; h++) x.set(rmsnorm(x.subarray(h * D, (h + 1) * D), w, eps), h * D);
}

/** rotate_half RoPE on one head vector at position p (dimension i pairs with i + D/2). */
function ropeHead(x: Float64Array, off: number, D: number, p: number, invFreq: number[]): void {
  const half = D / 2;
  for (let i = 0; i < half; i++) {
    const ang = p * invFreq[i]!;
    const c = Math.cos(ang), s = Math.sin(ang);
    const a = x[off + i]!, b = x[off + i + half]!;
    x[off + i] = a * c - b * s;
    x[off + i + half] = b * c + a * s;
  }
}

/** One decoder layer over all rows (positions 0 .. T-1). */
export function refLayer(c: LlamaConfig, w: RefLayer, x: Rows): Rows {
  const T = x.length, C = c.hidden_size, H = c.num_attention_heads, KVH = c.num_key_value_heads, D = c.head_dim;
  const rep = H / KVH;
  const invFreq = refInvFreq(c);
  const qs: Rows = [], ks: Rows = [], vs: Rows = [];
  for (let t = 0; t < T; t++) {
    const xn = rmsnorm(x[t]!, w.inputNorm, c.rms_norm_eps);
    const q = matvec(w.q, xn, H * D, w.qBias), k = matvec(w.k, xn, KVH * D, w.kBias), v = matvec(w.v, xn, KVH * D, w.vBias);
    if (w.qNorm) headNorm(q, H, D, w.qNorm, c.rms_norm_eps);
    if (w.kNorm) headNorm(k, KVH, D, w.kNorm, c.rms_norm_eps);
    for (let h = 0; h < H; h++) ropeHead(q, h * D, D, t, invFreq);
    for (let h = 0; h < KVH; h++) ropeHead(k, h * D, D, t, invFreq);
    qs.push(q); ks.push(k); vs.push(v);
  }
  const out: Rows = [];
  for (let t = 0; t < T; t++) {
    const att = new Float64Array(H * D);
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / rep);
      const scores: number[] = [];
      for (let s = 0; s <= t; s++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += qs[t]![h * D + d]! * ks[s]![g * D + d]!;
        scores.push(dot / Math.sqrt(D));
      }
      const m = Math.max(...scores);
      const e = scores.map((z) => Math.exp(z - m));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let s = 0; s <= t; s++) {
        for (let d = 0; d < D; d++) att[h * D + d] += (e[s]! / sum) * vs[s]![g * D + d]!;
      }
    }
    const o = matvec(w.o, att, C, w.oBias);
    const mid = x[t]!.map((v, i) => v + o[i]!);
    const xn2 = rmsnorm(mid, w.postNorm, c.rms_norm_eps);
    const gt = matvec(w.gate, xn2, c.intermediate_size, w.gateBias), up = matvec(w.up, xn2, c.intermediate_size, w.upBias);
    const hh = gt.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]!);
    const dn = matvec(w.down, hh, C, w.downBias);
    out.push(mid.map((v, i) => v + dn[i]!));
  }
  return out;
}

export function refEmbed(c: LlamaConfig, w: RefWeights, ids: number[]): Rows {
  const C = c.hidden_size;
  return ids.map((id) => w.embed.slice(id * C, (id + 1) * C));
}

/** Layers lo .. hi-1 from x. */
export function refLayers(c: LlamaConfig, w: RefWeights, x: Rows, lo: number, hi: number): Rows {
  for (let l = lo; l < hi; l++) x = refLayer(c, w.layers[l]!, x);
  return x;
}

/** Final-normed hidden states of every position. */
export function refHidden(c: LlamaConfig, w: RefWeights, ids: number[]): Rows {
  return refLayers(c, w, refEmbed(c, w, ids), 0, c.num_hidden_layers).map((r) => rmsnorm(r, w.norm, c.rms_norm_eps));
}

export function refFinalNorm(c: LlamaConfig, w: RefWeights, x: Rows): Rows {
  return x.map((r) => rmsnorm(r, w.norm, c.rms_norm_eps));
}

/** Full-vocabulary logits of one hidden row. */
export function refLogitsRow(c: LlamaConfig, w: RefWeights, h: Float64Array): Float64Array {
  return matvec(w.lmHead ?? w.embed, h, c.vocab_size);
}

/** Relative error of a against reference b: max |a - b| / max |b|. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

export function randomIds(rng: Rng, n: number, V: number): number[] {
  return Array.from({ length: n }, () => rng.int(V));
}
