// Central finite differences of a float64 loss against an analytic float32 gradient (shared by the
// gradient tests).
import assert from 'node:assert/strict';
import type { Rng } from '../src/util/rng.js';

/**
 * Worst error over sampled entries (the largest, `samples - 1` random ones and `extra`):
 * |a - fd| / (|fd| + 1e-2 * max|a| over the tensor).
 */
export function checkTensor(name: string, grad: Float32Array, target: Float64Array, f: () => number, rng: Rng, samples = 6, extra: number[] = []): number {
  let gmax = 0, arg = 0;
  for (let i = 0; i < grad.length; i++) if (Math.abs(grad[i]!) > gmax) { gmax = Math.abs(grad[i]!); arg = i; }
  assert.ok(gmax > 0, `${name}: gradient is identically zero`);
  const idx = [arg, ...Array.from({ length: samples - 1 }, () => rng.int(grad.length)), ...extra];
  let worst = 0;
  for (const i of idx) {
    const x0 = target[i]!;
    const eps = 1e-5 * Math.max(1, Math.abs(x0));
    target[i] = x0 + eps; const fp = f();
    target[i] = x0 - eps; const fm = f();
    target[i] = x0;
    const fd = (fp - fm) / (2 * eps);
    worst = Math.max(worst, Math.abs(grad[i]! - fd) / (Math.abs(fd) + 1e-2 * gmax));
  }
  return worst;
}

