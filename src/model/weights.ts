import type { LlamaConfig } from './config.js';

/**
 * Parameters of one decoder layer, float32, in Hugging Face layout (linear weights [out, in]).
 * C = hidden_size, F = intermediate_size, H = heads, KVH = kv heads, D = head_dim.
 */
export interface LayerWeights {
  inputNorm: Float32Array; // [C]              model.layers.{i}.input_layernorm.weight
  q: Float32Array;         // [H*D, C]         model.layers.{i}.self_attn.q_proj.weight
  k: Float32Array;         // [KVH*D, C]       model.layers.{i}.self_attn.k_proj.weight
  v: Float32Array;         // [KVH*D, C]       model.layers.{i}.self_attn.v_proj.weight
  o: Float32Array;         // [C, H*D]         model.layers.{i}.self_attn.o_proj.weight
  postNorm: Float32Array;  // [C]              model.layers.{i}.post_attention_layernorm.weight
  gate: Float32Array;      // [F, C]           model.layers.{i}.mlp.gate_proj.weight
  up: Float32Array;        // [F, C]           model.layers.{i}.mlp.up_proj.weight
  down: Float32Array;      // [C, F]           model.layers.{i}.mlp.down_proj.weight
}

export interface LlamaWeights {
  embed: Float32Array;          // [V, C]  model.embed_tokens.weight
  layers: LayerWeights[];
  norm: Float32Array;           // [C]     model.norm.weight
  /** [V, C] lm_head.weight, or null when tied to embed. */
  lmHead: Float32Array | null;
}

export type LayerKey = keyof LayerWeights;

/** HF tensor name suffix of each layer parameter. */
export const LAYER_TENSOR_NAMES: Record<LayerKey, string> = {
  inputNorm: 'input_layernorm.weight',
  q: 'self_attn.q_proj.weight',
  k: 'self_attn.k_proj.weight',
  v: 'self_attn.v_proj.weight',
  o: 'self_attn.o_proj.weight',
  postNorm: 'post_attention_layernorm.weight',
  gate: 'mlp.gate_proj.weight',
  up: 'mlp.up_proj.weight',
  down: 'mlp.down_proj.weight',
};

/** The expected shape of each layer parameter under a config. */
export function layerShapes(c: LlamaConfig): Record<LayerKey, number[]> {
  const C = c.hidden_size, F = c.intermediate_size, D = c.head_dim;
  const H = c.num_attention_heads, KVH = c.num_key_value_heads;
  return {
    inputNorm: [C], q: [H * D, C], k: [KVH * D, C], v: [KVH * D, C], o: [C, H * D],
    postNorm: [C], gate: [F, C], up: [F, C], down: [C, F],
  };
}

/** Every tensor of the model as [HF name, shape], in a stable order. */
export function tensorManifest(c: LlamaConfig): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [['model.embed_tokens.weight', [c.vocab_size, c.hidden_size]]];
  const shapes = layerShapes(c);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    for (const key of Object.keys(LAYER_TENSOR_NAMES) as LayerKey[]) {
      out.push([`model.layers.${i}.${LAYER_TENSOR_NAMES[key]}`, shapes[key]]);
    }
  }
  out.push(['model.norm.weight', [c.hidden_size]]);
  if (!c.tie_word_embeddings) out.push(['lm_head.weight', [c.vocab_size, c.hidden_size]]);
  return out;
}
