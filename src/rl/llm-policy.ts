/**
 * The FLAG-Trader policy: an LLM whose bottom layers are frozen and whose top K layers, final norm and
 * heads train, adapted to PPO's ActorCritic contract (src/rl/policy.ts).
 *
 *   observation --renderPrompt--> system + user text --the model's chat template (ChatML when it has
 *   none)--> e.g. "<|im_start|>system ... <|im_start|>assistant\n" + the answer prefix `{"action": "`
 *   --tokenizer--> ids [T]
 *   encode:   ids -> frozen layers (prefix-cached: the system turn is identical every day, its end found
 *             by rendering the system message alone: model/chat-template.ts) -> boundary [T, C]
 *   forward:  boundary -> K trainable layers -> final norm -> h [C] at the answer position
 *             -> policy head (log-probs of buy/sell/hold) and value head (V(s))
 *   backward: dLogProbs, dValue -> heads -> trainable layers (gradients accumulate in the model)
 *
 * `encode` depends only on frozen weights, so PPO computes it once per sample and reuses it for the
 * reference log-probs, the rollout forward and every update epoch. The reference policy for the KL
 * penalty is a snapshot of the initial trainable weights and heads (sharing the frozen part).
 *
 * With LoRA (`lora`), every base weight is frozen (the top K layers' too) and the trainable decoder
 * parameters are adapters on the top K layers (src/model/lora.ts); the frozen-prefix cache still covers
 * every layer below them. A finished run exports them in PEFT's layout (exportFiles).
 *
 * Prompt prefixes recur (the system turn in every prompt, a day's market section whenever the day
 * comes back), and the training loop exploits that wherever the weights involved stay fixed
 * (LlmPolicyOptions.caches): the reference runs its top K layers only after its cached prefixes, the rollout
 * after the system turn (weights are fixed between beginRollout and endRollout), and each minibatch
 * runs the system turn through the trainable layers once, forward and backward, for all its samples.
 */
import { createHash } from 'node:crypto';
import type { AccountState, Observation } from '../env/types.js';
import type { Backend } from '../kernels/backend.js';
import { isPrefixOf, LlamaModel, type SharedPrefix, type TrainableActivations } from '../model/llama.js';
import { MARKED_SEGMENTS, modelSegments, promptSegments, segmentEnd, type PromptSegment } from './prompt-segments.js';
import { PrefixCache } from '../model/prefix-cache.js';
import { ValueHead, type PolicyHead, type PolicyOutput } from '../model/heads.js';
import type { LoadedModel } from '../model/load.js';
import type { StoredTensor } from '../model/bf16.js';
import type { ChatMessage, TextTokenizer } from '../model/tokenizer.js';
import { renderChatPrompt } from '../model/chat-template.js';
import { renderPrompt, type PromptOptions, type RenderedPrompt } from '../prompt/render.js';
import { ACTION_ANSWER_PREFIX, toChatMessages } from '../prompt/chat.js';
import type { ActorCritic, Param, PolicyStep, StateTensor } from './policy.js';
import { HeadNorm, type HeadNormScale } from './head-norm.js';
import { ActionPolicyHead, actionTokenIds } from './action-head.js';
import { timed, type Profiler } from '../util/profile.js';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, copyLora, encodeLoraAdapter, initLora, LORA_MODULE_NAMES, type LoadedLoraAdapter, type LoraSpec, type LoraTarget } from '../model/lora.js';
import { Rng } from '../util/rng.js';
import { deriveSeed } from './seeds.js';
import { DEFAULT_ROLLOUT_CACHE_MB, RolloutActivations } from './rollout-activations.js';
import { MIB } from '../model/prefix-cache.js';

/** LoRA settings of an LLM policy (the config's adapter, lora_* fields). */
export interface LlmLoraOptions {
  r: number;
  alpha: number;
  /** The adapted maps. */
  targets: LoraTarget[];
  /** Start from this adapter (its spec must be the one these settings give) instead of a fresh one. */
  from?: LoadedLoraAdapter;
}

/** The folder (inside a run directory) where a finished LoRA run writes its PEFT adapter. */
export const ADAPTER_EXPORT_DIR = 'adapter';

export interface LlmPolicyOptions {
  /** The model (its frozen matrices may be stored in bf16: LoadOptions.frozenDtype; the trainable layers must be float32). */
  model: LoadedModel<StoredTensor>;
  backend: Backend;
  /** K trainable top layers (1..num_hidden_layers); with `lora`, the top K layers that carry adapters. */
  trainableLayers: number;
  /**
   * LoRA adapters on the top K layers instead of training their weights: every base weight is then
   * frozen (the final norm too). A fresh adapter's A is drawn from the stream deriveSeed(seed, 'lora-init').
   */
  lora?: LlmLoraOptions;
  head: 'lm' | 'linear';
  /**
   * Which positions the heads read: `last` = the answer position (the LM's next-token state);
   * `mean` = the mean of the final-normed states of every position after the system turn (the
   * day's market, the account and the answer prefix), so the heads see what the model made of each
   * part of the text directly rather than only through the last position's attention. Required (no
   * default here: the config's head_input holds the one default); zero-shot scoring passes `last`,
   * under which an untrained lm head is the model's own answer.
   */
  headInput: HeadInput;
  /**
   * Normalise what the linear heads read with running statistics of the rollouts, each channel by
   * its own std or all by one scale (src/rl/head-norm.ts); the lm head always reads the model's own
   * final state. Default: none.
   */
  headNorm?: HeadNormScale;
  /**
   * The decoder's trainable tensors learn at this multiple of the optimizer's learning rate (the
   * heads at 1): pretrained layers take smaller steps than freshly initialised heads. Default 1.
   */
  backboneLrScale?: number;
  /** Seed of the linear head's initialisation (ignored by the lm head). */
  seed: number;
  /** Prompt settings (mode wording, budgets). Token budgets are counted with the model's tokenizer. */
  prompt: Omit<PromptOptions, 'countTokens'>;
  /** Byte limit of the frozen-prefix cache (default: LlamaModel's, DEFAULT_PREFIX_CACHE_MB of src/model/prefix-cache.ts). */
  prefixCacheBytes?: number;
  /**
   * Byte limit of the rollout's kept training activations (see caches; src/rl/rollout-activations.ts;
   * default DEFAULT_ROLLOUT_CACHE_MB MiB). 0 keeps none.
   */
  rolloutCacheBytes?: number;
  /**
   * The caches and shortcuts of the training loop (default true); false = the plain computation, for
   * the benchmark's with/without comparison. None changes what is computed beyond the last bits of
   * float32 rounding (cached prefixes are computed in their own segments), and each is deterministic:
   *  - marks: when the tokenizer merges across a prefix mark (BPE joins the "\n\n" after the market
   *    section with what follows), the mark is tried again before the whitespace in front of it, so
   *    that each day's market section is cached with such tokenizers too;
   *  - token memo: the token ids of texts tokenized before (mark prefixes, the budget's counts);
   *  - stable market: with a token budget, the news that fit are chosen next to a WIDE stand-in account
   *    (STAND_IN_ACCOUNT) rather than the actual one, so that a day's market section is the same text
   *    in every episode and its frozen output can be cached (with the actual account, the last news
   *    item's cut moves by a word as the account's numbers change length). The prompt is still checked
   *    against the budget with the actual account, and rendered the exact way when it would not fit.
   *    This changes which words of the last news item are shown, not how anything is computed;
   *  - the reference's top-K keys and values of prompt prefixes (the reference never changes);
   *  - between beginRollout and endRollout, the policy's top-K keys and values of the system turn, and
   *    the rollout's training activations (within rolloutCacheBytes), which the first minibatch of
   *    the update takes instead of running their forward (src/rl/rollout-activations.ts);
   *  - between beginMinibatch and endMinibatch, the trainable layers run over the system turn once,
   *    forward and backward, for all the samples (a shared prefix: LlamaModel.trainForward's `shared`).
   */
  caches?: boolean;
}

export type HeadInput = 'last' | 'mean';

/**
 * The account the budget is planned with under the stable market rule (LlmPolicyOptions.caches): every number as long as a realistic
 * account's (short position, 4-digit values, a two-digit negative return), so the actual account
 * rarely needs more tokens; when it does, the prompt is budgeted exactly instead.
 */
export const STAND_IN_ACCOUNT: AccountState = {
  position: -1, cash: -8888.88, shares: -8888.8888, value: 8888.8888, cumulativeReturn: -0.8888,
};

/** A least-recently-used map of texts to their token ids. */
class TokenMemo {
  private readonly map = new Map<string, number[]>();
  constructor(private readonly capacity: number) {}

  get(text: string, encode: (s: string) => number[]): number[] {
    let ids = this.map.get(text);
    if (ids !== undefined) {
      this.map.delete(text);
    } else {
      ids = encode(text);
      if (this.map.size >= this.capacity) this.map.delete(this.map.keys().next().value as string);
    }
    this.map.set(text, ids);
    return ids;
  }
}

/** What `encode` produces for one observation; kept by PPO for the sample's lifetime. */
export interface LlmInput {
  /** Prompt token ids [T], ending with the answer prefix. */
  ids: Int32Array;
  /**
   * The prompt's named segments (src/rl/prompt-segments.ts): the system turn and the day's market
   * section where their ends were found in the tokens, then the account with the answer prefix, to T.
   */
  segments: readonly PromptSegment[];
  /** Frozen-layer output [T, C]. */
  boundary: Float32Array;
}

/** What backward needs: the activations, the policy head's output and input (hp), the linear heads' input (hn). */
interface Handle { acts: TrainableActivations; out: PolicyOutput; hp: Float32Array; hn: Float32Array; rows: number }

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
  private readonly modelSpec: string;
  /** LlmPolicyOptions.caches. */
  readonly caches: boolean;
  readonly headInput: HeadInput;
  /** Running standardisation of the linear heads' input (headNorm), or undefined. */
  private readonly norm: HeadNorm | undefined;
  private readonly headKind: 'lm' | 'linear';
  private readonly backboneLrScale: number;
  /** Token ids of mark prefixes and of budget counts (tokenMemo). */
  private readonly markMemo = new TokenMemo(1024);
  private readonly countMemo = new TokenMemo(2048); // the budget's candidates of recurring days
  /** The reference's top-K keys/values of prompt prefixes (referenceCache): valid for the whole run. */
  private readonly refCache: PrefixCache | undefined;
  /** The policy's top-K keys/values of prompt prefixes (rolloutCache): valid within one rollout. */
  private readonly rolloutCache: PrefixCache | undefined;
  private inRollout = false;
  /** The rollout's training activations for the first minibatch (rolloutCache, within rolloutCacheBytes). */
  private readonly rolloutActs: RolloutActivations | undefined;
  /** The minibatch's shared prefix (the system turn), created by its first sample; `spare` keeps the memory. */
  private inMinibatch = false;
  private shared: SharedPrefix | undefined;
  private spare: SharedPrefix | undefined;
  /** Tokens of the first cacheable prefix (the system turn) of the last prompt; 0 when none was usable. */
  lastPrefixLen = 0;
  /**
   * Why the last prompt rendered from an observation has no shared prefix (the chat template does not
   * allow the system turn to be split off: see renderChatPrompt), or null. Reported once per policy as
   * a process warning too.
   */
  prefixProblem: string | null = null;
  private prefixWarned = false;
  /**
   * Phase timer (benchmarks). Phases: 'prompt' (rendering, chat template), 'tokenize' (every
   * tokenizer call, budget counting included), 'frozen' (frozen layers), 'rollout_forward'
   * (forward without gradient), 'reference', 'update_forward', 'update_backward'.
   */
  private profiler: Profiler | undefined;

  constructor(o: LlmPolicyOptions) {
    const { config, weights, tokenizer } = o.model;
    if (!Number.isInteger(o.trainableLayers) || o.trainableLayers < 1 || o.trainableLayers > config.num_hidden_layers) {
      throw new Error(`trainable_layers must be an integer in 1..${config.num_hidden_layers} for ${o.model.spec} (it has ${config.num_hidden_layers} layers), got ${o.trainableLayers}`);
    }
    this.tokenizer = tokenizer;
    this.modelSpec = o.model.spec;
    this.C = config.hidden_size;
    let lora;
    if (o.lora) {
      const L = config.num_hidden_layers;
      const spec: LoraSpec = { r: o.lora.r, alpha: o.lora.alpha, targets: o.lora.targets, layers: Array.from({ length: o.trainableLayers }, (_, j) => L - o.trainableLayers + j) };
      if (o.lora.from) checkAdapterMatches(o.lora.from, spec, L);
      lora = o.lora.from ? copyLora(o.lora.from) : initLora(config, spec, new Rng(deriveSeed(o.seed, 'lora-init')));
    }
    this.model = new LlamaModel(config, weights, o.backend, {
      trainableLayers: o.trainableLayers,
      ...(o.prefixCacheBytes !== undefined && { prefixCacheBytes: o.prefixCacheBytes }),
      ...(lora && { lora }),
    });
    // The reference copies the initial trainable weights (before any update) and shares the frozen part.
    this.reference = this.model.snapshot();
    this.caches = o.caches ?? true;
    this.headInput = o.headInput;
    if (this.headInput !== 'last' && this.headInput !== 'mean') throw new Error(`head input must be 'last' or 'mean', got '${String(this.headInput)}'`);
    // The top-K entries of a prefix take K / (L - K) of the frozen entry's bytes: the same share of memory.
    const topBytes = Math.ceil(this.model.prefixCache.limitBytes * o.trainableLayers / Math.max(1, config.num_hidden_layers - o.trainableLayers));
    if (this.caches) {
      this.refCache = new PrefixCache(topBytes);
      this.rolloutCache = new PrefixCache(topBytes);
    }
    const keepBytes = o.rolloutCacheBytes ?? DEFAULT_ROLLOUT_CACHE_MB * MIB;
    if (this.caches && keepBytes > 0) this.rolloutActs = new RolloutActivations(this.model, keepBytes);
    this.actionIds = actionTokenIds(tokenizer);
    const headInit = { kind: o.head, lmHead: this.model.lmHead, C: this.C, actionTokenIds: this.actionIds, seed: o.seed };
    this.policyHead = new ActionPolicyHead(o.backend, headInit);
    this.refHead = new ActionPolicyHead(o.backend, headInit);
    this.valueHead = new ValueHead(o.backend, this.C);
    this.headKind = o.head;
    this.backboneLrScale = o.backboneLrScale ?? 1;
    if (!(this.backboneLrScale >= 0 && Number.isFinite(this.backboneLrScale))) throw new Error(`backbone learning-rate scale must be a finite number >= 0, got ${this.backboneLrScale}`);
    if (o.headNorm) this.norm = new HeadNorm(this.C, o.headNorm);
    const maxTokens = o.prompt.maxTokens;
    const count = (s: string): number => (this.caches ? this.countMemo.get(s, (x) => this.tokenize(x)) : this.tokenize(s)).length;
    this.promptOptions = { ...o.prompt, ...(maxTokens !== undefined && { countTokens: count }) };
    // Fields beyond the original ones only when set, so that earlier runs keep their fingerprints.
    const l = this.model.lora;
    this.fingerprint = createHash('sha256').update(JSON.stringify({
      model: o.model.fingerprint, K: o.trainableLayers, head: o.head, seed: o.head === 'linear' || (l && !o.lora?.from) ? o.seed : null,
      prompt: o.prompt, actionIds: this.actionIds, ...(this.headInput !== 'last' && { headInput: this.headInput }),
      ...(o.headNorm && { headNorm: o.headNorm === 'channel' ? 'running' : o.headNorm }),
      ...(l && { lora: { ...l.spec, from: o.lora?.from?.fingerprint ?? null } }),
      ...(o.model.frozenDtype === 'bfloat16' && { frozenDtype: 'bfloat16' }),
    })).digest('hex').slice(0, 16);
  }

  /**
   * The chat messages, the full prompt text the model reads for an observation, and the character
   * offsets where its two stable parts end: the system turn (the same every day) and the day's market
   * section (the same whenever the same day comes back, in any episode); only the account differs.
   */
  promptText(obs: Observation): { messages: ChatMessage[]; text: string; marks: number[] } {
    return timed(this.profiler, 'prompt', () => this.renderText(obs));
  }

  private renderText(obs: Observation): { messages: ChatMessage[]; text: string; marks: number[] } {
    const rendered = this.caches && this.promptOptions.maxTokens !== undefined ? this.renderStable(obs) : renderPrompt(obs, this.promptOptions);
    const messages = toChatMessages(rendered) as ChatMessage[];
    // The model's chat template; the answer prefix follows its generation prompt. The system turn's end
    // comes from the template itself (its rendering of the system message alone), never assumed.
    const chat = renderChatPrompt(this.tokenizer, messages, true);
    const text = chat.text + ACTION_ANSWER_PREFIX;
    this.notePrefixProblem(chat.prefixProblem);
    // Without a system prefix no mark is used: the later marks are only valid behind it (the system
    // turn is the part every prompt shares).
    if (chat.prefixEnd === 0) return { messages, text, marks: [] };
    const systemEnd = chat.prefixEnd;
    const userAt = text.indexOf(rendered.user, systemEnd);
    const marks = [systemEnd];
    if (userAt >= 0) marks.push(userAt + rendered.sections.market.length + 2); // market + "\n\n"
    return { messages, text, marks };
  }

  private notePrefixProblem(problem: string | null): void {
    this.prefixProblem = problem;
    if (problem !== null && !this.prefixWarned) {
      this.prefixWarned = true;
      process.emitWarning(`${this.modelSpec}: ${problem}; every prompt runs through all layers (slower, same results)`, { code: 'FLAG_TRADER_NO_PROMPT_PREFIX' });
    }
  }

  /** stableMarket: the market section budgeted next to the stand-in account, the actual account after it. */
  private renderStable(obs: Observation): Pick<RenderedPrompt, 'system' | 'user' | 'sections'> {
    const o = this.promptOptions;
    let planned: RenderedPrompt;
    try {
      planned = renderPrompt({ ...obs, account: { ...obs.account, ...STAND_IN_ACCOUNT } }, o);
    } catch {
      // The wide stand-in leaves no room where the actual account may: the exact rule decides (and
      // reports any problem of the observation itself).
      return renderPrompt(obs, o);
    }
    // The actual account's text (the account is never cut, so no budget is needed for it).
    const account = renderPrompt(obs, { ...o, maxTokens: undefined, maxChars: undefined, countTokens: undefined }).sections.account;
    const user = `${planned.sections.market}\n\n${account}`;
    const fits = o.countTokens!(planned.system) + o.countTokens!(user) <= o.maxTokens! &&
      (o.maxChars === undefined || planned.system.length + user.length <= o.maxChars);
    if (!fits) return renderPrompt(obs, o);
    return { system: planned.system, user, sections: { ...planned.sections, account } };
  }

  encode(obs: Observation): LlmInput {
    const { text, marks } = this.promptText(obs);
    return this.encodeText(text, marks);
  }

  /**
   * Tokenize a prompt (ending with the answer prefix), find its segments and run the frozen layers.
   * `marks` are the character offsets where the marked segments end (MARKED_SEGMENTS: the system turn,
   * then the market section; see promptText); the frozen output up to each segment end is cached and
   * reused by later prompts that share it. A mark is used only where the tokens of the text before it
   * are a prefix of the prompt's tokens (BPE could merge across it): checked, not assumed. With
   * trimMarks a mark that fails is tried again before the whitespace in front of it. The system turn is
   * the prefix every prompt shares: when its mark fails, the later marks are not used either.
   */
  encodeText(text: string, marks: number[] = []): LlmInput {
    const ids = Int32Array.from(this.tokenize(text));
    const limit = this.model.config.max_position_embeddings;
    if (ids.length > limit) {
      throw new Error(`the prompt is ${ids.length} tokens but the model takes at most ${limit} (max_position_embeddings): set a prompt budget (prompt_max_tokens / prompt_max_chars) that leaves room for the chat template`);
    }
    if (marks.length > MARKED_SEGMENTS.length) throw new Error(`encodeText: at most ${MARKED_SEGMENTS.length} marks (${MARKED_SEGMENTS.join(', ')}), got ${marks.length}`);
    const tokensBefore = (m: number): number => {
      if (m <= 0 || m >= text.length) return 0;
      const prefix = text.slice(0, m);
      const head = this.caches ? this.markMemo.get(prefix, (x) => this.tokenize(x)) : this.tokenize(prefix);
      return head.length > 0 && head.length < ids.length && head.every((id, i) => id === ids[i]) ? head.length : 0;
    };
    const found: number[] = [];
    for (const m of marks) {
      let n = tokensBefore(m);
      if (n === 0 && this.caches) {
        let t = m;
        while (t > 0 && /\s/.test(text[t - 1]!)) t--;
        if (t < m) n = tokensBefore(t);
      }
      found.push(n);
      if (n === 0 && found.length === 1) break; // no system turn: nothing behind it is a segment
    }
    const segments = promptSegments(ids.length, found);
    this.lastPrefixLen = segmentEnd(segments, 'system') ?? 0;
    this.profiler?.count('prompts', 1);
    this.profiler?.count('prompt_tokens', ids.length);
    const model = this.model;
    const boundary = timed(this.profiler, 'frozen', () => model.forward(modelSegments(ids, segments), { to: model.frozenLayers, cache: model.prefixCache, outRows: 'all' }));
    return { ids, segments, boundary };
  }

  private tokenize(text: string): number[] {
    return timed(this.profiler, 'tokenize', () => this.tokenizer.encode(text));
  }

  forward(input: LlmInput, needsGrad = true): PolicyStep {
    const S = segmentEnd(input.segments, 'system');
    if (!needsGrad && this.inRollout && this.rolloutActs?.wants(input.ids, S)) {
      // A training forward, kept for the first minibatch (which runs with these same weights).
      const keep = this.rolloutActs;
      return timed(this.profiler, 'rollout_forward', () => {
        const rows = this.headRows(input);
        const { acts, tokens } = keep.forward(input, input.ids, S!, input.boundary, rows);
        this.profiler?.count('rollout_tokens', tokens);
        return this.rolloutHeads(this.pool(acts.hidden, rows));
      });
    }
    if (!needsGrad && this.inRollout && this.rolloutCache) {
      // The parameters are fixed for the rollout: the prompt prefixes' keys/values are shared by its steps.
      const cache = this.rolloutCache;
      return timed(this.profiler, 'rollout_forward', () => {
        const model = this.model, before = model.topTokens.computed;
        // Only the system turn recurs within a rollout (a day comes back in a later episode, after the
        // weights have changed): storing the market sections too would copy megabytes for nothing.
        const rows = this.headRows(input);
        const tokens = modelSegments(input.ids, input.segments, 'system');
        const h = this.pool(model.forward(tokens, { from: model.frozenLayers, input: input.boundary, cache, outRows: rows }), rows);
        this.profiler?.count('rollout_tokens', this.model.topTokens.computed - before);
        return this.rolloutHeads(h);
      });
    }
    if (!needsGrad) this.profiler?.count('rollout_tokens', input.ids.length);
    return timed(this.profiler, needsGrad ? 'update_forward' : 'rollout_forward', () => {
      const rows = this.headRows(input);
      // The rollout's forward of this sample, when kept and the weights are still the rollout's.
      let acts = needsGrad && this.inMinibatch ? this.rolloutActs?.take(input, this.shared) : undefined;
      if (!acts) {
        const prefix = needsGrad && this.inMinibatch && this.caches ? this.sharedFor(input) : undefined;
        if (needsGrad) this.profiler?.count('update_tokens', input.ids.length - (prefix?.T ?? 0));
        // One activation set is reused: PPO runs backward right after its forward (policy.ts contract).
        acts = this.acts = this.model.trainForward(input.ids, input.boundary, { outRows: rows, ...(this.acts && { reuse: this.acts }), ...(prefix && { prefix }) });
      }
      const h = this.pool(acts.hidden, rows); // [C] what the heads read (headInput)
      if (!needsGrad && this.inRollout) this.norm?.observe(h);
      const hn = this.normed(h); // [C] what the linear heads read (headNorm)
      const hp = this.headKind === 'linear' ? hn : h;
      const out = this.policyHead.forward(hp);
      const value = this.valueHead.forward(hn);
      const handle: Handle = { acts, out, hp, hn, rows };
      return { logProbs: out.logProbs, value, handle };
    });
  }

  /** The heads on a rollout step's pooled state h [C] (no backward follows); the head norm observes h. */
  private rolloutHeads(h: Float32Array): PolicyStep {
    this.norm?.observe(h);
    const hn = this.normed(h);
    const out = this.policyHead.forward(this.headKind === 'linear' ? hn : h);
    return { logProbs: out.logProbs, value: this.valueHead.forward(hn), handle: null };
  }

  /** The minibatch's shared prefix for this prompt: its system turn (created by the first sample that has it). */
  private sharedFor(input: LlmInput): SharedPrefix | undefined {
    const S = segmentEnd(input.segments, 'system');
    if (S === undefined) return undefined;
    if (this.shared && !isPrefixOf(this.shared, input.ids, S)) this.flushShared(); // another system turn: finish the first
    if (!this.shared) {
      this.shared = this.model.trainForward(input.ids.subarray(0, S), input.boundary.subarray(0, S * this.C), { shared: true, ...(this.spare && { reuse: this.spare }) });
      this.profiler?.count('update_tokens', S);
      this.spare = undefined;
    }
    return this.shared;
  }

  /** The shared prefix's backward (all of its samples' backwards are done: policy.ts contract). */
  private flushShared(): void {
    if (!this.shared) return;
    const shared = this.shared;
    timed(this.profiler, 'update_backward', () => this.model.backward(shared, null));
    // The rollout's shared prefix stays the rollout activations' own; a minibatch's own is recycled.
    if (!this.rolloutActs?.owns(shared)) this.spare = shared;
    this.shared = undefined;
  }

  beginMinibatch(): void {
    this.flushShared();
    this.inMinibatch = true;
    // The first minibatch after a rollout runs after the rollout's system turn (the same weights).
    const rolloutShared = this.rolloutActs?.beginUse();
    if (rolloutShared) this.shared = rolloutShared;
  }

  endMinibatch(): void {
    this.flushShared();
    this.inMinibatch = false;
    this.rolloutActs?.endUse();
  }

  backward(handle: unknown, dLogProbs: Float64Array, dValue: number): void {
    timed(this.profiler, 'update_backward', () => this.backwardImpl(handle, dLogProbs, dValue));
  }

  private backwardImpl(handle: unknown, dLogProbs: Float64Array, dValue: number): void {
    const { acts, out, hp, hn, rows } = handle as Handle;
    // dhn: the gradient at the linear heads' (normalised) input; dh: at the pooled state itself.
    const dh = new Float32Array(this.C);
    const dhn = this.norm ? new Float32Array(this.C) : dh;
    this.policyHead.backward(hp, out, dLogProbs, this.headKind === 'linear' ? dhn : dh);
    this.valueHead.backward(hn, dValue, dhn);
    this.norm?.backward(dhn, dh);
    // The mean's backward: each pooled row gets dh / rows.
    let dHidden = dh;
    if (rows > 1) {
      dHidden = new Float32Array(rows * this.C);
      for (let r = 0; r < rows; r++) for (let c = 0; c < this.C; c++) dHidden[r * this.C + c] = dh[c]! / rows;
    }
    this.model.backward(acts, dHidden);
  }

  params(): Param[] {
    const scale = this.backboneLrScale;
    const backbone = scale === 1 ? this.model.params() : this.model.params().map((p) => ({ ...p, lrScale: scale }));
    return [...backbone, ...this.policyHead.params(), ...this.valueHead.params()];
  }

  /**
   * Files a finished run writes beside its policy file: with LoRA the adapter in PEFT's layout
   * (adapter/adapter_config.json, adapter/adapter_model.safetensors; base_model_name_or_path = the
   * model spec), which `peft` and `--adapter DIR` load. None without LoRA.
   */
  exportFiles(): Array<[string, string | Buffer]> {
    const lora = this.model.lora;
    if (!lora) return [];
    const files = encodeLoraAdapter(this.model.config, lora, this.modelSpec);
    return [[`${ADAPTER_EXPORT_DIR}/${ADAPTER_CONFIG_FILE}`, files.config], [`${ADAPTER_EXPORT_DIR}/${ADAPTER_WEIGHTS_FILE}`, files.weights]];
  }

  /**
   * Replace the adapters' A and B by those of `adapter` (e.g. to evaluate a run with an adapter made
   * elsewhere); its r, alpha, maps and layers must be this policy's.
   */
  loadAdapter(adapter: LoadedLoraAdapter): void {
    const lora = this.model.lora;
    if (!lora) throw new Error(`adapter ${adapter.dir}: this policy was trained without LoRA (adapter none); an adapter applies only to a LoRA policy`);
    checkAdapterMatches(adapter, lora.spec, this.model.L);
    for (const l of lora.spec.layers) {
      for (const t of lora.spec.targets) {
        const dst = lora.layers.get(l)![t]!, src = adapter.layers.get(l)![t]!;
        dst.A.set(src.A);
        dst.B.set(src.B);
      }
    }
  }

  referenceLogProbs(input: LlmInput): Float64Array {
    if (this.refCache) {
      const cache = this.refCache;
      return timed(this.profiler, 'reference', () => {
        const ref = this.reference, before = ref.topTokens.computed;
        const rows = this.headRows(input);
        // Pooling reads the rows after the system turn, so only the system turn's keys/values may come from the cache.
        const tokens = modelSegments(input.ids, input.segments, this.headInput === 'mean' ? 'system' : undefined);
        const h = this.pool(ref.forward(tokens, { from: ref.frozenLayers, input: input.boundary, cache, outRows: rows }), rows);
        this.profiler?.count('reference_tokens', this.reference.topTokens.computed - before);
        return this.refHead.forward(this.headKind === 'linear' ? this.normed(h) : h).logProbs;
      });
    }
    this.profiler?.count('reference_tokens', input.ids.length);
    return timed(this.profiler, 'reference', () => {
      const rows = this.headRows(input);
      this.refActs = this.reference.trainForward(input.ids, input.boundary, { outRows: rows, ...(this.refActs && { reuse: this.refActs }) });
      const h = this.pool(this.refActs.hidden, rows);
      return this.refHead.forward(this.headKind === 'linear' ? this.normed(h) : h).logProbs;
    });
  }

  /** The linear heads' input: h standardised by the running statistics (h itself without headNorm). */
  private normed(h: Float32Array): Float32Array {
    return this.norm ? this.norm.forward(h) : h;
  }

  /** The running statistics of headNorm (saved with the parameters), or none. */
  stateTensors(): StateTensor[] {
    return this.norm ? this.norm.tensors() : [];
  }

  /** How many final positions the heads read: 1 (last), or every position after the system turn (mean). */
  private headRows(input: LlmInput): number {
    if (this.headInput === 'last') return 1;
    return input.ids.length - (segmentEnd(input.segments, 'system') ?? 0);
  }

  /** h[C] = the mean of hidden rows [rows, C] (float64 sums); the row itself when rows = 1. */
  private pool(hidden: Float32Array, rows: number): Float32Array {
    if (rows === 1) return hidden.length === this.C ? hidden : hidden.subarray(0, this.C);
    const C = this.C;
    const h = new Float32Array(C);
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += hidden[r * C + c]!;
      h[c] = sum / rows;
    }
    return h;
  }

  beginRollout(): void {
    // The previous rollout's vectors count from here: it and its update read the same statistics (head-norm.ts).
    this.norm?.fold();
    this.inRollout = true;
    this.rolloutCache?.clear();
    // A minibatch cut short (an error) may still hold the rollout's shared prefix, which open() recycles.
    if (this.shared && this.rolloutActs?.owns(this.shared)) this.shared = undefined;
    this.rolloutActs?.open();
  }

  endRollout(): void {
    this.inRollout = false;
    this.rolloutCache?.clear();
    this.rolloutActs?.close();
  }

  /**
   * Samples whose rollout forward was kept, and taken by a first minibatch, so far; the bytes kept now
   * and at most (diagnostics).
   */
  rolloutActivationCounts(): { kept: number; taken: number; bytes: number; peakBytes: number } {
    return { ...(this.rolloutActs?.counts ?? { kept: 0, taken: 0, peakBytes: 0 }), bytes: this.rolloutActs?.bytes() ?? 0 };
  }

  attachProfiler(profiler: Profiler | undefined): void {
    this.profiler = profiler;
  }

  /** Prefix-cache and frozen-token counters, for diagnostics. */
  cacheStats(): { frozenComputed: number; frozenReused: number; prefixLen: number; prefixProblem: string | null } {
    return { frozenComputed: this.model.frozenTokens.computed, frozenReused: this.model.frozenTokens.reused, prefixLen: this.lastPrefixLen, prefixProblem: this.prefixProblem };
  }
}

/**
 * An adapter read from a folder must be exactly what the policy's settings describe: the error names
 * every difference and the config fields that would match the adapter.
 */
export function checkAdapterMatches(a: LoadedLoraAdapter, spec: LoraSpec, L: number): void {
  const diffs: string[] = [], fix: string[] = [];
  const names = (ts: LoraTarget[]) => ts.map((t) => LORA_MODULE_NAMES[t]).join(',');
  if (a.spec.r !== spec.r) { diffs.push(`r ${a.spec.r} (here ${spec.r})`); fix.push(`lora_r ${a.spec.r}`); }
  if (a.spec.alpha !== spec.alpha) { diffs.push(`lora_alpha ${a.spec.alpha} (here ${spec.alpha})`); fix.push(`lora_alpha ${a.spec.alpha}`); }
  if (names(a.spec.targets) !== names(spec.targets)) { diffs.push(`target_modules ${names(a.spec.targets)} (here ${names(spec.targets)})`); fix.push(`lora_target_modules ${names(a.spec.targets)}`); }
  if (a.spec.layers.join(',') !== spec.layers.join(',')) {
    diffs.push(`layers ${a.spec.layers.join(',')} (here ${spec.layers.join(',')})`);
    const top = a.spec.layers.every((l, i) => l === L - a.spec.layers.length + i);
    fix.push(!top ? `(none: the adapter's layers are not the top layers of the model, which is what training adapts)` : a.spec.layers.length === L ? 'lora_layers all' : `trainable_layers ${a.spec.layers.length}`);
  }
  if (diffs.length) throw new Error(`adapter ${a.dir} does not fit the policy's LoRA settings: it has ${diffs.join(', ')}; to use it set ${fix.join(', ')}`);
}
