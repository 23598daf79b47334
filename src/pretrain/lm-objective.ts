/**
 * The causal language-model objective over a whole decoder: every layer, the final norm, the
 * embedding and the LM head train (tied or untied). In the llm.c manner, one forward and one
 * backward, shapes in comments.
 *
 * Notation: T tokens of one packed sequence, C hidden size, V vocabulary.
 *
 *   x0     = E[ids]                                   [T, C]  embedding rows
 *   h      = norm(layers(x0))                          [T, C]  (LlamaModel.trainForward with K = L)
 *   logits = h W^T                                     [T, V]  W = lm_head, or E when tied
 *   loss   = mean_t ( logsumexp(logits_t) - logits_t[target_t] )   over the positions with a target
 *
 * Backward:
 *   dlogits_t = (softmax(logits_t) - onehot(target_t)) / N          [T, V]
 *   dh  = dlogits W                                                  [T, C]
 *   dW += dlogits^T h                                                [V, C]
 *   dx0 = layers backward (LlamaModel.backward)                      [T, C]
 *   dE[ids[t]] += dx0[t]           (scatter-add; with tied weights dE and dW are the same buffer)
 *
 * Reusing LlamaModel with all L layers trainable keeps one implementation of the decoder's forward
 * and backward: the one the PPO policy and the finite-difference tests already exercise.
 */
import type { Backend } from '../kernels/backend.js';
import { LlamaModel, type TrainableActivations } from '../model/llama.js';
import type { Param } from '../model/param.js';
import { BufferPool } from '../model/buffers.js';
import type { LlamaConfig } from '../model/config.js';
import type { LlamaWeights } from '../model/weights.js';

/** A target id that takes no part in the loss (e.g. the position after the last token). */
export const IGNORE_TARGET = -1;

export interface LmStep {
  /** Summed cross-entropy (nats) over the positions with a target. */
  lossSum: number;
  /** Positions with a target. */
  count: number;
}

export class LanguageModelTrainer {
  readonly model: LlamaModel;
  readonly C: number;
  readonly V: number;
  /** Gradient of the embedding [V, C] (also of the LM head when tied). */
  readonly embedGrad: Float32Array;
  /** Gradient of an untied LM head [V, C]; null when tied. */
  readonly lmHeadGrad: Float32Array | null;
  private acts: TrainableActivations | undefined;
  private readonly pool = new BufferPool();

  constructor(readonly config: LlamaConfig, readonly weights: LlamaWeights, readonly backend: Backend) {
    // Every layer trains; the prefix cache is never used (size 0).
    this.model = new LlamaModel(config, weights, backend, { trainableLayers: config.num_hidden_layers, prefixCacheBytes: 0 });
    this.C = config.hidden_size;
    this.V = config.vocab_size;
    this.embedGrad = new Float32Array(weights.embed.length);
    this.lmHeadGrad = weights.lmHead ? new Float32Array(weights.lmHead.length) : null;
  }

  /** All parameters with HF names: embedding, every layer, final norm, and lm_head when untied. */
  params(): Param[] {
    const out: Param[] = [
      { name: 'model.embed_tokens.weight', shape: [this.V, this.C], data: this.weights.embed, grad: this.embedGrad },
      ...this.model.params(),
    ];
    if (this.weights.lmHead && this.lmHeadGrad) out.push({ name: 'lm_head.weight', shape: [this.V, this.C], data: this.weights.lmHead, grad: this.lmHeadGrad });
    return out;
  }

  zeroGrads(): void {
    for (const p of this.params()) p.grad.fill(0);
  }

  /**
   * Forward and backward of one sequence. `ids` [T] are the inputs, `targets` [T] the next tokens
   * (IGNORE_TARGET where none). Gradients of the mean loss over `normalizer` positions ACCUMULATE
   * into every param's grad (pass the batch's total target count to get the batch mean).
   */
  step(ids: ArrayLike<number>, targets: ArrayLike<number>, normalizer: number): LmStep {
    return this.run(ids, targets, normalizer, true);
  }

  /** Loss only (held-out evaluation); no gradient. */
  loss(ids: ArrayLike<number>, targets: ArrayLike<number>): LmStep {
    return this.run(ids, targets, 1, false);
  }

  private run(ids: ArrayLike<number>, targets: ArrayLike<number>, normalizer: number, backward: boolean): LmStep {
    const T = ids.length;
    const { C, V } = this;
    if (T < 1 || targets.length !== T) throw new Error(`lm step: ${T} ids and ${targets.length} targets; expected the same positive number`);
    if (!(normalizer > 0)) throw new Error(`lm step: normalizer must be > 0, got ${normalizer}`);
    const be = this.backend;
    const E = this.weights.embed;
    const W = this.weights.lmHead ?? E;

    // x0[T, C] = E[ids]
    const x0 = this.pool.get('x0', T * C);
    for (let t = 0; t < T; t++) {
      const id = ids[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`lm step: ids[${t}] = ${id} is not a token id (0..${V - 1})`);
      x0.set(E.subarray(id * C, (id + 1) * C), t * C);
    }
    // h[T, C]: all layers and the final norm, every position out.
    this.acts = this.model.trainForward(ids, x0, { outRows: T, ...(this.acts && { reuse: this.acts }) });
    const h = this.acts.hidden;
    // logits[T, V] = h W^T
    const logits = this.pool.get('logits', T * V);
    be.sgemm(false, true, T, V, C, 1, h, C, W, C, 0, logits, V);

    // Cross-entropy; logits are overwritten by dlogits when a backward follows.
    let lossSum = 0, count = 0;
    const scale = 1 / normalizer;
    for (let t = 0; t < T; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      const y = targets[t]!;
      if (y === IGNORE_TARGET) { if (backward) row.fill(0); continue; }
      if (!Number.isInteger(y) || y < 0 || y >= V) throw new Error(`lm step: targets[${t}] = ${y} is not a token id (0..${V - 1}) nor IGNORE_TARGET`);
      let max = -Infinity;
      for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
      let sum = 0;
      for (let v = 0; v < V; v++) sum += Math.exp(row[v]! - max);
      const lse = max + Math.log(sum);
      lossSum += lse - row[y]!;
      count++;
      if (backward) {
        for (let v = 0; v < V; v++) row[v] = Math.exp(row[v]! - lse) * scale;
        row[y] = row[y]! - scale;
      }
    }
    if (!Number.isFinite(lossSum)) throw new Error(`lm step: the loss is ${lossSum}; the weights or inputs hold non-finite values`);
    if (!backward) return { lossSum, count };

    const dlogits = logits;
    // dh[T, C] = dlogits[T, V] W[V, C]
    const dh = this.pool.get('dh', T * C);
    be.sgemm(false, false, T, C, V, 1, dlogits, V, W, C, 0, dh, C);
    // dW[V, C] += dlogits^T[V, T] h[T, C]
    be.sgemm(true, false, V, C, T, 1, dlogits, V, h, C, 1, this.lmHeadGrad ?? this.embedGrad, C);
    // dx0[T, C] through the final norm and every layer
    const dx0 = this.pool.get('dx0', T * C);
    this.model.backward(this.acts, dh, { dInput: dx0 });
    // dE[ids[t]] += dx0[t]
    for (let t = 0; t < T; t++) {
      const id = ids[t]!;
      be.axpy(C, 1, dx0.subarray(t * C, (t + 1) * C), this.embedGrad.subarray(id * C, (id + 1) * C));
    }
    return { lossSum, count };
  }
}
