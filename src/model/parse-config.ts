// Hugging Face config.json -> LlamaConfig, refusing what the decoder does not implement.
//
// Defaults are Hugging Face LlamaConfig's own (so a config.json loads here exactly as transformers
// would read it): num_key_value_heads = num_attention_heads, rms_norm_eps 1e-6, rope_theta 10000,
// max_position_embeddings 2048, tie_word_embeddings false, head_dim = hidden_size / heads,
// initializer_range 0.02. The shape fields (hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, vocab_size) have no default here: a config without them is an error.
// Unknown keys (torch_dtype, use_cache, transformers.js_config, ...) do not change the computation
// and are ignored.
import { z } from 'zod';
import type { LlamaConfig } from './config.js';

const posInt = z.number().int().positive();
const tokenId = z.number().int().nonnegative();

const schema = z.object({
  architectures: z.array(z.string()).optional(),
  model_type: z.string().optional(),
  hidden_size: posInt,
  intermediate_size: posInt,
  num_hidden_layers: posInt,
  num_attention_heads: posInt,
  num_key_value_heads: posInt.nullable().optional(),
  vocab_size: posInt,
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  max_position_embeddings: posInt.optional(),
  tie_word_embeddings: z.boolean().optional(),
  head_dim: posInt.nullable().optional(),
  initializer_range: z.number().positive().optional(),
  bos_token_id: tokenId.nullable().optional(),
  eos_token_id: z.union([tokenId, z.array(tokenId)]).nullable().optional(),
  pad_token_id: tokenId.nullable().optional(),
  // Features the decoder does not implement: accepted only at their neutral values.
  hidden_act: z.string().optional(),
  rope_scaling: z.unknown().optional(),
  rope_interleaved: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  attention_dropout: z.number().optional(),
});

/** Architectures whose weights and computation are exactly LlamaForCausalLM's. */
export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM'];

/**
 * Parse and check a config.json object. `source` names where it came from (a path) for errors.
 * Throws an Error naming the source and the offending field.
 */
export function parseLlamaConfig(json: unknown, source: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${source}: a model config must be a JSON object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `field "${i.path.join('.') || '(root)'}": ${i.message}`);
    throw new Error(`${source}: invalid Llama config: ${msgs.join('; ')}`);
  }
  const c = r.data;
  const fail = (field: string, why: string): never => {
    throw new Error(`${source}: field "${field}": ${why}`);
  };

  if (c.architectures !== undefined) {
    const bad = c.architectures.filter((a) => !SUPPORTED_ARCHITECTURES.includes(a));
    if (c.architectures.length === 0 || bad.length > 0) {
      fail('architectures', `${JSON.stringify(c.architectures)} is not supported; expected ${JSON.stringify(SUPPORTED_ARCHITECTURES)}`);
    }
  }
  if (c.model_type !== undefined && c.model_type !== 'llama') fail('model_type', `"${c.model_type}" is not supported; expected "llama"`);
  if (c.hidden_act !== undefined && c.hidden_act !== 'silu') fail('hidden_act', `"${c.hidden_act}" is not supported; the MLP uses "silu"`);
  if (c.rope_scaling !== undefined && c.rope_scaling !== null) {
    fail('rope_scaling', `${JSON.stringify(c.rope_scaling)} is not supported; only plain RoPE (rope_scaling null)`);
  }
  if (c.rope_interleaved === true) fail('rope_interleaved', 'true is not supported; RoPE is the non-interleaved rotate_half form');
  if (c.attention_bias === true) fail('attention_bias', 'true is not supported; attention projections have no bias');
  if (c.mlp_bias === true) fail('mlp_bias', 'true is not supported; MLP projections have no bias');
  if (c.attention_dropout !== undefined && c.attention_dropout !== 0) {
    fail('attention_dropout', `${c.attention_dropout} is not supported; the decoder has no dropout (use 0)`);
  }

  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads ?? heads;
  if (heads % kvHeads !== 0) {
    fail('num_key_value_heads', `num_attention_heads ${heads} is not divisible by num_key_value_heads ${kvHeads}`);
  }
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) {
    headDim = c.head_dim;
  } else {
    if (c.hidden_size % heads !== 0) {
      fail('hidden_size', `${c.hidden_size} is not divisible by num_attention_heads ${heads} (and no head_dim is given)`);
    }
    headDim = c.hidden_size / heads;
  }
  if (headDim % 2 !== 0) fail('head_dim', `${headDim} is odd; RoPE pairs dimension i with i + head_dim/2`);

  let eos: number | undefined;
  if (Array.isArray(c.eos_token_id)) {
    if (c.eos_token_id.length !== 1) {
      fail('eos_token_id', `a list of ${c.eos_token_id.length} ids ${JSON.stringify(c.eos_token_id)} is not supported; expected one id`);
    }
    eos = c.eos_token_id[0];
  } else {
    eos = c.eos_token_id ?? undefined;
  }
  for (const [field, id] of [['bos_token_id', c.bos_token_id], ['eos_token_id', eos], ['pad_token_id', c.pad_token_id]] as const) {
    if (id !== undefined && id !== null && id >= c.vocab_size) fail(field, `${id} is outside the vocabulary (vocab_size ${c.vocab_size})`);
  }

  const out: LlamaConfig = {
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    vocab_size: c.vocab_size,
    rms_norm_eps: c.rms_norm_eps ?? 1e-6,
    rope_theta: c.rope_theta ?? 10000,
    max_position_embeddings: c.max_position_embeddings ?? 2048,
    tie_word_embeddings: c.tie_word_embeddings ?? false,
    head_dim: headDim,
    initializer_range: c.initializer_range ?? 0.02,
  };
  if (c.bos_token_id !== undefined && c.bos_token_id !== null) out.bos_token_id = c.bos_token_id;
  if (eos !== undefined) out.eos_token_id = eos;
  if (c.pad_token_id !== undefined && c.pad_token_id !== null) out.pad_token_id = c.pad_token_id;
  return out;
}

/** A config.json object for a LlamaConfig that Hugging Face transformers reads back unchanged. */
export function toHfConfigJson(c: LlamaConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    rope_scaling: null,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads,
    num_key_value_heads: c.num_key_value_heads,
    head_dim: c.head_dim,
    vocab_size: c.vocab_size,
    rms_norm_eps: c.rms_norm_eps,
    rope_theta: c.rope_theta,
    max_position_embeddings: c.max_position_embeddings,
    tie_word_embeddings: c.tie_word_embeddings,
    initializer_range: c.initializer_range ?? 0.02,
  };
  if (c.bos_token_id !== undefined) out.bos_token_id = c.bos_token_id;
  if (c.eos_token_id !== undefined) out.eos_token_id = c.eos_token_id;
  if (c.pad_token_id !== undefined) out.pad_token_id = c.pad_token_id;
  return out;
}

/** A JSON string of the config with sorted keys: the same config always gives the same text. */
export function canonicalConfigJson(c: LlamaConfig): string {
  const keys = Object.keys(c).sort() as Array<keyof LlamaConfig>;
  const obj: Record<string, unknown> = {};
  for (const k of keys) if (c[k] !== undefined) obj[k] = c[k];
  return JSON.stringify(obj);
}
