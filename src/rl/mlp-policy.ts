/**
 * The MLP ablation policy (`--policy mlp`): a small actor-critic over a numeric feature vector,
 * standing in for the LLM to test PPO and to measure what the language model adds.
 *
 *   x [F] -> h_1 = tanh(W_1 x + b_1) [H_1] -> ... -> h_L = tanh(W_L h_{L-1} + b_L) [H_L]
 *   logits = W_p h_L + b_p [3] -> logProbs = log_softmax(logits)
 *   value  = w_v . h_L + b_v
 *
 * The trunk is shared by both heads (as the LLM's trainable top layers are). Initialisation follows
 * CleanRL: orthogonal weights with gain sqrt(2) in the trunk, 0.01 on the policy head (so the initial
 * policy is close to uniform, entropy near ln 3) and 1 on the value head; biases zero. Weights are
 * stored as float32 (Param), all arithmetic is float64.
 *
 * Parameter names: `trunk.{l}.weight` [H_l, H_{l-1}], `trunk.{l}.bias` [H_l], `policy.weight` [3, H_L],
 * `policy.bias` [3], `value.weight` [1, H_L], `value.bias` [1]. Linear weights are [out, in].
 */
import type { Observation } from '../env/types.js';
import type { Rng } from '../util/rng.js';
import { logSoftmax, logSoftmaxBackward } from '../model/heads.js';
import { NUM_ACTIONS, type ActorCritic, type Param, type PolicyStep } from './policy.js';

export interface MlpPolicyOptions {
  /** Length of the feature vector. */
  inputDim: number;
  /** Observation -> features [inputDim]. */
  featurize: (obs: Observation) => Float32Array;
  /** Hidden layer sizes, e.g. [64, 64]. At least one layer. */
  hidden: number[];
  /** Seeded stream for the initial weights. */
  rng: Rng;
  /** Recorded in `fingerprint` (e.g. the feature set's name and version). */
  featureSet?: string;
}

/** The weight arrays one forward pass reads (the live params, or the frozen reference copy). */
interface Weights {
  trunkW: Float32Array[];
  trunkB: Float32Array[];
  policyW: Float32Array;
  policyB: Float32Array;
  valueW: Float32Array;
  valueB: Float32Array;
}

interface MlpHandle {
  /** Activations: acts[0] = x [F], acts[l] = h_l [H_l]. */
  acts: Float64Array[];
  logProbs: Float64Array;
}

export class MlpPolicy implements ActorCritic<Float32Array> {
  readonly kind = 'mlp';
  readonly fingerprint: string;
  readonly sizes: number[];
  private readonly featurize: (obs: Observation) => Float32Array;
  private readonly ps: Param[];
  private readonly live: Weights;
  private readonly reference: Weights;
  /** The head params in order: policy.weight, policy.bias, value.weight, value.bias. */
  private readonly heads: [Param, Param, Param, Param];

  constructor(opts: MlpPolicyOptions) {
    if (!Number.isInteger(opts.inputDim) || opts.inputDim < 1) throw new Error(`MlpPolicy: inputDim must be a positive integer, got ${opts.inputDim}`);
    if (opts.hidden.length < 1) throw new Error('MlpPolicy: hidden must list at least one layer size');
    for (const h of opts.hidden) if (!Number.isInteger(h) || h < 1) throw new Error(`MlpPolicy: hidden sizes must be positive integers, got [${opts.hidden.join(', ')}]`);
    this.featurize = opts.featurize;
    this.sizes = [opts.inputDim, ...opts.hidden];
    this.fingerprint = `mlp:features=${opts.featureSet ?? 'custom'}:F=${opts.inputDim}:hidden=${opts.hidden.join('x')}:tanh`;

    const ps: Param[] = [];
    const add = (name: string, shape: number[]): Param => {
      const n = shape.reduce((a, b) => a * b, 1);
      const p: Param = { name, shape, data: new Float32Array(n), grad: new Float32Array(n) };
      ps.push(p);
      return p;
    };
    const trunkW: Float32Array[] = [], trunkB: Float32Array[] = [];
    for (let l = 1; l < this.sizes.length; l++) {
      const w = add(`trunk.${l - 1}.weight`, [this.sizes[l]!, this.sizes[l - 1]!]);
      orthogonalInit(w.data, this.sizes[l]!, this.sizes[l - 1]!, Math.SQRT2, opts.rng);
      trunkW.push(w.data);
      trunkB.push(add(`trunk.${l - 1}.bias`, [this.sizes[l]!]).data);
    }
    const H = this.sizes[this.sizes.length - 1]!;
    const pw = add('policy.weight', [NUM_ACTIONS, H]);
    orthogonalInit(pw.data, NUM_ACTIONS, H, 0.01, opts.rng);
    const pb = add('policy.bias', [NUM_ACTIONS]);
    const vw = add('value.weight', [1, H]);
    orthogonalInit(vw.data, 1, H, 1, opts.rng);
    const vb = add('value.bias', [1]);
    this.ps = ps;
    this.heads = [pw, pb, vw, vb];
    this.live = { trunkW, trunkB, policyW: pw.data, policyB: pb.data, valueW: vw.data, valueB: vb.data };
    // The reference policy is a frozen copy of the initial weights.
    this.reference = {
      trunkW: trunkW.map((w) => w.slice()), trunkB: trunkB.map((b) => b.slice()),
      policyW: pw.data.slice(), policyB: pb.data.slice(), valueW: vw.data.slice(), valueB: vb.data.slice(),
    };
  }

  encode(obs: Observation): Float32Array {
    const x = this.featurize(obs);
    if (x.length !== this.sizes[0]) throw new Error(`MlpPolicy: the feature vector for ${obs.date} has ${x.length} values; expected ${this.sizes[0]}`);
    for (let i = 0; i < x.length; i++) {
      if (!Number.isFinite(x[i]!)) throw new Error(`MlpPolicy: feature ${i} for ${obs.asset} on ${obs.date} is ${x[i]}; expected a finite number`);
    }
    return x;
  }

  forward(x: Float32Array): PolicyStep {
    const { acts, logProbs, value } = this.run(this.live, x);
    const handle: MlpHandle = { acts, logProbs };
    return { logProbs, value, handle };
  }

  referenceLogProbs(x: Float32Array): Float64Array {
    return this.run(this.reference, x).logProbs;
  }

  params(): Param[] {
    return this.ps;
  }

  /** Forward pass with the given weights; keeps every activation for backward. */
  private run(w: Weights, x: Float32Array): { acts: Float64Array[]; logProbs: Float64Array; value: number } {
    const acts: Float64Array[] = [Float64Array.from(x)];
    for (let l = 1; l < this.sizes.length; l++) {
      // h_l[o] = tanh(sum_i W[o, i] h_{l-1}[i] + b[o]);  W [out, in]
      const nin = this.sizes[l - 1]!, nout = this.sizes[l]!;
      const W = w.trunkW[l - 1]!, b = w.trunkB[l - 1]!, hin = acts[l - 1]!;
      const h = new Float64Array(nout);
      for (let o = 0; o < nout; o++) {
        let s = b[o]!;
        const row = o * nin;
        for (let i = 0; i < nin; i++) s += W[row + i]! * hin[i]!;
        h[o] = Math.tanh(s);
      }
      acts.push(h);
    }
    const hL = acts[acts.length - 1]!, H = hL.length;
    const logits = new Float64Array(NUM_ACTIONS);
    for (let a = 0; a < NUM_ACTIONS; a++) {
      let s = w.policyB[a]!;
      for (let i = 0; i < H; i++) s += w.policyW[a * H + i]! * hL[i]!;
      logits[a] = s;
    }
    let value = w.valueB[0]!;
    for (let i = 0; i < H; i++) value += w.valueW[i]! * hL[i]!;
    return { acts, logProbs: logSoftmax(logits), value };
  }

  backward(handle: unknown, dLogProbs: Float64Array, dValue: number): void {
    const { acts, logProbs } = handle as MlpHandle;
    const [pw, pb, vw, vb] = this.heads;
    const hL = acts[acts.length - 1]!, H = hL.length;
    // Heads: dlogits [3] = log-softmax backward; dW_p += dlogits (x) h_L; dw_v += dValue * h_L.
    const dlogits = logSoftmaxBackward(logProbs, dLogProbs);
    let dh = new Float64Array(H);
    for (let a = 0; a < NUM_ACTIONS; a++) {
      const g = dlogits[a]!;
      pb.grad[a]! += g;
      for (let i = 0; i < H; i++) {
        pw.grad[a * H + i]! += g * hL[i]!;
        dh[i]! += g * this.live.policyW[a * H + i]!;
      }
    }
    vb.grad[0]! += dValue;
    for (let i = 0; i < H; i++) {
      vw.grad[i]! += dValue * hL[i]!;
      dh[i]! += dValue * this.live.valueW[i]!;
    }
    // Trunk, top to bottom: da = dh * (1 - h^2); dW_l += da (x) h_{l-1}; db_l += da; dh_{l-1} = W_l^T da.
    for (let l = this.sizes.length - 1; l >= 1; l--) {
      const nin = this.sizes[l - 1]!, nout = this.sizes[l]!;
      const h = acts[l]!, hin = acts[l - 1]!;
      const W = this.live.trunkW[l - 1]!;
      const Wp = this.ps[2 * (l - 1)]!, bp = this.ps[2 * (l - 1) + 1]!;
      const dhin = l > 1 ? new Float64Array(nin) : null;
      for (let o = 0; o < nout; o++) {
        const da = dh[o]! * (1 - h[o]! * h[o]!);
        if (da === 0) continue;
        bp.grad[o]! += da;
        const row = o * nin;
        for (let i = 0; i < nin; i++) {
          Wp.grad[row + i]! += da * hin[i]!;
          if (dhin) dhin[i]! += da * W[row + i]!;
        }
      }
      if (dhin) dh = dhin;
    }
  }
}

/**
 * Fill `out` ([rows, cols] row-major) with a scaled orthogonal matrix: rows orthonormal when
 * rows <= cols, columns orthonormal otherwise (modified Gram-Schmidt on Gaussian vectors).
 */
export function orthogonalInit(out: Float32Array, rows: number, cols: number, gain: number, rng: Rng): void {
  const transpose = rows > cols;
  const n = transpose ? cols : rows, m = transpose ? rows : cols; // n vectors of length m, n <= m
  const v: Float64Array[] = [];
  for (let k = 0; k < n; k++) {
    const x = new Float64Array(m);
    for (let i = 0; i < m; i++) x[i] = rng.normal();
    for (const u of v) {
      let d = 0;
      for (let i = 0; i < m; i++) d += x[i]! * u[i]!;
      for (let i = 0; i < m; i++) x[i]! -= d * u[i]!;
    }
    let norm = 0;
    for (let i = 0; i < m; i++) norm += x[i]! * x[i]!;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-12)) throw new Error('orthogonalInit: degenerate random vector (retry with another seed)');
    for (let i = 0; i < m; i++) x[i]! /= norm;
    v.push(x);
  }
  for (let k = 0; k < n; k++) {
    for (let i = 0; i < m; i++) {
      const r = transpose ? i : k, c = transpose ? k : i;
      out[r * cols + c] = gain * v[k]![i]!;
    }
  }
}
