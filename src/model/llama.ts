/**
 * The Llama decoder (Hugging Face LlamaForCausalLM semantics, and the Mistral, Qwen2 and Qwen3
 * variants of it that src/model/families.ts lists) for inference and for training its top layers.
 *
 * Layers 0 .. L-K-1 are FROZEN: they keep the pretrained weights, and their output for a prompt
 * prefix can be cached and reused (forward over them with a PrefixCache). Layers L-K .. L-1 and the
 * final norm `model.norm.weight` are TRAINABLE. Three entry points compute:
 *
 *   forward(tokens, { from, to, input, cache, outRows })  inference over layers from..to-1, keeping
 *       nothing: with a KVCache (decoding) or a PrefixCache (prompt segments that recur: TokenSegments)
 *   trainForward(ids, boundary, opts)   the trainable layers from the frozen boundary, keeping their
 *       activations (a prefix that samples share, with `shared`)
 *   backward(acts, dHidden | null, opts)  the backward of any trainForward (a shared prefix's: null)
 *
 * The embedding / LM head is frozen: with tied embeddings it
 * is the input embedding of the frozen layers too, so training it would change what the frozen
 * part (and its cache) computes; untied heads stay frozen as well so that both cases behave alike
 * (the policy/value heads in heads.ts carry the trainable head parameters).
 *
 * With LoRA adapters (options.lora, src/model/lora.ts) on layers among the top K, every base weight is
 * frozen, the final norm too: the trainable parameters are the adapters' A and B, and the top K layers
 * run their forward and backward with the adapters' terms (layer.ts) and without base-weight gradients.
 *
 * Frozen matrices may be stored as bfloat16 bits (src/model/bf16.ts, loadModel's frozenDtype): the
 * embedding / LM head and the linear weights of frozen layers (every layer with LoRA). They are
 * expanded to float32 where used (a layer's matrices just before it runs, embedding rows, LM head rows
 * or blocks), so the arithmetic is float32 throughout.
 *
 * Only what is asked for is computed: the top layer of a pass computes queries, attention output
 * and MLP only for the last `outRows` positions (keys and values still for all), and logits are
 * produced for chosen vocabulary rows (e.g. the three action tokens) unless the full distribution
 * is asked for.
 */
import type { Backend, PackedWeights } from '../kernels/backend.js';
import type { LlamaConfig } from './config.js';
import { LAYER_TENSOR_KIND, LAYER_TENSOR_NAMES, layerKeys, layerShapes, type LayerKey, type LayerWeights, type LlamaWeights } from './weights.js';
import { Bf16Scratch, rowsAsFloat32, storedBytes, type FrozenDtype, type StoredTensor } from './bf16.js';
import { BufferPool } from './buffers.js';
import { KVCache } from './kv-cache.js';
import { RopeTables } from './rope.js';
import { layerActs, layerBackward, layerLentAgain, layerForward, type Dims, type KvGrads, type LayerActs, type PackedLayer } from './layer.js';
import { TokenSegments } from './segments.js';
import { DEFAULT_PREFIX_CACHE_MB, MIB, PrefixCache } from './prefix-cache.js';
import { sampleToken, validateSampling, type SamplingOptions } from './sampling.js';
import type { Param } from './param.js';
import { copyLora, loraDims, loraScale, loraTensorName, validateLoraSpec, zerosLikeLora, type LoraAdapter } from './lora.js';
import type { LayerLora } from './layer.js';

/**
 * Trainable top layers when a model, a model command or a benchmark is given none: the paper's
 * setting (configs/paper-smollm2.yaml trains the top 4 of SmolLM2-135M's 30). Not clamped: a model
 * with fewer layers must be given K. A training run's K is the config's trainable_layers (its own
 * default, src/rl/config.ts, suits the small shipped model).
 */
export const DEFAULT_TRAINABLE_LAYERS = 4;

export interface LlamaModelOptions {
  /** Number K of trainable top layers, 0 < K <= num_hidden_layers. Default DEFAULT_TRAINABLE_LAYERS. */
  trainableLayers?: number;
  /** Byte limit of the frozen-prefix cache. Default DEFAULT_PREFIX_CACHE_MB MiB (src/model/prefix-cache.ts). */
  prefixCacheBytes?: number;
  /** Use this prefix cache (e.g. shared with a model of the same frozen weights). */
  prefixCache?: PrefixCache;
  /**
   * LoRA adapters (src/model/lora.ts) on layers among the top K: every base weight of the model is
   * then frozen, and the trainable parameters (params(), grads) are the adapters' A and B, under
   * PEFT's names. The model works on these arrays (no copy). The frozen-prefix cache covers the
   * layers below the top K, so K = L - (lowest adapted layer) lets it reach furthest.
   */
  lora?: LoraAdapter;
  /**
   * Run the frozen layers' products on their matrices packed once (Backend.gemmPacked; float32
   * layers without adapters), default true: faster at the few new rows of a cached prompt, and each
   * row's result independent of the rows it runs with. The packed copies take the frozen matrices'
   * size again, shared by every model over the same weight arrays. false: sgemm on the matrices as
   * stored (the benchmark's comparison).
   */
  packFrozen?: boolean;
}

/** Packed copies of frozen float32 matrices (LlamaModelOptions.packFrozen), shared by every model over the same arrays. */
const PACKED = new WeakMap<Float32Array, PackedWeights>();

/** Gradients of the trainable parameters, shaped like them. */
export interface TrainableGrads {
  /** The K trainable layers, bottom to top; null with LoRA (the base weights are frozen). */
  layers: LayerWeights[] | null;
  /** [C] model.norm.weight; null with LoRA. */
  norm: Float32Array | null;
  /** With LoRA: the adapters' gradients (same layers and maps); null otherwise. */
  lora: LoraAdapter | null;
}

/**
 * What trainForward saves for backward. The memory is the activations' own (`pools`) until a later
 * forward takes it over (`reuse`): that marks them `released`, and backward refuses released ones.
 */
export interface TrainableActivations {
  /** Token ids [T] of the prompt (not copied; a shared prefix's are its own copy). */
  ids: ArrayLike<number>;
  T: number;
  /** Rows produced at the top: the last n positions. */
  n: number;
  /**
   * [T, C] the input rows of the first trainable layer (the frozen boundary). Not copied (a shared
   * prefix's are its own copy): the caller's rows, which the backward reads, as PPO keeps a sample's
   * boundary for the sample's lifetime.
   */
  boundary: Float32Array;
  layers: LayerActs[];
  /** [n, C] final-normed hidden states of positions T-n .. T-1 (input of the heads). */
  hidden: Float32Array;
  normRstd: Float32Array;  // [n]
  /** Memory owned by these activations; pass them as `reuse` to a later forward to recycle it. */
  pools: BufferPool[];
  /** The shared prefix this pass ran after (rows 0 .. prefix.T-1 computed there), if any. */
  prefix?: SharedPrefix;
  /**
   * The attention probabilities and SwiGLU outputs lie in lent buffers (TrainForwardOptions.lent)
   * that later forwards overwrite: backward computes them again first.
   */
  lent?: boolean;
  /** A later forward took this memory over (TrainForwardOptions.reuse): no backward can run. */
  released?: boolean;
}

/**
 * The trainable layers' forward over a prompt prefix that several training samples share (e.g. the
 * system turn of every prompt of a minibatch), computed once with the current weights
 * (trainForward with `shared`); each sample then runs only its own rows after it (`prefix`), and the
 * gradients its rows send to the prefix's keys and values are summed here, to be taken through the
 * prefix ONCE by its own backward (backward(prefix, null)) after the last of theirs.
 */
export interface SharedPrefix extends TrainableActivations {
  /** Prefix token ids [S] (S = T), the prefix's own copy. */
  ids: Int32Array;
  /** Per trainable layer [S, KVD]: summed gradients w.r.t. the prefix rows' keys / values (after RoPE). */
  dK: Float32Array[];
  dV: Float32Array[];
  /** Its backward has run: no sample may run after it or send it gradient any more. */
  finished?: boolean;
}

export interface TrainForwardOptions {
  /** Rows of the top layer's output (default 1: the answer position). */
  outRows?: number;
  /** Earlier activations whose memory these take over (they become `released`). */
  reuse?: TrainableActivations;
  /** Memory of their own for these activations: K + 1 pools (one per trainable layer, one for the final norm). */
  pools?: BufferPool[];
  /**
   * K pools (one per trainable layer) LENT for the largest activations that are cheap to compute
   * again, the attention probabilities ([H, rows, T] per layer) and the SwiGLU output ([rows, F]):
   * activations kept for a later backward use them in turn, and each backward computes its own again
   * first (LlmPolicy's rollout activations).
   */
  lent?: BufferPool[];
  /** Run after this shared prefix: it must be the first prefix.T ids of the prompt. */
  prefix?: SharedPrefix;
  /** Make these activations a shared prefix (own copies of the ids and rows, zeroed key/value gradient sums). */
  shared?: boolean;
}

export interface BackwardOptions {
  /** Accumulate into these (default: the model's own, grads()). */
  grads?: TrainableGrads;
  /** [T - S, C] receives the gradient w.r.t. the input rows computed in the pass (S: the rows of its shared prefix). */
  dInput?: Float32Array;
}

/**
 * The inference forward's options: which layers, from which rows, with which cache, giving which rows.
 * The final norm is applied when the pass ends at the last layer.
 */
export interface ForwardOptions {
  /** First layer of the pass (default 0). */
  from?: number;
  /** One past its last layer (default L). */
  to?: number;
  /** [T, C] the rows entering layer `from` (default: the ids' embeddings; required when from > 0). Only read. */
  input?: Float32Array;
  /**
   * A KVCache of layers from..to-1: the ids continue after what it holds (positions from
   * cache.length), their keys/values appended (incremental decoding). A PrefixCache: the longest cached
   * prefix of the ids is reused, and an entry is stored at each segment end beyond it (TokenSegments);
   * its entries must come from passes over the same layers with the same weights (the owner clears it
   * when they change). Without a cache the pass starts at position 0 and keeps nothing.
   */
  cache?: KVCache | PrefixCache;
  /**
   * 'all': every row [T, C] (a PrefixCache entry then keeps the rows too, and may cover the whole
   * prompt); a count n (default 1): the last n rows [n, C], computed only in the last segment (so a
   * PrefixCache entry never covers the last token, and its rows are not kept).
   */
  outRows?: number | 'all';
}

/** Whether `prefix` is the first S tokens of `ids` (a prompt that may run after it). */
export function isPrefixOf(prefix: SharedPrefix, ids: ArrayLike<number>, S: number): boolean {
  return prefix.T === S && prefix.ids.every((id, i) => id === ids[i]);
}

function isShared(acts: TrainableActivations): acts is SharedPrefix {
  return (acts as SharedPrefix).dK !== undefined;
}

export interface GenerateOptions extends SamplingOptions {
  /** Default 64. */
  maxNewTokens?: number;
  /** Generation stops after emitting one of these (included in the output). Default: every EOS id of the config (eosIds). */
  stopIds?: number[];
}

export interface GenerateResult {
  tokens: number[];
  finish: 'stop' | 'length';
}

export interface ParameterCounts {
  total: number;
  embedding: number;
  /** LM head parameters beyond the embedding (0 when tied). */
  lmHead: number;
  perLayer: number;
  /** Trainable for the given K: K layers + final norm (heads not included). */
  trainable: number;
  trainableLayers: number;
}

/** The config's end ids: all of a list (eos_token_ids), else eos_token_id, else none. */
export function eosIds(c: LlamaConfig): number[] {
  return c.eos_token_ids ? [...c.eos_token_ids] : c.eos_token_id === undefined ? [] : [c.eos_token_id];
}

export function parameterCounts(c: LlamaConfig, K: number): ParameterCounts {
  const shapes = layerShapes(c);
  let perLayer = 0;
  for (const key of layerKeys(c)) perLayer += shapes[key]!.reduce((a, b) => a * b, 1);
  const embedding = c.vocab_size * c.hidden_size;
  const lmHead = c.tie_word_embeddings ? 0 : embedding;
  const total = embedding + lmHead + c.num_hidden_layers * perLayer + c.hidden_size;
  return { total, embedding, lmHead, perLayer, trainable: K * perLayer + c.hidden_size, trainableLayers: K };
}

/**
 * Bytes of a model's weights as stored: float32 throughout, or with frozenDtype bfloat16 the embedding /
 * LM head and the linear weights of every layer below the top `float32Layers` at 2 bytes (norms and
 * biases stay float32), as loadModel stores them (LoadOptions.frozenDtype).
 */
export function weightStorageBytes(c: LlamaConfig, frozenDtype: FrozenDtype, float32Layers = 0): number {
  const shapes = layerShapes(c);
  let linear = 0, other = 0;
  for (const key of layerKeys(c)) {
    const n = shapes[key]!.reduce((a, b) => a * b, 1);
    if (LAYER_TENSOR_KIND[key] === 'linear') linear += n; else other += n;
  }
  const L = c.num_hidden_layers, top = Math.min(L, Math.max(0, float32Layers));
  const matrices = c.vocab_size * c.hidden_size * (c.tie_word_embeddings ? 1 : 2);
  const half = frozenDtype === 'bfloat16' ? 2 : 4;
  return half * (matrices + (L - top) * linear) + 4 * (top * linear + L * other + c.hidden_size);
}

export class LlamaModel {
  readonly L: number;
  /** Trainable top layers. */
  readonly K: number;
  /** Frozen bottom layers (L - K). */
  readonly frozenLayers: number;
  readonly dims: Dims;
  readonly rope: RopeTables;
  readonly prefixCache: PrefixCache;
  /** The tensors of every layer under this config (the family's biases and q/k norms included). */
  readonly layerKeys: readonly LayerKey[];
  /** Tokens a forward with a PrefixCache over frozen layers only computed vs. took from the cache. */
  readonly frozenTokens = { computed: 0, reused: 0 };
  /** The same for a forward with a PrefixCache that reaches the trainable layers. */
  readonly topTokens = { computed: 0, reused: 0 };
  /** The LoRA adapters the model runs with (their arrays are the trainable parameters), or null. */
  readonly lora: LoraAdapter | null;
  /** Per layer: every tensor is float32 (no expansion needed). */
  private readonly float32Layer: boolean[];
  private readonly packFrozen: boolean;

  private gradsBuf: TrainableGrads | null = null;
  private readonly pool = new BufferPool();      // inference work buffers
  private readonly backPool = new BufferPool();  // backward work buffers
  /** forward's keys/values of a pass without a caller's KV cache, per layer range (created on first use). */
  private readonly work = new Map<string, KVCache>();

  constructor(readonly config: LlamaConfig, readonly weights: LlamaWeights<StoredTensor>, readonly backend: Backend,
    opts: LlamaModelOptions = {}) {
    validateModel(config, weights);
    this.L = config.num_hidden_layers;
    const K = opts.trainableLayers ?? DEFAULT_TRAINABLE_LAYERS;
    if (!Number.isInteger(K) || K <= 0 || K > this.L) {
      throw new Error(`trainableLayers must be an integer in 1..${this.L} (num_hidden_layers), got ${K}`);
    }
    this.K = K;
    this.frozenLayers = this.L - K;
    this.lora = opts.lora ?? null;
    this.packFrozen = opts.packFrozen ?? true;
    this.float32Layer = weights.layers.map((lw) => layerKeys(config).every((key) => lw[key] instanceof Float32Array));
    if (!this.lora) {
      const packed = this.float32Layer.findIndex((f32, l) => l >= this.frozenLayers && !f32);
      if (packed >= 0) throw new Error(`layer ${packed} is trainable (top ${K} layers) but its weights are stored in bfloat16: trainable weights must be float32 (load the model with its top ${K} layers in float32)`);
    }
    if (this.lora) {
      validateLoraSpec(this.lora.spec, config);
      const low = this.lora.spec.layers[0]!;
      if (low < this.frozenLayers) {
        throw new Error(`LoRA adapters on layer ${low} lie below the top ${K} layers (${this.frozenLayers}..${this.L - 1}): the frozen-prefix cache would skip them; give trainableLayers >= ${this.L - low}`);
      }
      for (const l of this.lora.spec.layers) {
        const layer = this.lora.layers.get(l);
        for (const t of this.lora.spec.targets) {
          const p = layer?.[t], { in: I, out: O } = loraDims(config, t), r = this.lora.spec.r;
          if (!p || p.A.length !== r * I || p.B.length !== O * r) throw new Error(`LoRA: layer ${l} ${t} needs A [${r}, ${I}] and B [${O}, ${r}]`);
        }
      }
    }
    this.dims = {
      C: config.hidden_size, F: config.intermediate_size, H: config.num_attention_heads,
      KVH: config.num_key_value_heads, D: config.head_dim, eps: config.rms_norm_eps, qkNorm: config.qk_norm === true,
    };
    this.layerKeys = layerKeys(config);
    this.rope = new RopeTables(config.head_dim, config.rope_theta, config.max_position_embeddings, config.rope_scaling);
    this.prefixCache = opts.prefixCache ?? new PrefixCache(opts.prefixCacheBytes ?? DEFAULT_PREFIX_CACHE_MB * MIB);
  }

  /** The output projection [V, C]: lm_head, or the embedding when tied (bf16 bits when stored so). */
  get lmHead(): StoredTensor {
    return this.weights.lmHead ?? this.weights.embed;
  }

  /** An empty KV cache for all layers (for forward/generate). */
  newCache(): KVCache {
    return new KVCache(this.L, this.dims.KVH * this.dims.D);
  }

  // -------------------------------------------------------------------------------------------
  // Inference.

  /**
   * The inference forward: layers from..to-1 (ForwardOptions) over `tokens`, keeping no activations.
   * Returns a new array: the final-normed hidden states when the pass ends at the last layer, else the
   * layer to-1's output; [outRows, C] of the last positions, or [T, C] with outRows 'all'.
   *
   * With segment ends (TokenSegments) the prompt is computed segment by segment (0 .. first end, ..,
   * last end .. T) whether or not a prefix is cached, so the result does not depend on the cache's
   * state (it may differ from one segment of T rows, or from trainForward, in the last bits). With a
   * PrefixCache the tokens computed vs. taken from it are counted in frozenTokens (a pass through frozen
   * layers only) or topTokens.
   */
  forward(tokens: ArrayLike<number> | TokenSegments, opts: ForwardOptions = {}): Float32Array {
    const { ids, ends } = tokens instanceof TokenSegments ? tokens : TokenSegments.of(tokens);
    const { C, KVH, D, eps } = this.dims;
    const KVD = KVH * D, T = ids.length;
    const from = opts.from ?? 0, to = opts.to ?? this.L;
    if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || from > to || to > this.L) {
      throw new Error(`forward: layers ${from}..${to - 1} are not a range of the model's 0..${this.L - 1}`);
    }
    const kv = opts.cache instanceof KVCache ? opts.cache : undefined;
    const prefixes = opts.cache instanceof PrefixCache ? opts.cache : undefined;
    if (kv && kv.numLayers !== to - from) {
      throw new Error(`KV cache has ${kv.numLayers} layers, the model has ${to - from}${from === 0 && to === this.L ? '' : ` in layers ${from}..${to - 1}`}`);
    }
    this.validateIds(ids, kv?.length ?? 0);
    const input = opts.input;
    if (input && input.length !== T * C) throw new Error(`forward: input has ${input.length} values, expected T*C = ${T}*${C} for ${T} ids`);
    if (!input && from > 0) throw new Error(`forward: a pass from layer ${from} needs the rows entering it (input)`);
    const all = opts.outRows === 'all';
    const n = opts.outRows === 'all' ? T : opts.outRows ?? 1;
    checkOutRows(n, T, '(the number of tokens)');

    // The keys/values of the pass: the caller's KV cache, or the model's work cache of these layers.
    const work = kv ?? this.workCache(from, to);
    if (!kv) work.reset();
    work.ensure(work.length + T);
    const counter = prefixes && (to <= this.frozenLayers ? this.frozenTokens : this.topTokens);
    const out = all ? new Float32Array(T * C) : undefined;
    let P = 0; // ids done (reused or computed)
    if (prefixes) {
      const hit = prefixes.lookup(ids, all ? T : T - 1); // a count of rows: at least the last token is computed
      if (hit) {
        if (hit.k.length !== to - from || (all && hit.hidden.length !== hit.ids.length * C)) {
          throw new Error(`forward: the prefix cache holds an entry of ${hit.k.length} layers${all ? ' without its rows' : ''}, not of layers ${from}..${to - 1}: a cache serves one layer range`);
        }
        P = hit.ids.length;
        for (let l = 0; l < to - from; l++) { work.k[l]!.set(hit.k[l]!); work.v[l]!.set(hit.v[l]!); }
        work.length = P;
        out?.set(hit.hidden);
      }
      counter!.reused += P;
    }
    // Rows P .. end-1 through the layers; the top layer of the pass produces `rows` of them (the last).
    let last: Float32Array | undefined;
    const segment = (end: number, rows: number): void => {
      const x = input ? input.subarray(P * C, end * C) : this.embed(ids, P, end, this.pool.get('emb', (end - P) * C));
      last = this.runLayersOn(from, to, x, work, rows);
      out?.set(last, P * C);
      if (counter) counter.computed += end - P;
      P = end;
    };
    for (const e of ends) {
      if (e <= P || (!all && e === T)) continue;
      segment(e, all ? e - P : 1); // with a count of rows, only the last segment's are returned
      prefixes?.put({
        ids: Int32Array.from(sliceIds(ids, 0, e)),
        k: work.k.map((k) => k.slice(0, e * KVD)),
        v: work.v.map((v) => v.slice(0, e * KVD)),
        hidden: all ? out!.slice(0, e * C) : new Float32Array(0),
      });
    }
    if (!all) checkOutRows(n, T - P, '(the rows after the last cached or marked prefix)');
    if (!all || P < T) segment(T, all ? T - P : n);
    const rows = out ?? last!; // [n, C]
    if (to < this.L) return out ?? last!.slice();
    const hidden = new Float32Array(n * C);
    this.backend.rmsnormForward(hidden, this.pool.get('normRstd', n), rows, this.weights.norm, n, C, eps);
    return hidden;
  }

  /** Logits [V] over the full vocabulary for one hidden row [C]. */
  fullLogits(hiddenRow: Float32Array): Float32Array {
    const { C } = this.dims;
    const V = this.config.vocab_size;
    checkRow(hiddenRow, C);
    const out = new Float32Array(V);
    const W = this.lmHead;
    if (W instanceof Float32Array) {
      this.backend.sgemv(false, V, C, 1, W, C, hiddenRow, 0, out);
      return out;
    }
    // bf16: blocks of rows expanded into scratch, each block's logits one product.
    const rows = Math.max(1, Math.floor(LM_HEAD_BLOCK_VALUES / C));
    const block = this.pool.get('lmHeadBlock', Math.min(rows, V) * C);
    for (let r0 = 0; r0 < V; r0 += rows) {
      const r1 = Math.min(V, r0 + rows);
      this.backend.sgemv(false, r1 - r0, C, 1, rowsAsFloat32(W, C, r0, r1, block), C, hiddenRow, 0, out.subarray(r0, r1));
    }
    return out;
  }

  /** Logits of the chosen vocabulary rows only (e.g. the action tokens) for one hidden row [C]. */
  selectedLogits(hiddenRow: Float32Array, tokenIds: ArrayLike<number>): Float32Array {
    const { C } = this.dims;
    checkRow(hiddenRow, C);
    const out = new Float32Array(tokenIds.length);
    const W = this.lmHead;
    for (let i = 0; i < tokenIds.length; i++) {
      const id = tokenIds[i]!;
      this.checkTokenId(id, `tokenIds[${i}]`);
      this.backend.sgemv(false, 1, C, 1, rowsAsFloat32(W, C, id, id + 1, this.pool.get('lmHeadRow', C)), C, hiddenRow, 0, out.subarray(i, i + 1));
    }
    return out;
  }

  /** Greedy or sampled continuation of `promptIds`, with a KV cache. */
  generate(promptIds: ArrayLike<number>, opts: GenerateOptions = {}): GenerateResult {
    validateSampling(opts);
    const maxNew = opts.maxNewTokens ?? 64;
    if (!Number.isInteger(maxNew) || maxNew < 0) throw new Error(`maxNewTokens must be an integer >= 0, got ${maxNew}`);
    const need = promptIds.length + Math.max(0, maxNew - 1);
    if (need > this.config.max_position_embeddings) {
      throw new Error(`prompt (${promptIds.length} tokens) + ${maxNew} new tokens exceed max_position_embeddings ${this.config.max_position_embeddings}`);
    }
    const stop = new Set(opts.stopIds ?? eosIds(this.config));
    const tokens: number[] = [];
    if (maxNew === 0) return { tokens, finish: 'length' };
    const cache = this.newCache();
    let hidden = this.forward(promptIds, { cache });
    for (;;) {
      const tok = sampleToken(this.fullLogits(hidden), opts);
      tokens.push(tok);
      if (stop.has(tok)) return { tokens, finish: 'stop' };
      if (tokens.length >= maxNew) return { tokens, finish: 'length' };
      hidden = this.forward([tok], { cache });
    }
  }

  /**
   * Layers lo .. hi-1 over the input rows x [T, C] of layer lo (only read), new positions
   * cache.length .., appending their keys and values to `cache` (indexed from layer lo). Every layer
   * produces all rows except the last, which produces the last nLast rows. Returns a work-buffer view
   * [nLast, C] that the next call overwrites (forward copies what it returns).
   */
  private runLayersOn(lo: number, hi: number, x: Float32Array, cache: KVCache, nLast: number): Float32Array {
    const { C } = this.dims;
    const T = x.length / C, past = cache.length;
    cache.ensure(past + T);
    for (let l = lo; l < hi; l++) {
      const n = l === hi - 1 ? nLast : T;
      const y = this.pool.get((l - lo) % 2 === 0 ? 'resA' : 'resB', n * C);
      const lora = this.loraOf(l);
      const a = layerActs(this.pool, this.dims, T, n, past, x, cache.k[l - lo]!, cache.v[l - lo]!, y, lora);
      layerForward(this.backend, this.dims, this.layerWeights(l), a, this.rope, lora, this.packedLayer(l));
      x = y;
    }
    cache.length = past + T;
    return lo === hi ? x.subarray((T - nLast) * C) : x;
  }

  /** out[b - a, C] = the embedding rows of ids[a .. b-1]. */
  private embed(ids: ArrayLike<number>, a: number, b: number, out: Float32Array): Float32Array {
    const { C } = this.dims;
    const E = this.weights.embed;
    for (let t = 0; t < b - a; t++) {
      const id = ids[a + t]!;
      if (E instanceof Float32Array) out.set(E.subarray(id * C, (id + 1) * C), t * C);
      else rowsAsFloat32(E, C, id, id + 1, out.subarray(t * C, (t + 1) * C));
    }
    return out;
  }

  /** The work KV cache of passes over layers from .. to-1. */
  private workCache(from: number, to: number): KVCache {
    const key = `${from}:${to}`;
    let c = this.work.get(key);
    if (!c) this.work.set(key, c = new KVCache(to - from, this.dims.KVH * this.dims.D));
    return c;
  }

  // -------------------------------------------------------------------------------------------
  // Training: the trainable layers' forward that keeps its activations, and the one backward.

  /**
   * The K trainable layers and the final norm over the boundary rows [T, C] of a prompt's `ids`
   * (positions 0 .. T-1), saving activations for the backward. `outRows` (default 1: the answer
   * position) is how many final positions the top layer produces. After a shared prefix (`prefix`)
   * only rows S .. T-1 are computed, after its keys/values; with `shared` the result is a new shared
   * prefix (SharedPrefix) for later samples to run after.
   */
  trainForward(ids: ArrayLike<number>, boundary: Float32Array, opts: TrainForwardOptions & { shared: true }): SharedPrefix;
  trainForward(ids: ArrayLike<number>, boundary: Float32Array, opts?: TrainForwardOptions): TrainableActivations;
  trainForward(ids: ArrayLike<number>, boundary: Float32Array, opts: TrainForwardOptions = {}): TrainableActivations {
    const { C, KVH, D, eps } = this.dims;
    const KVD = KVH * D, T = ids.length;
    if (T < 1) throw new Error('trainForward: token ids are empty: at least one token is needed');
    if (T > this.config.max_position_embeddings) throw new Error(`trainForward: T = ${T} exceeds max_position_embeddings ${this.config.max_position_embeddings}`);
    if (boundary.length !== T * C) throw new Error(`trainForward: boundary has ${boundary.length} values, expected T*C = ${T}*${C} = ${T * C}`);
    const n = opts.outRows ?? 1;
    const prefix = opts.prefix;
    const S = prefix?.T ?? 0;
    if (prefix) {
      if (!(S < T && prefix.layers.length === this.K)) {
        throw new Error(`trainForward: the shared prefix (${S} tokens, ${prefix.layers.length} layers) must be shorter than the prompt (${T} tokens) and from this model (${this.K} trainable layers)`);
      }
      if (prefix.released || prefix.finished) throw new Error(`trainForward: the shared prefix is ${prefix.released ? 'released (its memory was reused)' : 'finished (its backward ran)'}: run after a current one`);
      if (!isPrefixOf(prefix, ids, S)) throw new Error(`trainForward: the shared prefix's ids are not the first ${S} ids of the prompt`);
      if (opts.shared) throw new Error('trainForward: a shared prefix cannot itself run after another');
    }
    checkOutRows(n, T - S, S > 0 ? '(the rows after the shared prefix)' : '(the number of tokens)');
    const pools = opts.pools ?? opts.reuse?.pools ?? Array.from({ length: this.K + 1 }, () => new BufferPool());
    if (pools.length !== this.K + 1 || (opts.lent && opts.lent.length !== this.K)) {
      throw new Error(`trainForward: pools for ${pools.length} and lent pools for ${opts.lent?.length} layers, expected ${this.K + 1} and ${this.K}`);
    }
    if (opts.reuse) opts.reuse.released = true;
    const fp = pools[this.K]!;
    // A shared prefix outlives the sample whose rows made it: it keeps its own copy.
    const input = opts.shared ? fp.get('prefixBoundary', T * C) : boundary;
    if (opts.shared) input.set(boundary);
    const layers: LayerActs[] = [];
    let x = S > 0 ? input.subarray(S * C) : input;
    for (let j = 0; j < this.K; j++) {
      const rows = j === this.K - 1 ? n : T - S;
      const p = pools[j]!;
      const k = p.get('k', T * KVD), v = p.get('v', T * KVD);
      if (prefix) {
        k.set(prefix.layers[j]!.kAll.subarray(0, S * KVD));
        v.set(prefix.layers[j]!.vAll.subarray(0, S * KVD));
      }
      const l = this.frozenLayers + j, lora = this.loraOf(l);
      const a = layerActs(p, this.dims, T - S, rows, S, x, k, v, p.get('y', rows * C), lora, opts.lent?.[j]);
      layerForward(this.backend, this.dims, this.layerWeights(l), a, this.rope, lora);
      layers.push(a);
      x = a.y;
    }
    const hidden = fp.get('hidden', n * C), normRstd = fp.get('rstd', n);
    this.backend.rmsnormForward(hidden, normRstd, x, this.weights.norm, n, C, eps);
    const acts: TrainableActivations = { ids, T, n, boundary: input, layers, hidden, normRstd, pools, ...(prefix && { prefix }), ...(opts.lent && { lent: true }) };
    if (!opts.shared) return acts;
    const sums = (name: string) => Array.from({ length: this.K }, (_, j) => fp.get(`${name}${j}`, T * KVD).fill(0));
    const shared: SharedPrefix = { ...acts, ids: Int32Array.from(ids), dK: sums('dK'), dV: sums('dV') };
    return shared;
  }

  /**
   * Backward of trainForward from dHidden [n, C] (gradient w.r.t. acts.hidden) through the final
   * norm and the K trainable layers, ACCUMULATING into the gradients (default: the model's own, see
   * grads()). dHidden null: no gradient from above, as for a shared prefix, whose top rows nothing
   * reads: its backward takes the key/value gradients its samples summed into it, once, after the
   * last of theirs. After a shared prefix only the rows after it are covered; what they send to its
   * keys/values is summed into it. `dInput` [T - S, C] receives the gradient w.r.t. the input rows.
   */
  backward(acts: TrainableActivations, dHidden: Float32Array | null, opts: BackwardOptions = {}): void {
    const { C } = this.dims;
    const { n } = acts;
    const prefix = acts.prefix, shared = isShared(acts) ? acts : undefined;
    if (acts.released) throw new Error('backward: these activations were released (a later forward reused their memory)');
    if (prefix?.finished) throw new Error('backward: the shared prefix these rows ran after has had its backward: their key/value gradients would be lost');
    if (shared?.finished) throw new Error('backward: a shared prefix takes one backward, after all of its samples\'');
    if (dHidden && dHidden.length !== n * C) throw new Error(`backward: dHidden has ${dHidden.length} values, expected n*C = ${n}*${C}`);
    const rows = acts.layers[0]!.T; // T - S
    if (opts.dInput && opts.dInput.length !== rows * C) throw new Error(`backward: dInput has ${opts.dInput.length} values, expected ${rows}*${C} (the rows computed in the pass)`);
    const grads = opts.grads ?? this.grads();
    const be = this.backend;
    // Lent buffers hold another forward's values by now: compute these activations' own again (the same to the bit).
    if (acts.lent) for (const a of acts.layers) layerLentAgain(be, this.dims, a);
    let dy: Float32Array;
    if (dHidden) {
      dy = this.backPool.get('res0', n * C);
      be.rmsnormBackward(dy, grads.norm ?? this.backPool.get('normSink', C).fill(0), dHidden, acts.layers[this.K - 1]!.y, this.weights.norm, acts.normRstd, n, C);
    } else {
      dy = this.backPool.get('prefixTop', n * C).fill(0);
    }
    for (let j = this.K - 1; j >= 0; j--) {
      const a = acts.layers[j]!;
      const dx = this.backPool.get(j % 2 === (this.K - 1) % 2 ? 'res1' : 'res0', a.T * C);
      const l = this.frozenLayers + j;
      const kv: KvGrads = {
        ...(prefix && { pastDk: prefix.dK[j]!, pastDv: prefix.dV[j]! }),
        ...(shared && { extraDk: shared.dK[j]!, extraDv: shared.dV[j]! }),
      };
      layerBackward(be, this.dims, this.layerWeights(l), grads.layers?.[j] ?? null, a, this.rope, dy, dx, this.backPool, kv, this.loraOf(l, grads));
      dy = dx;
    }
    if (shared) shared.finished = true;
    opts.dInput?.set(dy);
  }

  /** The model's gradient buffers for the trainable parameters (created zeroed on first use). */
  grads(): TrainableGrads {
    if (this.gradsBuf === null) this.gradsBuf = this.createGrads();
    return this.gradsBuf;
  }

  createGrads(): TrainableGrads {
    if (this.lora) return { layers: null, norm: null, lora: zerosLikeLora(this.lora) };
    const layers = this.weights.layers.slice(this.frozenLayers).map((lw) => {
      const g = {} as LayerWeights;
      for (const key of this.layerKeys) g[key] = new Float32Array(lw[key]!.length);
      return g;
    });
    return { layers, norm: new Float32Array(this.dims.C), lora: null };
  }

  zeroGrads(): void {
    for (const p of this.params()) p.grad.fill(0);
  }

  /**
   * The trainable parameters with their data (the live weights) and gradients: the top K layers and
   * the final norm under HF names, or with LoRA the adapters' A and B under PEFT's names
   * (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight), layer by layer, map by map.
   */
  params(): Param[] {
    const g = this.grads();
    const out: Param[] = [];
    if (this.lora) {
      const { spec } = this.lora;
      for (const l of spec.layers) {
        for (const t of spec.targets) {
          const { in: I, out: O } = loraDims(this.config, t);
          const w = this.lora.layers.get(l)![t]!, d = g.lora!.layers.get(l)![t]!;
          out.push({ name: loraTensorName(l, t, 'A'), shape: [spec.r, I], data: w.A, grad: d.A });
          out.push({ name: loraTensorName(l, t, 'B'), shape: [O, spec.r], data: w.B, grad: d.B });
        }
      }
      return out;
    }
    const shapes = layerShapes(this.config);
    for (let j = 0; j < this.K; j++) {
      const l = this.frozenLayers + j;
      for (const key of this.layerKeys) {
        out.push({ name: `model.layers.${l}.${LAYER_TENSOR_NAMES[key]}`, shape: shapes[key]!, data: this.weights.layers[l]![key] as Float32Array, grad: g.layers![j]![key]! });
      }
    }
    out.push({ name: 'model.norm.weight', shape: [this.dims.C], data: this.weights.norm, grad: g.norm! });
    return out;
  }

  /**
   * A model whose trainable weights are a COPY of this one's (e.g. the frozen reference policy for
   * a KL penalty); frozen weights, embedding, backend and prefix cache are shared. With LoRA the
   * adapters are copied and every base weight is shared.
   */
  snapshot(): LlamaModel {
    const opts = { trainableLayers: this.K, prefixCache: this.prefixCache, packFrozen: this.packFrozen };
    if (this.lora) return new LlamaModel(this.config, this.weights, this.backend, { ...opts, lora: copyLora(this.lora) });
    const w = this.weights;
    const layers = w.layers.map((lw, l) => {
      if (l < this.frozenLayers) return lw;
      const c = {} as LayerWeights<StoredTensor>;
      for (const key of this.layerKeys) (c as unknown as Record<LayerKey, StoredTensor>)[key] = lw[key]!.slice();
      return c;
    });
    return new LlamaModel(this.config, { embed: w.embed, layers, norm: w.norm.slice(), lmHead: w.lmHead }, this.backend, opts);
  }

  /**
   * Layer l's weights as the layer functions read them: float32, with bf16-stored matrices expanded
   * into the process's scratch (valid until the next layer's expansion; a layer expanded last is not
   * expanded again).
   */
  private layerWeights(l: number): LayerWeights {
    const lw = this.weights.layers[l]!;
    if (this.float32Layer[l]) return lw as LayerWeights;
    const out = { ...lw } as unknown as LayerWeights;
    for (const key of this.layerKeys) {
      if (LAYER_TENSOR_KIND[key] === 'linear') (out as unknown as Record<LayerKey, Float32Array>)[key] = SCRATCH.get(key, lw[key]!);
    }
    return out;
  }

  /** Layer l's matrices packed for gemmPacked when it is frozen, float32 and without adapters (packFrozen), else undefined. */
  private packedLayer(l: number): PackedLayer | undefined {
    if (!this.packFrozen || l >= this.frozenLayers || !this.float32Layer[l] || this.lora?.layers.has(l)) return undefined;
    const w = this.weights.layers[l] as LayerWeights;
    const { C, F, H, KVH, D } = this.dims;
    const pack = (W: Float32Array, N: number, K: number): PackedWeights => {
      let p = PACKED.get(W);
      if (p === undefined || p.backend !== this.backend.name) PACKED.set(W, p = this.backend.packWeights(W, N, K));
      return p;
    };
    return {
      q: pack(w.q, H * D, C), k: pack(w.k, KVH * D, C), v: pack(w.v, KVH * D, C), o: pack(w.o, C, H * D),
      gate: pack(w.gate, F, C), up: pack(w.up, F, C), down: pack(w.down, C, F),
    };
  }

  /** Bytes the model's weights take as stored (float32, or bf16 where so stored). */
  weightBytes(): number {
    const w = this.weights;
    let n = storedBytes(w.embed) + storedBytes(w.lmHead) + w.norm.byteLength;
    for (const lw of w.layers) for (const key of this.layerKeys) n += storedBytes(lw[key]);
    return n;
  }

  /** Layer l's adapters as the layer functions take them (with their gradients from `grads`), or undefined. */
  private loraOf(l: number, grads?: TrainableGrads): LayerLora | undefined {
    const w = this.lora?.layers.get(l);
    if (!w) return undefined;
    const g = grads?.lora?.layers.get(l);
    return { r: this.lora!.spec.r, scale: loraScale(this.lora!.spec), w, ...(g && { g }) };
  }

  /** Bytes of the model's own work buffers (activations of inference and backward, caches). */
  workBytes(): number {
    let n = this.pool.bytes() + this.backPool.bytes();
    for (const c of this.work.values()) n += c.capacity * c.kvDim * 8 * c.numLayers;
    return n;
  }

  private checkTokenId(id: number, what: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.config.vocab_size) {
      throw new Error(`${what} = ${id} is not a token id (expected an integer in 0..${this.config.vocab_size - 1})`);
    }
  }

  private validateIds(ids: ArrayLike<number>, past: number): void {
    if (ids.length === 0) throw new Error('token ids are empty: at least one token is needed');
    for (let i = 0; i < ids.length; i++) this.checkTokenId(ids[i]!, `ids[${i}]`);
    if (past + ids.length > this.config.max_position_embeddings) {
      throw new Error(`sequence of ${past + ids.length} tokens exceeds max_position_embeddings ${this.config.max_position_embeddings}`);
    }
  }
}

/** Expansion scratch of bf16-stored layer matrices, shared by every model of the process (all work is synchronous). */
const SCRATCH = new Bf16Scratch();

/** Values of the LM head expanded per block when it is stored in bf16 (fullLogits): 4 MiB of float32. */
const LM_HEAD_BLOCK_VALUES = 1 << 20;

/** Values of bf16 layer matrices expanded to float32 so far in this process (benchmarks). */
export function bf16ExpandedValues(): number {
  return SCRATCH.expanded;
}

function sliceIds(ids: ArrayLike<number>, a: number, b: number): number[] {
  const out = new Array<number>(b - a);
  for (let i = a; i < b; i++) out[i - a] = ids[i]!;
  return out;
}

function checkOutRows(n: number, T: number, what: string): void {
  if (!Number.isInteger(n) || n < 1 || n > T) throw new Error(`outRows must be an integer in 1..${T} ${what}, got ${n}`);
}

function checkRow(h: Float32Array, C: number): void {
  if (h.length !== C) throw new Error(`hidden row has ${h.length} values, expected hidden_size ${C}`);
}

/** Every tensor present with the size its HF shape implies; the config self-consistent. */
export function validateModel(c: LlamaConfig, w: LlamaWeights<StoredTensor>): void {
  // Matrices (linear weights, embedding, LM head) may be stored as bf16 bits; norms and biases are float32.
  const need = (name: string, a: StoredTensor | null | undefined, shape: number[], matrix = false): void => {
    const size = shape.reduce((x, y) => x * y, 1);
    if (!(a instanceof Float32Array || (matrix && a instanceof Uint16Array))) {
      throw new Error(`weights: ${name} is missing (expected ${matrix ? 'Float32Array (or Uint16Array of bfloat16 bits)' : 'Float32Array'} of shape [${shape.join(', ')}])`);
    }
    if (a.length !== size) throw new Error(`weights: ${name} has ${a.length} values, expected shape [${shape.join(', ')}] = ${size}`);
  };
  for (const [k, v] of Object.entries({
    hidden_size: c.hidden_size, intermediate_size: c.intermediate_size, num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: c.num_attention_heads, num_key_value_heads: c.num_key_value_heads, vocab_size: c.vocab_size,
    head_dim: c.head_dim, max_position_embeddings: c.max_position_embeddings,
  })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`config: ${k} must be a positive integer, got ${v}`);
  }
  if (c.num_attention_heads % c.num_key_value_heads !== 0) {
    throw new Error(`config: num_attention_heads (${c.num_attention_heads}) must be a multiple of num_key_value_heads (${c.num_key_value_heads})`);
  }
  if (c.head_dim % 2 !== 0) throw new Error(`config: head_dim must be even for RoPE, got ${c.head_dim}`);
  if (!(c.rms_norm_eps > 0)) throw new Error(`config: rms_norm_eps must be > 0, got ${c.rms_norm_eps}`);
  if (!(c.rope_theta > 0)) throw new Error(`config: rope_theta must be > 0, got ${c.rope_theta}`);
  const rs = c.rope_scaling;
  if (rs && (!(rs.factor > 0) || (rs.rope_type === 'llama3' && !(rs.high_freq_factor > rs.low_freq_factor && rs.low_freq_factor > 0 && rs.original_max_position_embeddings > 0)))) {
    throw new Error(`config: rope_scaling ${JSON.stringify(rs)} needs factor > 0 (and for llama3 high_freq_factor > low_freq_factor > 0, original_max_position_embeddings > 0)`);
  }
  need('model.embed_tokens.weight', w.embed, [c.vocab_size, c.hidden_size], true);
  if (w.layers.length !== c.num_hidden_layers) {
    throw new Error(`weights: ${w.layers.length} layers, config num_hidden_layers is ${c.num_hidden_layers}`);
  }
  const shapes = layerShapes(c);
  const keys = layerKeys(c);
  w.layers.forEach((lw, i) => {
    for (const key of keys) need(`model.layers.${i}.${LAYER_TENSOR_NAMES[key]}`, lw[key], shapes[key]!, LAYER_TENSOR_KIND[key] === 'linear');
    // The layer applies whatever tensors it holds: one the config does not have would change the model.
    for (const key of Object.keys(lw) as LayerKey[]) {
      if (lw[key] !== undefined && !keys.includes(key)) throw new Error(`weights: model.layers.${i}.${LAYER_TENSOR_NAMES[key] ?? key} is given but the config does not have it`);
    }
  });
  need('model.norm.weight', w.norm, [c.hidden_size]);
  if (c.tie_word_embeddings) {
    if (w.lmHead !== null) throw new Error('weights: lm_head.weight is given but the config ties word embeddings');
  } else {
    need('lm_head.weight', w.lmHead, [c.vocab_size, c.hidden_size], true);
  }
}
