/**
 * The rollout's training activations, kept for the first minibatch of the update that follows it.
 *
 * PPO changes no parameter between a rollout and the end of the first minibatch after it (the
 * ActorCritic contract, policy.ts), so that minibatch's forward of a sample is the rollout's forward
 * of it. The rollout therefore runs its forwards as training forwards (the same arithmetic, in the
 * same segments: the system turn once, then each sample's rows) and keeps their activations here,
 * within a byte budget; the first minibatch takes a kept sample's activations instead of computing
 * its forward again, and runs after the rollout's system turn. When that minibatch ends, everything
 * here is released.
 *
 * Ownership and lifetimes:
 *  - each kept sample owns K + 1 buffer pools of exact sizes, taken from a free list that keeps the
 *    memory from one rollout to the next (so a run does not allocate it again every update); the
 *    budget counts the pools a rollout keeps, so the memory owned is at most the budget plus one
 *    sample, plus the growth of reused pools to the longest prompt they held;
 *  - the attention probabilities and the SwiGLU outputs, the largest activations ([H, rows, T] and
 *    [rows, F] per layer) and cheap to compute again, are not kept: K pools are LENT to every kept
 *    forward in turn, and the sample's backward (LlamaModel.backward) computes them again
 *    (bit-identical) first, so no caller can forget it. Only kept forwards borrow these pools, and
 *    they all run in the rollout, before any backward;
 *  - the rollout's shared prefix (the system turn through the trainable layers) is owned here; the
 *    first minibatch borrows it as its own shared prefix and takes its backward once.
 *
 *   collecting (beginRollout .. endRollout) -> ready -> in use (first minibatch) -> closed
 */
import { BufferPool } from '../model/buffers.js';
import { isPrefixOf, type LlamaModel, type SharedPrefix, type TrainableActivations } from '../model/llama.js';

/** Memory for the rollout's kept activations when a policy is given none (the config's rollout_cache_mb default). */
export const DEFAULT_ROLLOUT_CACHE_MB = 2048;

/** What a kept sample is known by: PPO hands the same input object to the rollout and the update. */
export type SampleKey = object;

type State = 'closed' | 'collecting' | 'ready' | 'in-use';

export class RolloutActivations {
  private readonly kept = new Map<SampleKey, TrainableActivations>();
  /** Samples taken by the minibatch: their pools are theirs until it ends (their backwards read them). */
  private readonly taken: TrainableActivations[] = [];
  private readonly free: BufferPool[][] = [];
  /** Lent to every kept forward for its attention probabilities and SwiGLU outputs (one pool per trainable layer). */
  private readonly lent: BufferPool[];
  private bytesHeld = 0;
  private state: State = 'closed';
  private sharedPrefix: SharedPrefix | undefined;
  private spare: SharedPrefix | undefined;
  /** Samples kept and taken since creation, and the most bytes held at once (diagnostics and tests). */
  readonly counts = { kept: 0, taken: 0, peakBytes: 0 };

  constructor(private readonly model: LlamaModel, readonly limitBytes: number) {
    if (!Number.isFinite(limitBytes) || limitBytes < 0) throw new Error(`rollout cache limit must be a non-negative number of bytes, got ${limitBytes}`);
    this.lent = Array.from({ length: model.K }, () => new BufferPool());
  }

  /** A rollout starts: what an earlier one kept is released. */
  open(): void {
    this.release();
    this.state = 'collecting';
  }

  /** The rollout ended: its activations wait for the first minibatch. */
  close(): void {
    if (this.state === 'collecting') this.state = 'ready';
  }

  /**
   * Whether a forward of this prompt in the rollout should be kept: while collecting, within the
   * budget (the last one kept may pass it by one sample's activations), and for a prompt that starts
   * with the rollout's system turn (`S` tokens of `ids`).
   */
  wants(ids: Int32Array, S: number | undefined): boolean {
    if (this.state !== 'collecting' || S === undefined || this.bytesHeld >= this.limitBytes) return false;
    return this.sharedPrefix === undefined || isPrefixOf(this.sharedPrefix, ids, S);
  }

  /**
   * The training forward of a rollout sample after the rollout's system turn (computed by the first
   * sample), kept under `key`. `boundary` is the sample's frozen output [T, C], kept unchanged by PPO.
   * `tokens`: how many rows went through the trainable layers (the system turn's too, the first time).
   */
  forward(key: SampleKey, ids: Int32Array, S: number, boundary: Float32Array, outRows: number): { acts: TrainableActivations; tokens: number } {
    if (this.state !== 'collecting') throw new Error(`rollout activations: a forward to keep outside a rollout (state ${this.state})`);
    const C = this.model.dims.C;
    let tokens = ids.length - S;
    if (!this.sharedPrefix) {
      this.sharedPrefix = this.model.trainForward(ids.subarray(0, S), boundary.subarray(0, S * C), { shared: true, ...(this.spare && { reuse: this.spare }) });
      this.spare = undefined;
      tokens += S;
    }
    // Exact sizes: the budget counts what the pools hold, and a reused pool grows only to the sample it holds.
    const pools = this.free.pop() ?? Array.from({ length: this.model.K + 1 }, () => new BufferPool(1));
    const acts = this.model.trainForward(ids, boundary, { outRows, pools, lent: this.lent, prefix: this.sharedPrefix });
    this.kept.set(key, acts);
    this.bytesHeld += pools.reduce((n, p) => n + p.bytes(), 0);
    this.counts.kept++;
    this.counts.peakBytes = Math.max(this.counts.peakBytes, this.bytesHeld);
    return { acts, tokens };
  }

  /** The first minibatch starts: the rollout's shared prefix, which it borrows (undefined when nothing was kept). */
  beginUse(): SharedPrefix | undefined {
    if (this.state !== 'ready') return undefined;
    if (this.kept.size === 0) { this.release(); return undefined; }
    this.state = 'in-use';
    return this.sharedPrefix;
  }

  /** Whether `prefix` is the rollout's shared prefix (owned here, not by the borrower). */
  owns(prefix: SharedPrefix): boolean {
    return prefix === this.sharedPrefix;
  }

  /**
   * The kept activations of `key` (their backward computes the lent buffers again), or undefined.
   * `current` is the borrower's shared prefix now: kept activations run after the rollout's, so they
   * are handed out only while it is the one whose backward is pending (otherwise their key/value
   * gradients would go to a prefix already taken back). Each is taken once; its memory stays its own
   * until the minibatch ends.
   */
  take(key: SampleKey, current: SharedPrefix | undefined): TrainableActivations | undefined {
    if (this.state !== 'in-use' || current === undefined || current !== this.sharedPrefix) return undefined;
    const acts = this.kept.get(key);
    if (!acts) return undefined;
    this.kept.delete(key);
    this.taken.push(acts);
    this.counts.taken++;
    return acts;
  }

  /** The first minibatch ended (its optimizer step follows): everything is released. */
  endUse(): void {
    if (this.state === 'in-use') this.release();
  }

  /** Bytes the kept activations hold. */
  bytes(): number {
    return this.bytesHeld;
  }

  private release(): void {
    // Their memory goes back to the free list: marked released, they can no longer run a backward.
    for (const acts of [...this.kept.values(), ...this.taken.splice(0)]) {
      acts.released = true;
      this.free.push(acts.pools);
    }
    this.kept.clear();
    this.bytesHeld = 0;
    if (this.sharedPrefix) this.spare = this.sharedPrefix;
    this.sharedPrefix = undefined;
    this.state = 'closed';
  }
}
