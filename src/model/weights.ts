import type { LlamaConfig } from './config.js';
import type { StoredTensor } from './bf16.js';

/**
 * Parameters of one decoder layer, in Hugging Face layout (linear weights [out, in]).
 * C = hidden_size, F = intermediate_size, H = heads, KVH = kv heads, D = head_dim.
 * The optional tensors exist exactly when the config has the feature (layerKeys).
 * T is how the seven linear weights are stored: float32 (the default, and always what the layer
 * functions read), or for frozen weights possibly bfloat16 bits (StoredTensor, src/model/bf16.ts).
 * Norm weights and biases are always float32.
 */
export interface LayerWeights<T extends StoredTensor = Float32Array> {
  inputNorm: Float32Array; // [C]              model.layers.{i}.input_layernorm.weight
  q: T;                    // [H*D, C]         model.layers.{i}.self_attn.q_proj.weight
  qBias?: Float32Array;    // [H*D]            self_attn.q_proj.bias        (qkv_bias)
  k: T;                    // [KVH*D, C]       model.layers.{i}.self_attn.k_proj.weight
  kBias?: Float32Array;    // [KVH*D]          self_attn.k_proj.bias        (qkv_bias)
  v: T;                    // [KVH*D, C]       model.layers.{i}.self_attn.v_proj.weight
  vBias?: Float32Array;    // [KVH*D]          self_attn.v_proj.bias        (qkv_bias)
  o: T;                    // [C, H*D]         model.layers.{i}.self_attn.o_proj.weight
  oBias?: Float32Array;    // [C]              self_attn.o_proj.bias        (o_bias)
  qNorm?: Float32Array;    // [D]              self_attn.q_norm.weight      (qk_norm)
  kNorm?: Float32Array;    // [D]              self_attn.k_norm.weight      (qk_norm)
  postNorm: Float32Array;  // [C]              model.layers.{i}.post_attention_layernorm.weight
  gate: T;                 // [F, C]           model.layers.{i}.mlp.gate_proj.weight
  gateBias?: Float32Array; // [F]              mlp.gate_proj.bias           (mlp_bias)
  up: T;                   // [F, C]           model.layers.{i}.mlp.up_proj.weight
  upBias?: Float32Array;   // [F]              mlp.up_proj.bias             (mlp_bias)
  down: T;                 // [C, F]           model.layers.{i}.mlp.down_proj.weight
  downBias?: Float32Array; // [C]              mlp.down_proj.bias           (mlp_bias)
}

/** The whole model's weights; T as in LayerWeights (the embedding and LM head may be bf16 too). */
export interface LlamaWeights<T extends StoredTensor = Float32Array> {
  embed: T;                     // [V, C]  model.embed_tokens.weight
  layers: LayerWeights<T>[];
  norm: Float32Array;           // [C]     model.norm.weight
  /** [V, C] lm_head.weight, or null when tied to embed. */
  lmHead: T | null;
}

export type LayerKey = keyof LayerWeights;

/**
 * HF tensor name suffix of each layer parameter, in the order the tensors are listed (manifest,
 * random init, parameters). The Llama tensors keep their historical order, so seeded random weights
 * of a Llama config are what they always were (the added tensors draw no random numbers).
 */
export const LAYER_TENSOR_NAMES: Record<LayerKey, string> = {
  inputNorm: 'input_layernorm.weight',
  q: 'self_attn.q_proj.weight',
  qBias: 'self_attn.q_proj.bias',
  k: 'self_attn.k_proj.weight',
  kBias: 'self_attn.k_proj.bias',
  v: 'self_attn.v_proj.weight',
  vBias: 'self_attn.v_proj.bias',
  o: 'self_attn.o_proj.weight',
  oBias: 'self_attn.o_proj.bias',
  qNorm: 'self_attn.q_norm.weight',
  kNorm: 'self_attn.k_norm.weight',
  postNorm: 'post_attention_layernorm.weight',
  gate: 'mlp.gate_proj.weight',
  gateBias: 'mlp.gate_proj.bias',
  up: 'mlp.up_proj.weight',
  upBias: 'mlp.up_proj.bias',
  down: 'mlp.down_proj.weight',
  downBias: 'mlp.down_proj.bias',
};

const ALL_LAYER_KEYS = Object.keys(LAYER_TENSOR_NAMES) as LayerKey[];

/** What each layer tensor is: random init and checks treat the kinds differently. */
export const LAYER_TENSOR_KIND: Record<LayerKey, 'linear' | 'bias' | 'norm'> = {
  inputNorm: 'norm', q: 'linear', qBias: 'bias', k: 'linear', kBias: 'bias', v: 'linear', vBias: 'bias',
  o: 'linear', oBias: 'bias', qNorm: 'norm', kNorm: 'norm', postNorm: 'norm',
  gate: 'linear', gateBias: 'bias', up: 'linear', upBias: 'bias', down: 'linear', downBias: 'bias',
};

/** The layer parameters a config has, in LAYER_TENSOR_NAMES order. */
export function layerKeys(c: LlamaConfig): LayerKey[] {
  const on: Partial<Record<LayerKey, boolean>> = {
    qBias: c.qkv_bias === true, kBias: c.qkv_bias === true, vBias: c.qkv_bias === true,
    oBias: c.o_bias === true,
    qNorm: c.qk_norm === true, kNorm: c.qk_norm === true,
    gateBias: c.mlp_bias === true, upBias: c.mlp_bias === true, downBias: c.mlp_bias === true,
  };
  return ALL_LAYER_KEYS.filter((k) => on[k] ?? true);
}

/** The expected shape of each layer parameter the config has (keys of layerKeys only). */
export function layerShapes(c: LlamaConfig): Partial<Record<LayerKey, number[]>> {
  const C = c.hidden_size, F = c.intermediate_size, D = c.head_dim;
  const H = c.num_attention_heads, KVH = c.num_key_value_heads;
  const all: Record<LayerKey, number[]> = {
    inputNorm: [C], q: [H * D, C], qBias: [H * D], k: [KVH * D, C], kBias: [KVH * D], v: [KVH * D, C], vBias: [KVH * D],
    o: [C, H * D], oBias: [C], qNorm: [D], kNorm: [D],
    postNorm: [C], gate: [F, C], gateBias: [F], up: [F, C], upBias: [F], down: [C, F], downBias: [C],
  };
  const out: Partial<Record<LayerKey, number[]>> = {};
  for (const k of layerKeys(c)) out[k] = all[k];
  return out;
}

/** Every tensor of the model as [HF name, shape], in a stable order. */
export function tensorManifest(c: LlamaConfig): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [c.vocab_size, c.hidden_size]]];
  const shapes = layerShapes(c);
  const keys = layerKeys(c);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    for (const key of keys) out.push([`model.layers.${i}.${LAYER_TENSOR_NAMES[key]}`, shapes[key]!]);
  }
  out.push(['model.norm.weight', [c.hidden_size]]);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [c.vocab_size, c.hidden_size]]);
  return out;
}

/** The layer key of an HF tensor name suffix (e.g. `self_attn.q_norm.weight`), or undefined. */
export function layerKeyOf(suffix: string): LayerKey | undefined {
  return ALL_LAYER_KEYS.find((k) => LAYER_TENSOR_NAMES[k] === suffix);
}
