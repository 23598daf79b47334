// Built-in model shapes, used as `random:<name>` specs (seeded random weights, no checkpoint).
//
// - smollm2-135m: exactly HuggingFaceTB/SmolLM2-135M-Instruct's config.json (134.5M parameters,
//   540 MB in float32); meant for that model's tokenizer.json (vocab 49152). Without one, loadModel
//   falls back to the byte-level tokenizer, whose 259 ids fit inside the vocabulary.
// - small: a fast stand-in for training demos: hidden 128, 6 layers, 4 heads of 32 (2 KV heads),
//   MLP 344, byte-level vocabulary (259), tied embeddings; about 1.1M parameters.
// - tiny: for tests: hidden 64, 4 layers, 4 heads of 16 (2 KV heads), MLP 172, byte-level vocabulary
//   (259), tied embeddings; about 0.2M parameters.
// Both small models keep SmolLM2's proportions (MLP about 2.7x hidden, 2 query heads per KV head) and
// its special-token ids (bos 1 = <|im_start|>, eos 2 = <|im_end|>, pad 2), which the byte-level
// tokenizer shares.
import type { LlamaConfig } from './config.js';
import { BYTE_VOCAB_SIZE } from './tokenizer.js';

export const SMOLLM2_135M: LlamaConfig = {
  hidden_size: 576,
  intermediate_size: 1536,
  num_hidden_layers: 30,
  num_attention_heads: 9,
  num_key_value_heads: 3,
  vocab_size: 49152,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  max_position_embeddings: 8192,
  tie_word_embeddings: true,
  head_dim: 64,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 2,
  initializer_range: 0.041666666666666664,
};

export const SMALL: LlamaConfig = {
  hidden_size: 128,
  intermediate_size: 344,
  num_hidden_layers: 6,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: BYTE_VOCAB_SIZE,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 4096,
  tie_word_embeddings: true,
  head_dim: 32,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 2,
  initializer_range: 0.02,
};

export const TINY: LlamaConfig = {
  hidden_size: 64,
  intermediate_size: 172,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: BYTE_VOCAB_SIZE,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 4096,
  tie_word_embeddings: true,
  head_dim: 16,
  bos_token_id: 1,
  eos_token_id: 2,
  pad_token_id: 2,
  initializer_range: 0.02,
};

export const BUILTIN_CONFIGS: Readonly<Record<string, LlamaConfig>> = {
  'smollm2-135m': SMOLLM2_135M,
  small: SMALL,
  tiny: TINY,
};

/** A copy of a built-in config by name; the error lists the names that exist. */
export function builtinConfig(name: string): LlamaConfig {
  const c = BUILTIN_CONFIGS[name];
  if (!c) throw new Error(`unknown built-in model config "${name}"; expected one of ${Object.keys(BUILTIN_CONFIGS).join(', ')}`);
  return { ...c };
}

/** Number of parameters of a config (tied embeddings counted once; a family's biases and q/k norms included). */
export function parameterCount(c: LlamaConfig): number {
  const C = c.hidden_size, F = c.intermediate_size, D = c.head_dim;
  const HD = c.num_attention_heads * D, KVD = c.num_key_value_heads * D;
  let perLayer = 2 * C + C * HD * 2 + C * KVD * 2 + 3 * C * F;
  if (c.qkv_bias) perLayer += HD + 2 * KVD;
  if (c.o_bias) perLayer += C;
  if (c.mlp_bias) perLayer += 2 * F + C;
  if (c.qk_norm) perLayer += 2 * D;
  return c.vocab_size * C * (c.tie_word_embeddings ? 1 : 2) + c.num_hidden_layers * perLayer + C;
}
