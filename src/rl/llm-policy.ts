/**
 * The FLAG-Trader policy: an LLM whose bottom layers are frozen and whose top K layers, final norm and
 * heads train, adapted to PPO's ActorCritic contract (src/rl/policy.ts).
 *
 *   observation --renderPrompt--> system + user text --ChatML--> "<|im_start|>system ... assistant\n"
 *   + the answer prefix `{"action": "` --tokenizer--> ids [T]
 *   encode:   ids -> frozen layers (prefix-cached: the system turn is identical every day) -> boundary [T, C]
 *   forward:  boundary -> K trainable layers -> final norm -> h [C] at the answer position
 *             -> policy head (log-probs of buy/sell/hold) and value head (V(s))
 *   backward: dLogProbs, dValue -> heads -> trainable layers (gradients accumulate in the model)
 *
 * `encode` depends only on frozen weights, so PPO computes it once per sample and reuses it for the
 * reference log-probs, the rollout forward and every update epoch. The reference policy for the KL
 * penalty is a snapshot of the initial trainable weights and heads (sharing the frozen part).
 */
import { createHash } from 'node:crypto';
import type { Observation } from '../env/types.js';
import type { Backend } from '../kernels/backend.js';
import { LlamaModel, type TrainableActivations } from '../model/llama.js';
import { ACTION_ANSWER_PREFIX, PolicyHead, ValueHead, actionTokenIds, type PolicyOutput } from '../model/heads.js';
import type { LoadedModel } from '../model/load.js';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer.js';
import { renderPrompt, type PromptOptions } from '../prompt/render.js';
import { toChatMessages } from '../prompt/chat.js';
import type { ActorCritic, Param, PolicyStep } from './policy.js';

export interface LlmPolicyOptions {
  model: LoadedModel;
  backend: Backend;
  /** K trainable top layers (1..num_hidden_layers). */
  trainableLayers: number;
  head: 'lm' | 'linear';
  /** Seed of the linear head's initialisation (ignored by the lm head). */
  seed: number;
  /** Prompt settings (mode wording, budgets). Token budgets are counted with the model's tokenizer. */
  prompt: Omit<PromptOptions, 'countTokens'>;
  /** Byte limit of the frozen-prefix cache (default 256 MiB). */
  prefixCacheBytes?: number;
}

/** What `encode` produces for one observation; kept by PPO for the sample's lifetime. */
export interface LlmInput {
  /** Prompt token ids [T], ending with the answer prefix. */
  ids: Int32Array;
  /** Frozen-layer output [T, C]. */
  boundary: Float32Array;
}

interface Handle { acts: TrainableActivations; out: PolicyOutput; h: Float32Array }

export class LlmPolicy implements ActorCritic<LlmInput> {
  readonly kind = 'llm';
  readonly fingerprint: string;
  readonly model: LlamaModel;
  readonly tokenizer: TextTokenizer;
  readonly actionIds: number[];
  private readonly reference: LlamaModel;
  private readonly policyHead: PolicyHead;
  private readonly valueHead: ValueHead;
  private readonly refHead: PolicyHead;
  private readonly C: number;
  private acts: TrainableActivations | undefined;
  private refActs: TrainableActivations | undefined;
  private readonly promptOptions: PromptOptions;
  /** Tokens of the first cacheable prefix (the system turn) of the last prompt; 0 when none was usable. */
  lastPrefixLen = 0;

  constructor(o: LlmPolicyOptions) {
    const { config, weights, tokenizer } = o.model;
    if (!Number.isInteger(o.trainableLayers) || o.trainableLayers < 1 || o.trainableLayers > config.num_hidden_layers) {
      throw new Error(`trainable_layers must be an integer in 1..${config.num_hidden_layers} for ${o.model.spec} (it has ${config.num_hidden_layers} layers), got ${o.trainableLayers}`);
    }
    this.tokenizer = tokenizer;
    this.C = config.hidden_size;
    this.model = new LlamaModel(config, weights, o.backend, {
      trainableLayers: o.trainableLayers,
      ...(o.prefixCacheBytes !== undefined && { prefixCacheBytes: o.prefixCacheBytes }),
    });
    // The reference copies the initial trainable weights (before any update) and shares the frozen part.
    this.reference = this.model.snapshot();
    this.actionIds = actionTokenIds(tokenizer);
    const headInit = { kind: o.head, lmHead: this.model.lmHead, C: this.C, actionTokenIds: this.actionIds, seed: o.seed };
    this.policyHead = new PolicyHead(o.backend, headInit);
    this.refHead = new PolicyHead(o.backend, headInit);
    this.valueHead = new ValueHead(o.backend, this.C);
    const maxTokens = o.prompt.maxTokens;
    this.promptOptions = { ...o.prompt, ...(maxTokens !== undefined && { countTokens: (s: string) => tokenizer.encode(s).length }) };
    this.fingerprint = createHash('sha256').update(JSON.stringify({
      model: o.model.fingerprint, K: o.trainableLayers, head: o.head, seed: o.head === 'linear' ? o.seed : null,
      prompt: o.prompt, actionIds: this.actionIds,
    })).digest('hex').slice(0, 16);
  }

  /**
   * The chat messages, the full prompt text the model reads for an observation, and the character
   * offsets where its two stable parts end: the system turn (the same every day) and the day's market
   * section (the same whenever the same day comes back, in any episode); only the account differs.
   */
  promptText(obs: Observation): { messages: ChatMessage[]; text: string; marks: number[] } {
    const rendered = renderPrompt(obs, this.promptOptions);
    const messages = toChatMessages(rendered) as ChatMessage[];
    const text = this.tokenizer.applyChatTemplate(messages, true) + ACTION_ANSWER_PREFIX;
    const systemEnd = this.tokenizer.applyChatTemplate(messages.slice(0, 1), false).length;
    const userAt = text.indexOf(rendered.user, systemEnd);
    const marks = [systemEnd];
    if (userAt >= 0) marks.push(userAt + rendered.sections.market.length + 2); // market + "\n\n"
    return { messages, text, marks };
  }

  encode(obs: Observation): LlmInput {
    const { text, marks } = this.promptText(obs);
    return this.encodeText(text, marks);
  }

  /**
   * Tokenize a prompt (ending with the answer prefix) and run the frozen layers. `marks` are character
   * offsets of stable prefixes (see promptText); the frozen output up to each is cached and reused by
   * later prompts that share it. A mark is used only where the tokens of the text before it are a
   * prefix of the prompt's tokens (BPE could merge across it): checked, not assumed.
   */
  encodeText(text: string, marks: number[] = []): LlmInput {
    const ids = Int32Array.from(this.tokenizer.encode(text));
    const prefixLens: number[] = [];
    for (const m of marks) {
      if (m <= 0 || m >= text.length) continue;
      const head = this.tokenizer.encode(text.slice(0, m));
      if (head.length > 0 && head.length < ids.length && head.every((id, i) => id === ids[i])) prefixLens.push(head.length);
    }
    this.lastPrefixLen = prefixLens[0] ?? 0;
    const boundary = this.model.frozenForward(ids, prefixLens.length > 0 ? { prefixLen: prefixLens } : {});
    return { ids, boundary };
  }

  forward(input: LlmInput): PolicyStep {
    // One activation set is reused: PPO runs backward right after its forward (policy.ts contract).
    this.acts = this.model.trainableForward(input.boundary, input.ids.length, this.acts ? { reuse: this.acts } : {});
    const h = this.acts.hidden; // [C] final-normed hidden state at the answer position
    const out = this.policyHead.forward(h);
    const value = this.valueHead.forward(h);
    const handle: Handle = { acts: this.acts, out, h };
    return { logProbs: out.logProbs, value, handle };
  }

  backward(handle: unknown, dLogProbs: Float64Array, dValue: number): void {
    const { acts, out, h } = handle as Handle;
    const dh = new Float32Array(this.C);
    this.policyHead.backward(h, out, dLogProbs, dh);
    this.valueHead.backward(h, dValue, dh);
    this.model.trainableBackward(acts, dh);
  }

  params(): Param[] {
    return [...this.model.params(), ...this.policyHead.params(), ...this.valueHead.params()];
  }

  referenceLogProbs(input: LlmInput): Float64Array {
    this.refActs = this.reference.trainableForward(input.boundary, input.ids.length, this.refActs ? { reuse: this.refActs } : {});
    return this.refHead.forward(this.refActs.hidden).logProbs;
  }

  /** Prefix-cache and frozen-token counters, for diagnostics. */
  cacheStats(): { frozenComputed: number; frozenReused: number; prefixLen: number } {
    return { frozenComputed: this.model.frozenTokens.computed, frozenReused: this.model.frozenTokens.reused, prefixLen: this.lastPrefixLen };
  }
}
