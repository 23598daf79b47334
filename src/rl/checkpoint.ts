/**
 * Training checkpoints: ONE safetensors file per checkpoint, written atomically, so a kill at any
 * moment leaves either the previous checkpoint or the new one, never a mix.
 *
 * Tensors (F32): every trainable parameter under its own name (`Param.name`), the AdamW moments
 * as `optimizer.m.<name>` and `optimizer.v.<name>`, and the policy's state tensors (running
 * statistics; `ActorCritic.stateTensors`) under their names. `__metadata__` holds:
 *   format  "flag-trader/ppo-checkpoint"
 *   version "1"
 *   state   JSON: { trainer: PpoTrainerState (update, global step, RNG states, environment states,
 *           running episode stats, optimizer step), metrics: [the metrics.jsonl lines so far] }
 * A policy file (`policy.safetensors`, the final weights for evaluation and sharing) holds only the
 * parameter and state tensors, with format "flag-trader/policy" and the policy's kind and fingerprint.
 *
 * Reading either refuses a tensor holding NaN or +-Inf (the error names the file and the tensor).
 * `encodeCheckpoint` / `encodePolicy` give the bytes without writing them, for a run that records
 * their sha256 in its manifest before writing (src/rl/manifest.ts).
 */
import { writeFileAtomic } from '../util/atomic.js';
import { encodeSafetensors, readSafetensors, type Tensor } from '../model/safetensors.js';
import type { AdamWState } from './optim.js';
import type { Param, StateTensor } from './policy.js';
import type { PpoTrainerState } from './ppo.js';

export const CHECKPOINT_FORMAT = 'flag-trader/ppo-checkpoint';
export const POLICY_FORMAT = 'flag-trader/policy';
const M_PREFIX = 'optimizer.m.';
const V_PREFIX = 'optimizer.v.';

export interface CheckpointState {
  trainer: PpoTrainerState;
  /** metrics.jsonl lines written up to this checkpoint, verbatim. */
  metrics: string[];
}

export function saveCheckpoint(path: string, params: readonly Param[], optimizer: AdamWState, state: CheckpointState, stateTensors: readonly StateTensor[] = []): void {
  writeFileAtomic(path, encodeCheckpoint(path, params, optimizer, state, stateTensors));
}

/** The bytes saveCheckpoint writes; `path` only names errors. */
export function encodeCheckpoint(path: string, params: readonly Param[], optimizer: AdamWState, state: CheckpointState, stateTensors: readonly StateTensor[] = []): Buffer {
  const tensors: Array<[string, Tensor]> = [];
  for (const p of [...params, ...stateTensors]) {
    if (p.name.startsWith('optimizer.')) throw new Error(`saveCheckpoint: parameter name ${p.name} clashes with the optimizer's tensor names`);
    tensors.push([p.name, { shape: p.shape, data: p.data }]);
  }
  for (const p of params) {
    const m = optimizer.m[p.name], v = optimizer.v[p.name];
    if (!m || !v) throw new Error(`saveCheckpoint: no optimizer state for ${p.name}`);
    tensors.push([M_PREFIX + p.name, { shape: p.shape, data: m }], [V_PREFIX + p.name, { shape: p.shape, data: v }]);
  }
  return encodeSafetensors(path, tensors, { metadata: { format: CHECKPOINT_FORMAT, version: '1', state: JSON.stringify(state) } });
}

export interface LoadedCheckpoint {
  params: Map<string, Tensor>;
  optimizer: AdamWState;
  state: CheckpointState;
}

export function loadCheckpoint(path: string): LoadedCheckpoint {
  const { tensors, metadata } = readSafetensors(path, { finite: true });
  if (metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${path}: not a PPO checkpoint (metadata format is ${JSON.stringify(metadata.format)}; expected ${CHECKPOINT_FORMAT})`);
  }
  if (metadata.version !== '1') throw new Error(`${path}: checkpoint version ${JSON.stringify(metadata.version)} is not supported (expected "1")`);
  let state: CheckpointState;
  try { state = JSON.parse(metadata.state ?? '') as CheckpointState; } catch (e) { throw new Error(`${path}: the checkpoint state is not valid JSON: ${(e as Error).message}`); }
  if (!state || typeof state !== 'object' || !state.trainer || !Array.isArray(state.metrics)) {
    throw new Error(`${path}: the checkpoint state lacks "trainer" or "metrics"`);
  }
  const params = new Map<string, Tensor>();
  const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
  for (const [name, t] of tensors) {
    if (name.startsWith(M_PREFIX)) m[name.slice(M_PREFIX.length)] = t.data;
    else if (name.startsWith(V_PREFIX)) v[name.slice(V_PREFIX.length)] = t.data;
    else params.set(name, { shape: t.shape, data: t.data });
  }
  return { params, optimizer: { step: state.trainer.optimizerStep, m, v }, state };
}

export function savePolicy(path: string, params: readonly StateTensor[], info: { kind: string; fingerprint: string; update: number }): void {
  writeFileAtomic(path, encodePolicy(path, params, info));
}

/** The bytes savePolicy writes; `path` only names errors. */
export function encodePolicy(path: string, params: readonly StateTensor[], info: { kind: string; fingerprint: string; update: number }): Buffer {
  return encodeSafetensors(path, params.map((p) => [p.name, { shape: p.shape, data: p.data }] as [string, Tensor]), {
    metadata: { format: POLICY_FORMAT, kind: info.kind, fingerprint: info.fingerprint, update: String(info.update) },
  });
}

/** The parameter tensors of a policy file or a checkpoint (optimizer tensors left out). */
export function readPolicyTensors(path: string): { params: Map<string, Tensor>; metadata: Record<string, string> } {
  const { tensors, metadata } = readSafetensors(path, { finite: true });
  if (metadata.format !== POLICY_FORMAT && metadata.format !== CHECKPOINT_FORMAT) {
    throw new Error(`${path}: not a policy or checkpoint file (metadata format is ${JSON.stringify(metadata.format)})`);
  }
  const params = new Map<string, Tensor>();
  for (const [name, t] of tensors) if (!name.startsWith('optimizer.')) params.set(name, { shape: t.shape, data: t.data });
  return { params, metadata };
}

/**
 * Copy tensors into the policy's params by name. Every param must be present with its exact shape,
 * and the file may not hold tensors the policy does not have (a different architecture).
 */
export function loadParamsInto(params: readonly StateTensor[], tensors: Map<string, Tensor>, source: string): void {
  const problems: string[] = [];
  for (const p of params) {
    const t = tensors.get(p.name);
    if (!t) { problems.push(`missing ${p.name} [${p.shape.join(', ')}]`); continue; }
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      problems.push(`${p.name} has shape [${t.shape.join(', ')}], expected [${p.shape.join(', ')}]`);
    }
  }
  const known = new Set(params.map((p) => p.name));
  for (const name of tensors.keys()) if (!known.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length) throw new Error(`${source}: the tensors do not match the policy: ${problems.join('; ')}`);
  for (const p of params) p.data.set(tensors.get(p.name)!.data);
}
