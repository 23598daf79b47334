/**
 * The rendered prompt as chat messages: used by API-backed agents and by the model's chat template
 * (src/model/chat-template.ts). System first (the stable instructions, the cacheable prefix), then the
 * user turn.
 */
import type { RenderedPrompt } from './render.js';

export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

/**
 * The text the assistant's answer starts with when a model's next-token logits are read as the
 * policy (src/rl/llm-policy.ts, serve): the action word follows it, as in the JSON answer the
 * instructions ask for. It is appended right after the chat template's generation prompt (whatever
 * that template writes to open the assistant's turn: `<|im_start|>assistant\n` in ChatML,
 * `<|start_header_id|>assistant<|end_header_id|>\n\n` in Llama 3), as the first words of the answer.
 */
export const ACTION_ANSWER_PREFIX = '{"action": "';

export function toChatMessages(rendered: Pick<RenderedPrompt, 'system' | 'user'>): ChatMessage[] {
  return [
    { role: 'system', content: rendered.system },
    { role: 'user', content: rendered.user },
  ];
}
