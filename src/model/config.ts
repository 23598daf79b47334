/** The subset of a Hugging Face LlamaForCausalLM config.json that the decoder needs. */
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
  eos_token_id?: number;
  pad_token_id?: number;
  /** Standard deviation of the normal used for random weights (HF default 0.02). */
  initializer_range?: number;
}
