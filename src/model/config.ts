/**
 * The decoder's config: the fields of a Hugging Face LlamaForCausalLM config.json, plus the few
 * features by which the other supported families (Mistral, Qwen2, Qwen3; src/model/families.ts)
 * differ from it. The feature fields are present only when on, so a plain Llama config has exactly
 * the Llama fields (and keeps the fingerprint it always had: load.ts hashes this object).
 */
export interface LlamaConfig {
  hidden_size: number;
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  num_key_value_heads: number;
  vocab_size: number;
  rms_norm_eps: number;
  rope_theta: number;
  max_position_embeddings: number;
  tie_word_embeddings: boolean;
  /** hidden_size / num_attention_heads unless the config says otherwise. */
  head_dim: number;
  bos_token_id?: number;
  /** The end-of-sequence id (the first of a list). */
  eos_token_id?: number;
  /** Every end id when config.json gives a list of several (Llama 3.x); absent otherwise. All stop generation. */
  eos_token_ids?: number[];
  pad_token_id?: number;
  /** Standard deviation of the normal used for random weights (HF default 0.02). */
  initializer_range?: number;

  /**
   * The Hugging Face family the config.json named; absent means llama. It only decides how the
   * config is written back (architectures, model_type): the computation follows the fields below.
   */
  model_type?: ModelFamily;
  /** Biases on q_proj, k_proj, v_proj (Qwen2 always; Llama and Qwen3 when attention_bias). */
  qkv_bias?: boolean;
  /** Bias on o_proj (Llama and Qwen3 when attention_bias; never Qwen2). */
  o_bias?: boolean;
  /** Biases on gate_proj, up_proj, down_proj (Llama's mlp_bias). */
  mlp_bias?: boolean;
  /** RMSNorm of every query and key head over head_dim, before RoPE (Qwen3: q_norm, k_norm). */
  qk_norm?: boolean;
  /** Rescaled rotary frequencies; absent means plain RoPE. */
  rope_scaling?: RopeScaling;
}

export type ModelFamily = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

/**
 * Rotary frequency rescaling, as transformers' ROPE_INIT_FUNCTIONS define it (src/model/rope.ts):
 * `linear` divides every frequency by factor (positions / factor); `llama3` divides the low
 * frequencies by factor, keeps the high ones, and interpolates smoothly in between.
 */
export type RopeScaling =
  | { rope_type: 'linear'; factor: number }
  | { rope_type: 'llama3'; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number };
