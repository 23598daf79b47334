// Reading training runs in tests: metrics without their timing fields, and tensors as plain arrays.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_FILES } from '../src/rl/run.js';
import { TIMING_FIELDS } from '../src/rl/ppo.js';
import { readSafetensors } from '../src/model/safetensors.js';

/** metrics.jsonl of a run, one object per line, with the (machine-dependent) timing fields removed. */
export function metricsOf(dir: string): Array<Record<string, unknown>> {
  return readFileSync(join(dir, RUN_FILES.metrics), 'utf8').trim().split('\n').map((l) => {
    const o = JSON.parse(l) as Record<string, unknown>;
    for (const f of TIMING_FIELDS) { assert.ok(f in o, `${f} missing`); delete o[f]; }
    return o;
  });
}

/** Every tensor of a safetensors file, by name, as a plain number array (for deepEqual). */
export function tensorsOf(path: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, t] of readSafetensors(path).tensors) out[name] = Array.from(t.data);
  return out;
}
