/** The two ways the LLM policy can train, as training-config fields, shared by bench/lora.ts and bench/memory.ts. */
export type Mode = 'topk' | 'lora';

/** Top-K: whole layers train; LoRA: rank-8 adapters on every linear map of the same layers. */
export const MODES: Record<Mode, Record<string, unknown>> = {
  topk: { adapter: 'none' },
  lora: { adapter: 'lora', lora_r: 8, lora_alpha: 16, lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] },
};
