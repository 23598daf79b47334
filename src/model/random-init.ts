// Seeded random weights for any supported config: the offline stand-in for a real checkpoint.
// Like Hugging Face's _init_weights (Llama, Mistral, Qwen2, Qwen3 alike): every linear weight and the
// embedding are drawn from normal(0, initializer_range) (default 0.02), every linear bias is 0, and
// every RMSNorm weight is 1 (the Qwen3 q_norm/k_norm included).
// Tensors are filled in tensorManifest order from one Rng stream, so the same (config, seed) always
// gives the same weights; biases and norms draw nothing, so a family's extra tensors leave the
// linear weights of the same seed unchanged.
import type { LlamaConfig } from './config.js';
import { LAYER_TENSOR_KIND, layerKeys, layerShapes, type LayerWeights, type LlamaWeights } from './weights.js';
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

export function randomWeights(config: LlamaConfig, seed: number): LlamaWeights {
  const std = config.initializer_range ?? 0.02;
  if (!(std > 0) || !Number.isFinite(std)) throw new Error(`randomWeights: initializer_range must be a positive number, got ${std}`);
  const rng = new Rng(seed);
  const C = config.hidden_size, V = config.vocab_size;
  const embed = normalArray(rng, V * C, std);
  const shapes = layerShapes(config);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const layer: Partial<LayerWeights> = {};
    for (const key of layerKeys(config)) {
      const n = sizeOf(shapes[key]!);
      const kind = LAYER_TENSOR_KIND[key];
      layer[key] = kind === 'norm' ? new Float32Array(n).fill(1) : kind === 'bias' ? new Float32Array(n) : normalArray(rng, n, std);
    }
    layers.push(layer as LayerWeights);
  }
  const norm = new Float32Array(C).fill(1);
  const lmHead = config.tie_word_embeddings ? null : normalArray(rng, V * C, std);
  return { embed, layers, norm, lmHead };
}
