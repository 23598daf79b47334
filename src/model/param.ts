/**
 * A trainable tensor: the one parameter type of the decoder (HF names), the pretraining objective and
 * PPO's policies (src/rl/policy.ts), which optimizers update and checkpoints save by name.
 */
export interface Param {
  /** Stable name, used as the tensor name in checkpoints (e.g. `trunk.0.weight`, or HF names). */
  name: string;
  shape: number[];
  /** Row-major values. */
  data: Float32Array;
  /** Gradient buffer of the same length. */
  grad: Float32Array;
  /** The optimizer's learning rate for this tensor is lr * lrScale (parameter groups); default 1. */
  lrScale?: number;
}
