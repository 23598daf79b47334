/**
 * Chat templates: how chat messages become the text a model reads.
 *
 * - A model's own template: the Jinja `chat_template` of its tokenizer_config.json (or of a
 *   chat_template.jinja file beside it, which takes precedence, as in transformers), rendered with
 *   @huggingface/jinja the way transformers' apply_chat_template renders it: trim_blocks and
 *   lstrip_blocks, `messages`, `add_generation_prompt`, `tools` and `documents` (none), and the special
 *   tokens of tokenizer_config.json (bos_token, eos_token, unk_token, pad_token, ... as strings).
 *   One difference, on purpose: `strftime_now` is not defined, so a template that would print today's
 *   date (Llama 3.2's "Today Date:") prints its own fixed fallback instead. A prompt must not depend on
 *   the day it is rendered: runs would not reproduce, and the wall-clock date would tell a backtest's
 *   policy when "now" is.
 * - ChatML, built in, for models without a template (the byte-level tokenizer, tokenizer.json files
 *   without a tokenizer_config.json chat_template): `<|im_start|>{role}\n{content}<|im_end|>\n` per
 *   message, then `<|im_start|>assistant\n`, with SmolLM2's default system message when the first
 *   message is not a system message. It renders exactly what SmolLM2's own template does.
 *
 * renderChatPrompt adds what the prefix cache needs: the number of leading characters that are the
 * rendering of the system message alone, computed from the template (never assumed), or 0 with the
 * reason when the template does not allow such a split.
 *
 * Nothing here knows about trading: messages are roles and texts.
 */
import { Environment, Interpreter, Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: string;
  content: string;
}

/** The system text that SmolLM2-Instruct's chat template inserts when none is given. */
export const SMOLLM_DEFAULT_SYSTEM = 'You are a helpful AI assistant named SmolLM, trained by Hugging Face';

export const IM_START = '<|im_start|>';
export const IM_END = '<|im_end|>';
export const END_OF_TEXT = '<|endoftext|>';

/**
 * Check roles and contents: a role is a word, a content is a string holding none of `specials` (a
 * special token inside a message would end its turn early or forge another one: refused).
 */
export function checkChatMessages(messages: readonly ChatMessage[], specials: readonly string[]): void {
  messages.forEach((m, i) => {
    if (typeof m.role !== 'string' || !/^[A-Za-z_][A-Za-z0-9_-]*$/.test(m.role)) {
      throw new Error(`chat message ${i}: role ${JSON.stringify(m.role)} must be a word such as "system", "user" or "assistant"`);
    }
    if (typeof m.content !== 'string') throw new Error(`chat message ${i} (${m.role}): content must be a string, got ${typeof m.content}`);
    for (const marker of specials) {
      if (marker.length > 0 && m.content.includes(marker)) throw new Error(`chat message ${i} (${m.role}): content contains the special token ${marker}`);
    }
  });
}

/** Render ChatML. Message content must not contain the template's own markers. */
export function renderChatML(messages: ChatMessage[], addGenerationPrompt: boolean, defaultSystem: string): string {
  checkChatMessages(messages, [IM_START, IM_END, END_OF_TEXT]);
  const parts: string[] = [];
  messages.forEach((m, i) => {
    if (i === 0 && m.role !== 'system') parts.push(`${IM_START}system\n${defaultSystem}${IM_END}\n`);
    parts.push(`${IM_START}${m.role}\n${m.content}${IM_END}\n`);
  });
  if (addGenerationPrompt) parts.push(`${IM_START}assistant\n`);
  return parts.join('');
}

/** The special tokens of tokenizer_config.json that templates read, as transformers passes them. */
const SPECIAL_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

/** A special token of tokenizer_config.json: a string, or an AddedToken object with a `content` string. */
export function specialTokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

/**
 * The chat_template of a parsed tokenizer_config.json: a string, or (as transformers also saves them) a
 * list of named templates, of which the one named "default" is used. undefined when there is none (or
 * it is empty). `source` names the file in errors.
 */
export function chatTemplateOfConfig(cfg: Record<string, unknown>, source: string): string | undefined {
  const t = cfg.chat_template;
  if (t === undefined || t === null || t === '') return undefined;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const named = t.filter((x): x is { name: string; template: string } =>
      typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string' && typeof (x as { template?: unknown }).template === 'string');
    const def = named.find((x) => x.name === 'default');
    if (def) return def.template;
    throw new Error(`${source}: chat_template is a list of named templates (${named.map((x) => JSON.stringify(x.name)).join(', ') || 'none valid'}) without one named "default"; the policy renders the default one`);
  }
  throw new Error(`${source}: chat_template must be a string or a list of {name, template}, got ${typeof t}`);
}

/** Python's range(stop) / range(start, stop[, step]), which templates call. */
function pyRange(start: number, stop?: number, step = 1): number[] {
  const [from, to] = stop === undefined ? [0, start] : [start, stop];
  if (step === 0) throw new Error('range() arg 3 must not be zero');
  const out: number[] = [];
  for (let i = from; step > 0 ? i < to : i > to; i += step) out.push(i);
  return out;
}

/** The globals templates may use (those of @huggingface/jinja's Template.render except strftime_now). */
const JINJA_GLOBALS: Record<string, unknown> = {
  true: true, false: false, none: null, True: true, False: false, None: null,
  range: pyRange,
  raise_exception: (message: unknown): never => { throw new Error(String(message)); },
};

/** A model's own Jinja chat template. */
export class JinjaChatTemplate {
  private readonly template: Template;
  private readonly context: Record<string, unknown>;

  /**
   * text: the Jinja source; config: the parsed tokenizer_config.json (its special tokens are passed to
   * the template); specials: the tokenizer's special tokens, refused inside message contents; source:
   * names the model in errors (the tokenizer file's path).
   */
  constructor(text: string, config: Record<string, unknown>, private readonly specials: readonly string[], readonly source: string) {
    try {
      this.template = new Template(text);
    } catch (e) {
      throw new Error(`${source}: the chat_template of tokenizer_config.json cannot be parsed: ${(e as Error).message}`);
    }
    const context: Record<string, unknown> = {};
    for (const key of SPECIAL_TOKEN_KEYS) {
      const v = specialTokenText(config[key]);
      if (v !== undefined) context[key] = v;
    }
    const extra = config.additional_special_tokens;
    if (Array.isArray(extra)) context.additional_special_tokens = extra.map(specialTokenText).filter((s): s is string => s !== undefined);
    // As transformers: no tools, no documents. strftime_now stays undefined (see the file comment).
    this.context = { ...context, tools: null, documents: null };
  }

  render(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    checkChatMessages(messages, this.specials);
    try {
      return this.run(messages, addGenerationPrompt);
    } catch (e) {
      const why = (e as Error).message;
      const system = messages.findIndex((m) => m.role === 'system');
      if (system >= 0 && this.rendersWithoutSystem(messages, addGenerationPrompt)) {
        throw new Error(`${this.source}: the model's chat template refuses a system message (it raised: ${why}). `
          + 'The trading prompt puts its instructions in a system turn, so this model cannot be used with its own template as it is: '
          + 'choose an instruct model whose template accepts a system role, or give the model a tokenizer_config.json whose chat_template does '
          + '(edit it in the model folder, or remove its chat_template to use the built-in ChatML)');
      }
      throw new Error(`${this.source}: the model's chat template cannot render these messages (roles ${messages.map((m) => m.role).join(', ') || 'none'}): ${why}`);
    }
  }

  private run(messages: ChatMessage[], addGenerationPrompt: boolean): string {
    // Template.render would define strftime_now (the wall clock), and a variable cannot be declared
    // twice: the environment is set up here instead, with the library's other globals.
    const env = new Environment();
    const vars: Record<string, unknown> = {
      ...JINJA_GLOBALS,
      ...this.context,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      add_generation_prompt: addGenerationPrompt,
    };
    for (const [key, value] of Object.entries(vars)) if (value !== undefined) env.set(key, value);
    const out = new Interpreter(env).run(this.template.parsed).value;
    if (typeof out !== 'string') throw new Error(`the template produced ${typeof out}, not text`);
    return out;
  }

  /** Whether the same conversation without its system messages renders (then the system role was the problem). */
  private rendersWithoutSystem(messages: ChatMessage[], addGenerationPrompt: boolean): boolean {
    const rest = messages.filter((m) => m.role !== 'system');
    if (rest.length === 0) return false;
    try {
      this.run(rest, addGenerationPrompt);
      return true;
    } catch {
      return false;
    }
  }
}

/** What renderChatPrompt needs of a tokenizer. */
export interface ChatRenderer {
  applyChatTemplate(messages: ChatMessage[], addGenerationPrompt?: boolean): string;
}

export interface ChatPrompt {
  /** The rendered messages (with the generation prompt when asked). */
  text: string;
  /**
   * Characters at the start of `text` that are the template's rendering of the first message alone
   * (a system message): they depend on that message only, so prompts with the same system message
   * share them (the prefix cache's stable part). 0 when there is none.
   */
  prefixEnd: number;
  /** Why prefixEnd is 0 although the first message is a system message; null otherwise. */
  prefixProblem: string | null;
}

const lastHead = new WeakMap<ChatRenderer, { system: string; head: string; error: string | null }>();

/**
 * Render messages and find the stable prefix: the template renders the system message alone (no
 * generation prompt), and that text is used only when the full rendering starts with it. Templates
 * that place the system text differently once other messages follow (or that cannot render it alone)
 * get no shared prefix, with the reason, never a prefix that is not one.
 */
export function renderChatPrompt(tok: ChatRenderer, messages: ChatMessage[], addGenerationPrompt = true): ChatPrompt {
  const text = tok.applyChatTemplate(messages, addGenerationPrompt);
  if (messages[0]?.role !== 'system') return { text, prefixEnd: 0, prefixProblem: null };
  const system = messages[0].content;
  let memo = lastHead.get(tok);
  if (memo?.system !== system) {
    // The system message is the same in every prompt: its rendering alone is memoized (one per renderer).
    try {
      memo = { system, head: tok.applyChatTemplate(messages.slice(0, 1), false), error: null };
    } catch (e) {
      memo = { system, head: '', error: (e as Error).message };
    }
    lastHead.set(tok, memo);
  }
  const { head, error } = memo;
  if (error !== null) {
    return { text, prefixEnd: 0, prefixProblem: `the chat template cannot render the system message alone (${error}), so no prompt prefix is shared or cached` };
  }
  if (head.length === 0) {
    return { text, prefixEnd: 0, prefixProblem: 'the chat template renders nothing for the system message alone, so no prompt prefix is shared or cached' };
  }
  if (!text.startsWith(head)) {
    return { text, prefixEnd: 0, prefixProblem: 'the chat template\'s rendering of the system message alone is not the start of the full prompt (it places the system text differently when other messages follow), so no prompt prefix is shared or cached' };
  }
  return { text, prefixEnd: head.length, prefixProblem: null };
}
