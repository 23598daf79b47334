// The Hugging Face decoder families the decoder computes exactly, and how each one's config.json
// maps onto the decoder's features (src/model/config.ts).
//
// All four are the same decoder (RMSNorm, rotate_half RoPE, grouped-query attention, SwiGLU MLP, the
// same tensor names) and differ only in:
//   llama    LlamaForCausalLM     biases on q,k,v,o when attention_bias; on gate,up,down when mlp_bias
//   mistral  MistralForCausalLM   no biases; sliding-window attention unless sliding_window is null
//   qwen2    Qwen2ForCausalLM     biases on q,k,v always (none on o); sliding window when use_sliding_window
//   qwen3    Qwen3ForCausalLM     biases on q,k,v,o when attention_bias; RMSNorm of each query and key
//                                head (q_norm, k_norm) before RoPE; sliding window as qwen2
// Where transformers' modeling code hard-wires a bias (Qwen2's q/k/v on, Mistral's off, no MLP bias
// outside Llama), the config.json flag is inert there and ignored here too.
// Defaults are those of each family's transformers config class, for the fields where they differ.
import type { LlamaConfig, ModelFamily } from './config.js';

/** The decoder features a family turns on, given the config.json flags it reads. */
export interface FamilyFeatures {
  qkv_bias: boolean;
  o_bias: boolean;
  mlp_bias: boolean;
  qk_norm: boolean;
}

export interface FamilySpec {
  family: ModelFamily;
  /** config.json `architectures` entry (the CausalLM class). */
  architecture: string;
  /** num_key_value_heads when the key is absent (null: num_attention_heads). */
  kvHeadsDefault: number | null;
  maxPositionsDefault: number;
  /** head_dim when absent or null (null: hidden_size / num_attention_heads). */
  headDimDefault: number | null;
  /**
   * How a sliding window is switched on: never (Llama has none), whenever sliding_window is not null
   * (Mistral), or by use_sliding_window (Qwen); with the family's sliding_window default.
   */
  sliding: { on: 'never' | 'window' | 'use_sliding_window'; windowDefault: number | null };
  features(flags: { attention_bias: boolean; mlp_bias: boolean }): FamilyFeatures;
}

export const FAMILIES: Readonly<Record<ModelFamily, FamilySpec>> = {
  llama: {
    family: 'llama', architecture: 'LlamaForCausalLM', kvHeadsDefault: null, maxPositionsDefault: 2048, headDimDefault: null,
    sliding: { on: 'never', windowDefault: null },
    features: (f) => ({ qkv_bias: f.attention_bias, o_bias: f.attention_bias, mlp_bias: f.mlp_bias, qk_norm: false }),
  },
  mistral: {
    family: 'mistral', architecture: 'MistralForCausalLM', kvHeadsDefault: 8, maxPositionsDefault: 4096 * 32, headDimDefault: null,
    sliding: { on: 'window', windowDefault: 4096 },
    features: () => ({ qkv_bias: false, o_bias: false, mlp_bias: false, qk_norm: false }),
  },
  qwen2: {
    family: 'qwen2', architecture: 'Qwen2ForCausalLM', kvHeadsDefault: 32, maxPositionsDefault: 32768, headDimDefault: null,
    sliding: { on: 'use_sliding_window', windowDefault: 4096 },
    features: () => ({ qkv_bias: true, o_bias: false, mlp_bias: false, qk_norm: false }),
  },
  qwen3: {
    family: 'qwen3', architecture: 'Qwen3ForCausalLM', kvHeadsDefault: 32, maxPositionsDefault: 32768, headDimDefault: 128,
    sliding: { on: 'use_sliding_window', windowDefault: 4096 },
    features: (f) => ({ qkv_bias: f.attention_bias, o_bias: f.attention_bias, mlp_bias: false, qk_norm: true }),
  },
};

export const SUPPORTED_FAMILIES = Object.keys(FAMILIES) as ModelFamily[];

/** The architectures config.json may name, in FAMILIES order. */
export const SUPPORTED_ARCHITECTURES = SUPPORTED_FAMILIES.map((f) => FAMILIES[f].architecture);

export function familyOfArchitecture(arch: string): ModelFamily | undefined {
  return SUPPORTED_FAMILIES.find((f) => FAMILIES[f].architecture === arch);
}

export function familyOfModelType(modelType: string): ModelFamily | undefined {
  return SUPPORTED_FAMILIES.find((f) => f === modelType);
}

/** The features a decoder config has switched on (absent fields are off). */
export function configFeatures(c: LlamaConfig): FamilyFeatures {
  return { qkv_bias: c.qkv_bias === true, o_bias: c.o_bias === true, mlp_bias: c.mlp_bias === true, qk_norm: c.qk_norm === true };
}

/**
 * The config.json flags that give a config's features under its family, or an error naming what
 * the family cannot express (e.g. a Qwen2 config without q/k/v biases): such a config would not be
 * read back by transformers as the same model.
 */
export function familyFlags(c: LlamaConfig): { attention_bias: boolean; mlp_bias: boolean } {
  const spec = FAMILIES[c.model_type ?? 'llama'];
  const have = configFeatures(c);
  const flags = { attention_bias: have.qkv_bias, mlp_bias: have.mlp_bias };
  const got = spec.features(flags);
  const differ = (Object.keys(have) as Array<keyof FamilyFeatures>).filter((k) => got[k] !== have[k]);
  if (differ.length > 0) {
    throw new Error(`a ${spec.family} config (${spec.architecture}) cannot have ${differ.map((k) => `${k} ${have[k]}`).join(', ')}`);
  }
  return flags;
}

/** One line for people: the architecture and what it adds to plain Llama, e.g. `Qwen3ForCausalLM (q/k norm)`. */
export function describeFamily(c: LlamaConfig): string {
  const f = configFeatures(c);
  const extras: string[] = [];
  if (f.qkv_bias) extras.push(f.o_bias ? 'q/k/v/o biases' : 'q/k/v biases');
  else if (f.o_bias) extras.push('o bias');
  if (f.mlp_bias) extras.push('MLP biases');
  if (f.qk_norm) extras.push('q/k norm');
  const rs = c.rope_scaling;
  if (rs) extras.push(`${rs.rope_type} rope scaling (factor ${rs.factor})`);
  const arch = FAMILIES[c.model_type ?? 'llama'].architecture;
  return extras.length ? `${arch} (${extras.join(', ')})` : arch;
}
