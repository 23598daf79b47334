/**
 * The description of one training run of a reproduction or walk-forward grid: a plain JSON-serialisable
 * object (it can travel to another process or onto a job queue) with a stable id, derived only from
 * what the run is: asset, window bounds (walk-forward), policy and seed. The id is also the run's folder
 * under <out>/runs/, so a repeated grid finds its finished runs again:
 *   <ASSET>/<policy>-seed<S>                                reproduce (the protocol's one window)
 *   <ASSET>/wf-<trainStart>_<trainEnd>_<testStart>_<testEnd>/<policy>-seed<S>   reproduce --walk-forward
 */
import { join } from 'node:path';
import type { TrainConfig } from '../rl/config.js';
import type { TrainJob } from './train-pool.js';

export interface RunSpec {
  /** Stable id; also the run's folder relative to <out>/runs (always '/'-separated). */
  id: string;
  asset: string;
  /** `llm`, `mlp`, or the key of an LLM variant (e.g. llm-random). */
  policy: string;
  seed: number;
  /** Walk-forward window bounds; null for the protocol's single window. */
  window: { train: { start: string; end: string }; test: { start: string; end: string } } | null;
  /** The run's whole training config (data, windows, seed and policy set). */
  config: TrainConfig;
}

/** An asset name as a folder name: characters other than letters, digits, '.', '_' and '-' become '_'. */
export function safeName(asset: string): string {
  const s = asset.replace(/[^A-Za-z0-9._-]/g, '_');
  return s === '' || s === '.' || s === '..' ? `_${s}` : s;
}

/** The run id of `policy` / `seed` on `asset`, inside the folder `group` (a walk-forward window key) when given. */
export function runId(asset: string, group: string | undefined, policy: string, seed: number): string {
  return [safeName(asset), ...(group ? [group] : []), `${policy}-seed${seed}`].join('/');
}

/** The folder of a run of the grid written to `out`. */
export function runDir(out: string, id: string): string {
  return join(out, 'runs', ...id.split('/'));
}

/** What the worker pool runs for a spec. */
export function trainJobOf(spec: RunSpec, out: string, config: TrainConfig = spec.config): TrainJob {
  return { dir: runDir(out, spec.id), config, label: spec.id };
}
