/**
 * Policy and value heads on the final-normed hidden state h[C] of the answer position (the last
 * prompt token), with their backward passes. The decoder knows no task: the caller names the actions
 * (`actions`, in output order) and gives the token ids that stand for them (firstTokenIds below);
 * src/rl/action-head.ts binds them to the trading actions and the answer prefix.
 *
 * Policy head `lm` (default): the language model's own next-token logits of each action word's
 * FIRST token, log-softmaxed over the legal actions. The prompt must end where the action word
 * begins, e.g. with the assistant's `{"action": "`; the token ids are the first token of each word
 * as it tokenizes after that text (firstTokenIds below finds them and checks they are distinct).
 * Its weights are the LM head's rows for those ids, frozen (shared with the embedding when tied):
 * the policy is trained through the top layers and the final norm.
 * Policy head `linear`: a trainable [A, C] matrix + bias [A]; initialised from those same LM rows
 * (bias 0) so that training starts from the pretrained preference, or from N(0, 0.02^2) with a seed.
 * Value head: v = w . h + b, w[C] and b initialised to 0 (the value starts at 0 and the critic
 * learns its scale from the returns; a zero w also means the value loss does not disturb the
 * shared layers before w has learned anything).
 *
 * Illegal actions get log-probability -Infinity. logSoftmax and its backward are the project's one
 * implementation (the MLP policy of src/rl uses them too).
 */
import type { Backend } from '../kernels/backend.js';
import { Rng } from '../util/rng.js';
import type { Param } from './param.js';
import { rowsAsFloat32, type StoredTensor } from './bf16.js';

export type PolicyHeadKind = 'lm' | 'linear';

export interface PolicyOutput {
  logits: Float64Array;    // [A]
  logProbs: Float64Array;  // [A], -Infinity where illegal
}

/** Log-softmax over the legal entries (all when legal is undefined). */
export function logSoftmax(logits: ArrayLike<number>, legal?: readonly boolean[]): Float64Array {
  const A = logits.length;
  if (legal !== undefined && legal.length !== A) throw new Error(`legal mask has ${legal.length} entries, expected ${A}`);
  let max = -Infinity;
  for (let i = 0; i < A; i++) if ((legal?.[i] ?? true) && logits[i]! > max) max = logits[i]!;
  if (max === -Infinity) throw new Error('no legal action: the legal mask must allow at least one action');
  let sum = 0;
  for (let i = 0; i < A; i++) if (legal?.[i] ?? true) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(A);
  for (let i = 0; i < A; i++) out[i] = (legal?.[i] ?? true) ? logits[i]! - lse : -Infinity;
  return out;
}

/** dlogits_j = dlp_j - p_j * sum_i dlp_i over legal entries (0 for illegal ones). */
export function logSoftmaxBackward(logProbs: Float64Array, dLogProbs: ArrayLike<number>): Float64Array {
  const A = logProbs.length;
  let s = 0;
  for (let i = 0; i < A; i++) if (logProbs[i] !== -Infinity) s += dLogProbs[i]!;
  const d = new Float64Array(A);
  for (let j = 0; j < A; j++) if (logProbs[j] !== -Infinity) d[j] = dLogProbs[j]! - Math.exp(logProbs[j]!) * s;
  return d;
}

/** H = -sum p log p (illegal actions contribute 0). */
export function entropy(logProbs: Float64Array): number {
  let h = 0;
  for (const lp of logProbs) if (lp !== -Infinity) h -= Math.exp(lp) * lp;
  return h;
}

/**
 * Gradient of dEntropy * H w.r.t. the log-probs taken as free variables:
 * dH/dlp_i = -p_i (lp_i + 1). Passed through logSoftmaxBackward this gives the familiar
 * dH/dz_i = -p_i (lp_i + H).
 */
export function entropyBackward(logProbs: Float64Array, dEntropy: number): Float64Array {
  const d = new Float64Array(logProbs.length);
  for (let i = 0; i < logProbs.length; i++) {
    const lp = logProbs[i]!;
    if (lp !== -Infinity) d[i] = -dEntropy * Math.exp(lp) * (lp + 1);
  }
  return d;
}

/** Anything that turns text into token ids (the project's TextTokenizer fits). */
export interface Encoder { encode(text: string): number[] }

/**
 * The first token id of each action word as it tokenizes right after `prefix`
 * (encode(prefix + word) must extend encode(prefix)). Throws when the words' first tokens are not
 * distinct, since the head could then not tell the actions apart.
 */
export function firstTokenIds(tok: Encoder, prefix: string, words: readonly string[]): number[] {
  const base = tok.encode(prefix);
  const ids = words.map((w) => {
    const full = tok.encode(prefix + w);
    for (let i = 0; i < base.length; i++) {
      if (full[i] !== base[i]) {
        throw new Error(`action word '${w}' merges with the answer prefix ${JSON.stringify(prefix)} when tokenized (tokens ${JSON.stringify(full)} do not start with ${JSON.stringify(base)}); choose a prefix that ends at a token boundary`);
      }
    }
    if (full.length <= base.length) throw new Error(`action word '${w}' adds no token after the prefix ${JSON.stringify(prefix)}`);
    return full[base.length]!;
  });
  const seen = new Map<number, string>();
  words.forEach((w, i) => {
    const other = seen.get(ids[i]!);
    if (other !== undefined) throw new Error(`action words '${other}' and '${w}' start with the same token ${ids[i]}: the lm policy head cannot separate them`);
    seen.set(ids[i]!, w);
  });
  return ids;
}

/** Gathers the rows `ids` of a [V, C] matrix into a new [ids.length, C] matrix. */
export function gatherRows(W: StoredTensor, C: number, ids: readonly number[]): Float32Array {
  const V = W.length / C;
  const out = new Float32Array(ids.length * C);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`action token id ${id} is outside the vocabulary 0..${V - 1}`);
    out.set(rowsAsFloat32(W, C, id, id + 1), i * C);
  });
  return out;
}

export interface PolicyHeadInit {
  kind: PolicyHeadKind;
  /** The LM head [V, C] (lm_head, or the embedding when tied; bf16 bits when stored so). */
  lmHead: StoredTensor;
  C: number;
  /** The actions' names, in output order (A = their number; errors name them). */
  actions: readonly string[];
  /** First-token id of each action word, in `actions` order (see firstTokenIds). */
  actionTokenIds: readonly number[];
  /** linear only: initialise N(0, 0.02^2) from this seed instead of copying the LM rows. */
  seed?: number;
}

export class PolicyHead {
  readonly kind: PolicyHeadKind;
  readonly C: number;
  /** Number of actions. */
  readonly A: number;
  readonly weight: Float32Array;      // [A, C]
  readonly bias: Float32Array;        // [A]
  readonly gradWeight: Float32Array;  // [A, C] (linear only; stays 0 for lm)
  readonly gradBias: Float32Array;    // [A]
  private readonly dl32: Float32Array;
  private readonly z32: Float32Array;

  constructor(private readonly be: Backend, init: PolicyHeadInit) {
    if (init.kind !== 'lm' && init.kind !== 'linear') throw new Error(`policy head must be 'lm' or 'linear', got '${String(init.kind)}'`);
    const A = init.actions.length;
    if (init.actionTokenIds.length !== A) {
      throw new Error(`policy head needs ${A} action token ids (${init.actions.join(', ')}), got ${init.actionTokenIds.length}`);
    }
    this.kind = init.kind;
    this.C = init.C;
    this.A = A;
    this.dl32 = new Float32Array(A);
    this.z32 = new Float32Array(A);
    this.weight = gatherRows(init.lmHead, init.C, init.actionTokenIds);
    if (init.kind === 'linear' && init.seed !== undefined) {
      const rng = new Rng(init.seed);
      for (let i = 0; i < this.weight.length; i++) this.weight[i] = 0.02 * rng.normal();
    }
    this.bias = new Float32Array(A);
    this.gradWeight = new Float32Array(A * init.C);
    this.gradBias = new Float32Array(A);
  }

  /** logits[A] = W h + b; log-probs over the legal actions. */
  forward(h: Float32Array, legal?: readonly boolean[]): PolicyOutput {
    if (h.length !== this.C) throw new Error(`policy head input has ${h.length} values, expected ${this.C}`);
    this.z32.set(this.bias);
    this.be.sgemv(false, this.A, this.C, 1, this.weight, this.C, h, 1, this.z32);
    const logits = Float64Array.from(this.z32);
    return { logits, logProbs: logSoftmax(logits, legal) };
  }

  /** From dLogProbs[A]: dh[C] += W^T dlogits; for linear also dW += dlogits h^T, db += dlogits. */
  backward(h: Float32Array, out: PolicyOutput, dLogProbs: ArrayLike<number>, dh: Float32Array): void {
    const dl = logSoftmaxBackward(out.logProbs, dLogProbs);
    this.dl32.set(dl);
    this.be.sgemv(true, this.A, this.C, 1, this.weight, this.C, this.dl32, 1, dh);
    if (this.kind === 'linear') {
      // dW[A, C] += dl[A, 1] h[1, C]
      this.be.sgemm(false, false, this.A, this.C, 1, 1, this.dl32, 1, h, this.C, 1, this.gradWeight, this.C);
      for (let i = 0; i < this.A; i++) this.gradBias[i] += this.dl32[i]!;
    }
  }

  params(): Param[] {
    if (this.kind === 'lm') return [];
    return [
      { name: 'policy_head.weight', shape: [this.A, this.C], data: this.weight, grad: this.gradWeight },
      { name: 'policy_head.bias', shape: [this.A], data: this.bias, grad: this.gradBias },
    ];
  }
}

export class ValueHead {
  readonly weight: Float32Array;      // [C]
  readonly bias = new Float32Array(1);
  readonly gradWeight: Float32Array;  // [C]
  readonly gradBias = new Float32Array(1);
  private readonly v32 = new Float32Array(1);

  constructor(private readonly be: Backend, readonly C: number) {
    this.weight = new Float32Array(C);
    this.gradWeight = new Float32Array(C);
  }

  /** v = w . h + b */
  forward(h: Float32Array): number {
    if (h.length !== this.C) throw new Error(`value head input has ${h.length} values, expected ${this.C}`);
    this.v32[0] = this.bias[0]!;
    this.be.sgemv(false, 1, this.C, 1, this.weight, this.C, h, 1, this.v32);
    return this.v32[0]!;
  }

  /** dh += dValue * w; dw += dValue * h; db += dValue. */
  backward(h: Float32Array, dValue: number, dh: Float32Array): void {
    if (dValue === 0) return;
    this.be.axpy(this.C, dValue, this.weight, dh);
    this.be.axpy(this.C, dValue, h, this.gradWeight);
    this.gradBias[0] += dValue;
  }

  params(): Param[] {
    return [
      { name: 'value_head.weight', shape: [this.C], data: this.weight, grad: this.gradWeight },
      { name: 'value_head.bias', shape: [1], data: this.bias, grad: this.gradBias },
    ];
  }
}
