// Hugging Face config.json -> LlamaConfig, refusing what the decoder does not implement.
//
// The family (src/model/families.ts) comes from `architectures` and/or `model_type` (absent both:
// llama). Defaults are the family's Hugging Face config class's own (so a config.json loads here
// exactly as transformers would read it): num_key_value_heads = num_attention_heads (Mistral 8,
// Qwen 32 when the key is absent), rms_norm_eps 1e-6, rope_theta 10000, max_position_embeddings 2048
// (Mistral 131072, Qwen 32768), tie_word_embeddings false, head_dim = hidden_size / heads (Qwen3 128),
// initializer_range 0.02. The shape fields (hidden_size, intermediate_size, num_hidden_layers,
// num_attention_heads, vocab_size) have no default here: a config without them is an error.
// Unknown keys (torch_dtype, use_cache, max_window_layers, transformers.js_config, ...) do not change
// the computation and are ignored.
import { z } from 'zod';
import type { LlamaConfig, ModelFamily, RopeScaling } from './config.js';
import { FAMILIES, SUPPORTED_ARCHITECTURES, SUPPORTED_FAMILIES, familyFlags, familyOfArchitecture, familyOfModelType } from './families.js';

export { SUPPORTED_ARCHITECTURES } from './families.js';

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
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  rope_scaling: z.unknown().optional(),
  sliding_window: posInt.nullable().optional(),
  use_sliding_window: z.boolean().optional(),
  // Features the decoder does not implement: accepted only at their neutral values.
  hidden_act: z.string().optional(),
  rope_interleaved: z.boolean().optional(),
  partial_rotary_factor: z.number().optional(),
  attention_dropout: z.number().optional(),
  rope_parameters: z.unknown().optional(),
});

type Fail = (field: string, why: string) => never;

/** The family named by `architectures` and `model_type` (which must agree); llama when neither is given. */
function parseFamily(architectures: string[] | undefined, modelType: string | undefined, fail: Fail): ModelFamily {
  let byArch: ModelFamily | undefined;
  if (architectures !== undefined) {
    const fams = architectures.map(familyOfArchitecture);
    if (architectures.length === 0 || fams.some((f) => f === undefined)) {
      fail('architectures', `${JSON.stringify(architectures)} is not supported; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`);
    }
    if (new Set(fams).size > 1) fail('architectures', `${JSON.stringify(architectures)} names several families; expected one`);
    byArch = fams[0];
  }
  let byType: ModelFamily | undefined;
  if (modelType !== undefined) {
    byType = familyOfModelType(modelType);
    if (byType === undefined) fail('model_type', `"${modelType}" is not supported; supported model types: ${SUPPORTED_FAMILIES.join(', ')} (architectures ${SUPPORTED_ARCHITECTURES.join(', ')})`);
  }
  if (byArch !== undefined && byType !== undefined && byArch !== byType) {
    fail('model_type', `"${modelType}" disagrees with architectures ${JSON.stringify(architectures)} (model_type "${byArch}")`);
  }
  return byArch ?? byType ?? 'llama';
}

const ROPE_TYPES = ['default', 'linear', 'llama3'];

/**
 * rope_scaling as transformers reads it: the type under `rope_type` (or the older `type`);
 * `default` (or null) is plain RoPE. Keys a type does not use are ignored, as transformers does.
 */
function parseRopeScaling(raw: unknown, fail: Fail): RopeScaling | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) fail('rope_scaling', `${JSON.stringify(raw)} is not an object`);
  const r = raw as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === undefined) fail('rope_scaling', `${JSON.stringify(raw)} has no rope_type (or type)`);
  if (type === 'default') return undefined;
  if (type !== 'linear' && type !== 'llama3') {
    fail('rope_scaling', `rope_type ${JSON.stringify(type)} is not supported; supported: ${ROPE_TYPES.join(', ')}`);
  }
  const num = (key: string): number => {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(`rope_scaling.${key}`, `${JSON.stringify(v)} is not a positive number (required by rope_type "${type}")`);
    return v as number;
  };
  const factor = num('factor');
  if (type === 'linear') return { rope_type: 'linear', factor };
  const low = num('low_freq_factor'), high = num('high_freq_factor');
  const original = num('original_max_position_embeddings');
  // The smooth band interpolates over (L0/high, L0/low): it must not be empty (transformers divides by high - low).
  if (!(high > low)) fail('rope_scaling.high_freq_factor', `${high} must be greater than low_freq_factor ${low}`);
  return { rope_type: 'llama3', factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: original };
}

/**
 * Parse and check a config.json object. `source` names where it came from (a path) for errors.
 * Throws an Error naming the source and the offending field.
 */
export function parseLlamaConfig(json: unknown, source: string): LlamaConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${source}: a model config must be a JSON object, got ${json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json}`);
  }
  const fail: Fail = (field, why) => {
    throw new Error(`${source}: field "${field}": ${why}`);
  };
  // The family first: an unsupported architecture is the error to report, whatever else is wrong.
  const rawArch = (json as Record<string, unknown>).architectures, rawType = (json as Record<string, unknown>).model_type;
  if (Array.isArray(rawArch) && rawArch.every((a) => typeof a === 'string') && (rawType === undefined || typeof rawType === 'string')) {
    parseFamily(rawArch, rawType, fail);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `field "${i.path.join('.') || '(root)'}": ${i.message}`);
    throw new Error(`${source}: invalid model config: ${msgs.join('; ')}`);
  }
  const c = r.data;
  const family = parseFamily(c.architectures, c.model_type, fail);
  const spec = FAMILIES[family];

  if (c.hidden_act !== undefined && c.hidden_act !== 'silu') fail('hidden_act', `"${c.hidden_act}" is not supported; the MLP uses "silu"`);
  if (c.rope_interleaved === true) fail('rope_interleaved', 'true is not supported; RoPE is the non-interleaved rotate_half form');
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1) {
    fail('partial_rotary_factor', `${c.partial_rotary_factor} is not supported; RoPE rotates the whole head (1)`);
  }
  if (c.attention_dropout !== undefined && c.attention_dropout !== 0) {
    fail('attention_dropout', `${c.attention_dropout} is not supported; the decoder has no dropout (use 0)`);
  }
  // Newer transformers may write rope_theta and rope_scaling together under this key; reading it
  // by guesswork could silently change the frequencies, so it is refused until it is implemented.
  if (c.rope_parameters !== undefined && c.rope_parameters !== null) {
    fail('rope_parameters', 'is not supported; give rope_theta and rope_scaling instead');
  }
  const ropeScaling = parseRopeScaling(c.rope_scaling, fail);

  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads === undefined ? (spec.kvHeadsDefault ?? heads) : (c.num_key_value_heads ?? heads);
  if (heads % kvHeads !== 0) {
    fail('num_key_value_heads', `num_attention_heads ${heads} is not divisible by num_key_value_heads ${kvHeads}${c.num_key_value_heads === undefined ? ` (the ${spec.architecture} default when absent)` : ''}`);
  }
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) {
    headDim = c.head_dim;
  } else if (spec.headDimDefault !== null) {
    headDim = spec.headDimDefault;
  } else {
    if (c.hidden_size % heads !== 0) {
      fail('hidden_size', `${c.hidden_size} is not divisible by num_attention_heads ${heads} (and no head_dim is given)`);
    }
    headDim = c.hidden_size / heads;
  }
  if (headDim % 2 !== 0) fail('head_dim', `${headDim} is odd; RoPE pairs dimension i with i + head_dim/2`);
  const maxPositions = c.max_position_embeddings ?? spec.maxPositionsDefault;

  // Sliding-window attention is not implemented: accepted only where it can never take effect,
  // i.e. when the window covers every length the model accepts (max_position_embeddings).
  if (spec.sliding.on !== 'never') {
    const window = c.sliding_window === undefined ? spec.sliding.windowDefault : c.sliding_window;
    const on = spec.sliding.on === 'window' || c.use_sliding_window === true;
    if (on && window !== null && window < maxPositions) {
      const why = spec.sliding.on === 'window' ? '' : ' with use_sliding_window true';
      fail('sliding_window', `${window}${c.sliding_window === undefined ? ` (the ${spec.architecture} default when absent)` : ''}${why} is smaller than max_position_embeddings ${maxPositions}: sliding-window attention is not implemented (attention here sees the whole context); ${spec.sliding.on === 'window' ? 'set sliding_window null' : 'set use_sliding_window false'} or a window of at least max_position_embeddings`);
    }
  }
  const features = spec.features({ attention_bias: c.attention_bias ?? false, mlp_bias: c.mlp_bias ?? false });

  // Llama 3.x lists several end ids (e.g. [128001, 128008, 128009]): the first is the EOS where one id
  // is needed, and every one of them stops generation (eos_token_ids).
  let eosList: number[] | undefined;
  if (Array.isArray(c.eos_token_id)) {
    if (c.eos_token_id.length === 0) fail('eos_token_id', 'an empty list; expected an id or a list of ids');
    eosList = [...new Set(c.eos_token_id)];
  } else if (c.eos_token_id !== undefined && c.eos_token_id !== null) {
    eosList = [c.eos_token_id];
  }
  const eos = eosList?.[0];
  for (const [field, id] of [['bos_token_id', c.bos_token_id], ...(eosList ?? []).map((e) => ['eos_token_id', e] as const), ['pad_token_id', c.pad_token_id]] as const) {
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
    max_position_embeddings: maxPositions,
    tie_word_embeddings: c.tie_word_embeddings ?? false,
    head_dim: headDim,
    initializer_range: c.initializer_range ?? 0.02,
  };
  if (c.bos_token_id !== undefined && c.bos_token_id !== null) out.bos_token_id = c.bos_token_id;
  if (eos !== undefined) out.eos_token_id = eos;
  // Only for a list of several, so that one-id configs keep their fields (and fingerprints).
  if (eosList !== undefined && eosList.length > 1) out.eos_token_ids = eosList;
  if (c.pad_token_id !== undefined && c.pad_token_id !== null) out.pad_token_id = c.pad_token_id;
  // Only what is on, so that a plain Llama config stays exactly the Llama fields.
  if (family !== 'llama') out.model_type = family;
  for (const k of ['qkv_bias', 'o_bias', 'mlp_bias', 'qk_norm'] as const) if (features[k]) out[k] = true;
  if (ropeScaling) out.rope_scaling = ropeScaling;
  return out;
}

/**
 * A config.json object for a LlamaConfig that Hugging Face transformers reads back unchanged (as
 * the config's family). Throws when the family cannot express the config's features.
 */
export function toHfConfigJson(c: LlamaConfig): Record<string, unknown> {
  const family = c.model_type ?? 'llama';
  const spec = FAMILIES[family];
  const flags = familyFlags(c);
  const out: Record<string, unknown> = {
    architectures: [spec.architecture],
    model_type: family,
    hidden_act: 'silu',
  };
  if (family === 'llama' || family === 'qwen3') out.attention_bias = flags.attention_bias;
  if (family === 'llama') out.mlp_bias = flags.mlp_bias;
  // No sliding window: null switches it off in every family (and Qwen's flag says so too).
  if (family === 'mistral' || family === 'qwen2' || family === 'qwen3') out.sliding_window = null;
  if (family === 'qwen2' || family === 'qwen3') {
    out.use_sliding_window = false;
    out.max_window_layers = c.num_hidden_layers;
  }
  Object.assign(out, {
    rope_scaling: c.rope_scaling ? { ...c.rope_scaling } : null,
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
  });
  if (c.bos_token_id !== undefined) out.bos_token_id = c.bos_token_id;
  if (c.eos_token_ids !== undefined) out.eos_token_id = [...c.eos_token_ids];
  else if (c.eos_token_id !== undefined) out.eos_token_id = c.eos_token_id;
  if (c.pad_token_id !== undefined) out.pad_token_id = c.pad_token_id;
  return out;
}

/**
 * A JSON string of the config with sorted keys (nested objects such as rope_scaling too): the same
 * config always gives the same text. Fields left undefined are skipped, so the family features,
 * present only when on, leave the text (and the fingerprint) of a plain Llama config as it was.
 */
export function canonicalConfigJson(c: LlamaConfig): string {
  const sorted = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const obj: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) obj[k] = sorted(x);
    }
    return obj;
  };
  return JSON.stringify(sorted(c));
}
