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
  /** Tokens in the cacheable system turn of the last prompt (0 when its tokens were not a prefix). */
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

  /** The chat messages and the full prompt text the model reads for an observation. */
  promptText(obs: Observation): { messages: ChatMessage[]; text: string } {
    const messages = toChatMessages(renderPrompt(obs, this.promptOptions)) as ChatMessage[];
    return { messages, text: this.tokenizer.applyChatTemplate(messages, true) + ACTION_ANSWER_PREFIX };
  }

  encode(obs: Observation): LlmInput {
    const { messages, text } = this.promptText(obs);
    return this.encodeText(text, messages[0]?.role === 'system' ? [messages[0]] : []);
  }

  /** Tokenize a prompt (ending with the answer prefix) and run the frozen layers, caching the system turn. */
  encodeText(text: string, systemTurn: ChatMessage[] = []): LlmInput {
    const ids = Int32Array.from(this.tokenizer.encode(text));
    // The system turn is the same every day: its frozen output is cached and reused. Its tokens are a
    // prefix of the prompt's only if tokenization does not merge across the turn's end; check, don't assume.
    let prefixLen = 0;
    if (systemTurn.length > 0) {
      const sys = this.tokenizer.encode(this.tokenizer.applyChatTemplate(systemTurn, false));
      if (sys.length < ids.length && sys.every((id, i) => id === ids[i])) prefixLen = sys.length;
    }
    this.lastPrefixLen = prefixLen;
    const boundary = this.model.frozenForward(ids, prefixLen > 0 ? { prefixLen } : {});
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
