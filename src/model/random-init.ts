// Seeded random weights for any supported config: the offline stand-in for a real checkpoint.
// Like Hugging Face's _init_weights (Llama, Mistral, Qwen2, Qwen3 alike): every linear weight and the
// embedding are drawn from normal(0, initializer_range) (default 0.02), every linear bias is 0, and
// every RMSNorm weight is 1 (the Qwen3 q_norm/k_norm included).
// Tensors are filled in tensorManifest order from one Rng stream, so the same (config, seed) always
// gives the same weights; biases and norms draw nothing, so a family's extra tensors leave the
// linear weights of the same seed unchanged.
import type { LlamaConfig } from './config.js';
import { LAYER_TENSOR_KIND, layerKeys, layerShapes, type LayerKey, type LayerWeights, type LlamaWeights } from './weights.js';
import { packBf16, type StoredTensor } from './bf16.js';
import { Rng } from '../util/rng.js';

function sizeOf(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * n draws of normal(0, std) by Marsaglia's polar method on 32-bit uniforms: about 4x faster than
 * Rng.normal()'s Box-Muller on 53-bit uniforms, which matters for 135M weights (2 s instead of 8).
 */
export function normalArray(rng: Rng, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let x: number, y: number, q: number;
    do {
      x = rng.nextUint32() / 2147483648 - 1; // uniform on [-1, 1)
      y = rng.nextUint32() / 2147483648 - 1;
      q = x * x + y * y;
    } while (q >= 1 || q === 0);
    const f = std * Math.sqrt((-2 * Math.log(q)) / q);
    out[i] = x * f;
    if (i + 1 < n) out[i + 1] = y * f;
  }
  return out;
}

/** How randomWeights stores what it draws (defaults: everything float32, as drawn). */
export interface RandomStorage {
  /** Store the embedding (and an untied LM head) as bf16, drawn and packed in chunks (no float32 copy). */
  packEmbed?: boolean;
  /** Turns each drawn linear weight of a layer into what is stored (e.g. merge an adapter, pack as bf16). */
  finishLinear?: (layer: number, key: LayerKey, data: Float32Array) => StoredTensor;
}

export function randomWeights(config: LlamaConfig, seed: number): LlamaWeights;
export function randomWeights(config: LlamaConfig, seed: number, storage: RandomStorage): LlamaWeights<StoredTensor>;
export function randomWeights(config: LlamaConfig, seed: number, storage: RandomStorage = {}): LlamaWeights<StoredTensor> {
  const std = config.initializer_range ?? 0.02;
  if (!(std > 0) || !Number.isFinite(std)) throw new Error(`randomWeights: initializer_range must be a positive number, got ${std}`);
  const rng = new Rng(seed);
  const C = config.hidden_size, V = config.vocab_size;
  const matrix = (n: number): StoredTensor => (storage.packEmbed ? normalBf16(rng, n, std) : normalArray(rng, n, std));
  const embed = matrix(V * C);
  const shapes = layerShapes(config);
  const layers: LayerWeights<StoredTensor>[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const layer: Partial<Record<LayerKey, StoredTensor>> = {};
    for (const key of layerKeys(config)) {
      const n = sizeOf(shapes[key]!);
      const kind = LAYER_TENSOR_KIND[key];
      if (kind === 'norm') layer[key] = new Float32Array(n).fill(1);
      else if (kind === 'bias') layer[key] = new Float32Array(n);
      else {
        const w = normalArray(rng, n, std);
        layer[key] = storage.finishLinear ? storage.finishLinear(i, key, w) : w;
      }
    }
    layers.push(layer as unknown as LayerWeights<StoredTensor>);
  }
  const norm = new Float32Array(C).fill(1);
  const lmHead = config.tie_word_embeddings ? null : matrix(V * C);
  return { embed, layers, norm, lmHead };
}

/**
 * normalArray's draws, stored as bf16: drawn in chunks of an even length (so the stream is exactly
 * normalArray's) and packed chunk by chunk, never holding the whole tensor in float32.
 */
export function normalBf16(rng: Rng, n: number, std: number): Uint16Array {
  const out = new Uint16Array(n);
  const CHUNK = 1 << 20; // even
  for (let i = 0; i < n; i += CHUNK) {
    const m = Math.min(CHUNK, n - i);
    out.set(packBf16(normalArray(rng, m, std)), i);
  }
  return out;
}
