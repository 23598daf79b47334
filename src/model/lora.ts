/**
 * LoRA adapters (low-rank adaptation) on the decoder's linear maps, in the conventions of Hugging
 * Face PEFT, so that an adapter trained here loads in `peft` and one made there loads here.
 *
 * An adapted linear map of a layer (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)
 * computes, for x [T, in] and the frozen base weight W [out, in] (and bias b where the family has one):
 *
 *   y = x W^T (+ b) + s * (x A^T) B^T          A [r, in], B [out, r], s = lora_alpha / r
 *
 * A starts as PEFT initialises it (torch's kaiming_uniform_ with a = sqrt(5), which for fan_in = in
 * is uniform(-1/sqrt(in), 1/sqrt(in))), drawn from the caller's seeded Rng; B starts at 0, so an
 * adapted model starts as the base model. There is no dropout on the adapter input (lora_dropout 0).
 * The forward and backward of one adapted map live in layer.ts (loraForward, loraBackward).
 *
 * Files, as PEFT's save_pretrained writes them (adapter name "default" left out of the names):
 *   adapter_model.safetensors   base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight [r, in]
 *                               base_model.model.model.layers.{i}.self_attn.q_proj.lora_B.weight [out, r]
 *                               ... for every adapted layer and map (F32)
 *   adapter_config.json         peft_type LORA, task_type CAUSAL_LM, r, lora_alpha, target_modules,
 *                               layers_to_transform, base_model_name_or_path, bias "none", ...
 * Reading accepts what this decoder can compute: plain LoRA (no DoRA, no rank-stabilised scaling, no
 * per-module rank or alpha patterns, no trained biases or extra saved modules) on these seven maps.
 *
 * Merging (mergeLora) folds an adapter into the base weights, W' = W + s * B A, so the merged model
 * needs no adapter code: the products are summed in float64 and each weight rounded once to float32.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LlamaConfig } from './config.js';
import type { LayerKey } from './weights.js';
import { encodeSafetensors, readSafetensors, type Tensor } from './safetensors.js';
import { sha256File } from './load.js';
import { readJson } from '../util/read-json.js';
import type { Rng } from '../util/rng.js';

/** The linear maps an adapter may sit on (the layer weight keys of weights.ts), in PEFT's module order. */
export const LORA_TARGETS = ['q', 'k', 'v', 'o', 'gate', 'up', 'down'] as const satisfies readonly LayerKey[];
export type LoraTarget = typeof LORA_TARGETS[number];

/** The module path of each map inside a layer, as PEFT names the adapted modules. */
export const LORA_MODULE_PATHS: Readonly<Record<LoraTarget, string>> = {
  q: 'self_attn.q_proj', k: 'self_attn.k_proj', v: 'self_attn.v_proj', o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj', up: 'mlp.up_proj', down: 'mlp.down_proj',
};

/** PEFT's target_modules names of the maps (q_proj, ...). */
export const LORA_MODULE_NAMES: Readonly<Record<LoraTarget, string>> = {
  q: 'q_proj', k: 'k_proj', v: 'v_proj', o: 'o_proj', gate: 'gate_proj', up: 'up_proj', down: 'down_proj',
};

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** What an adapter is: rank, alpha, which maps of which layers. */
export interface LoraSpec {
  r: number;
  alpha: number;
  /** Adapted maps, in LORA_TARGETS order. */
  targets: LoraTarget[];
  /** Adapted layers (absolute indices), ascending. */
  layers: number[];
}

/** One adapted map: A [r, in] and B [out, r], row-major. */
export interface LoraPair {
  A: Float32Array;
  B: Float32Array;
}

/** The adapters of one layer, by map. */
export type LoraLayer = Partial<Record<LoraTarget, LoraPair>>;

export interface LoraAdapter {
  spec: LoraSpec;
  /** By absolute layer index: exactly spec.layers, each with exactly spec.targets. */
  layers: Map<number, LoraLayer>;
}

/** s = lora_alpha / r, the factor of the low-rank update. */
export function loraScale(spec: LoraSpec): number {
  return spec.alpha / spec.r;
}

/** [out, in] of a map under a config. */
export function loraDims(c: LlamaConfig, t: LoraTarget): { in: number; out: number } {
  const C = c.hidden_size, F = c.intermediate_size, HD = c.num_attention_heads * c.head_dim, KVD = c.num_key_value_heads * c.head_dim;
  switch (t) {
    case 'q': return { in: C, out: HD };
    case 'k': case 'v': return { in: C, out: KVD };
    case 'o': return { in: HD, out: C };
    case 'gate': case 'up': return { in: C, out: F };
    case 'down': return { in: F, out: C };
  }
}

/** Check a spec against a config: positive integer r, finite alpha, known maps, layers in range. */
export function validateLoraSpec(spec: LoraSpec, c: LlamaConfig): void {
  if (!Number.isInteger(spec.r) || spec.r < 1) throw new Error(`LoRA: r must be a positive integer, got ${spec.r}`);
  if (!(Number.isFinite(spec.alpha) && spec.alpha > 0)) throw new Error(`LoRA: lora_alpha must be a positive number, got ${spec.alpha}`);
  if (spec.targets.length === 0) throw new Error('LoRA: no target modules');
  for (const t of spec.targets) if (!LORA_TARGETS.includes(t)) throw new Error(`LoRA: unknown target ${String(t)}; known: ${LORA_TARGETS.join(', ')}`);
  if (spec.layers.length === 0) throw new Error('LoRA: no layers');
  spec.layers.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 0 || l >= c.num_hidden_layers) throw new Error(`LoRA: layer ${l} is not a layer of the model (0..${c.num_hidden_layers - 1})`);
    if (i > 0 && l <= spec.layers[i - 1]!) throw new Error(`LoRA: layers must be ascending and distinct, got ${JSON.stringify(spec.layers)}`);
  });
}

/** A spec with targets in LORA_TARGETS order and layers ascending (duplicates removed). */
export function normaliseLoraSpec(spec: LoraSpec): LoraSpec {
  return {
    r: spec.r, alpha: spec.alpha,
    targets: LORA_TARGETS.filter((t) => spec.targets.includes(t)),
    layers: [...new Set(spec.layers)].sort((a, b) => a - b),
  };
}

/**
 * A fresh adapter: every A uniform(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform_(a = sqrt(5))),
 * every B zero. Drawn from `rng` layer by layer (ascending), map by map (LORA_TARGETS order), A row-major.
 */
export function initLora(c: LlamaConfig, spec: LoraSpec, rng: Rng): LoraAdapter {
  validateLoraSpec(spec, c);
  const layers = new Map<number, LoraLayer>();
  for (const l of spec.layers) {
    const layer: LoraLayer = {};
    for (const t of spec.targets) {
      const { in: I, out: O } = loraDims(c, t);
      // kaiming_uniform_(a): gain = sqrt(2 / (1 + a^2)) = sqrt(1/3) for a = sqrt(5); bound = gain * sqrt(3 / fan_in) = 1 / sqrt(fan_in).
      const bound = 1 / Math.sqrt(I);
      const A = new Float32Array(spec.r * I);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng.uniform() - 1) * bound;
      layer[t] = { A, B: new Float32Array(O * spec.r) };
    }
    layers.set(l, layer);
  }
  return { spec, layers };
}

/** Zero-filled tensors shaped like the adapter's (its gradients). */
export function zerosLikeLora(a: LoraAdapter): LoraAdapter {
  return mapLora(a, (x) => new Float32Array(x.length));
}

/** A deep copy. */
export function copyLora(a: LoraAdapter): LoraAdapter {
  return mapLora(a, (x) => x.slice());
}

function mapLora(a: LoraAdapter, f: (x: Float32Array) => Float32Array): LoraAdapter {
  const layers = new Map<number, LoraLayer>();
  for (const [l, layer] of a.layers) {
    const c: LoraLayer = {};
    for (const t of a.spec.targets) c[t] = { A: f(layer[t]!.A), B: f(layer[t]!.B) };
    layers.set(l, c);
  }
  return { spec: { ...a.spec, targets: [...a.spec.targets], layers: [...a.spec.layers] }, layers };
}

/** PEFT's tensor name of A or B of one map of one layer. */
export function loraTensorName(layer: number, t: LoraTarget, which: 'A' | 'B'): string {
  return `base_model.model.model.layers.${layer}.${LORA_MODULE_PATHS[t]}.lora_${which}.weight`;
}

/** Every tensor of the adapter as [PEFT name, shape, data], layer by layer, map by map, A before B. */
export function loraTensors(c: LlamaConfig, a: LoraAdapter): Array<{ name: string; shape: number[]; data: Float32Array }> {
  const out: Array<{ name: string; shape: number[]; data: Float32Array }> = [];
  for (const l of a.spec.layers) {
    for (const t of a.spec.targets) {
      const { in: I, out: O } = loraDims(c, t);
      const p = a.layers.get(l)![t]!;
      out.push({ name: loraTensorName(l, t, 'A'), shape: [a.spec.r, I], data: p.A });
      out.push({ name: loraTensorName(l, t, 'B'), shape: [O, a.spec.r], data: p.B });
    }
  }
  return out;
}

/** Scalars in the adapter. */
export function loraParameterCount(c: LlamaConfig, spec: LoraSpec): number {
  let n = 0;
  for (const t of spec.targets) {
    const { in: I, out: O } = loraDims(c, t);
    n += spec.r * (I + O);
  }
  return n * spec.layers.length;
}

// ---------------------------------------------------------------------------------------------
// PEFT files

/** adapter_config.json as PEFT's LoraConfig writes it, for this adapter. */
export function adapterConfigJson(spec: LoraSpec, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    revision: null,
    inference_mode: true,
    r: spec.r,
    lora_alpha: spec.alpha,
    lora_dropout: 0.0,
    target_modules: spec.targets.map((t) => LORA_MODULE_NAMES[t]),
    layers_to_transform: [...spec.layers],
    layers_pattern: 'layers',
    bias: 'none',
    fan_in_fan_out: false,
    modules_to_save: null,
    init_lora_weights: true,
    rank_pattern: {},
    alpha_pattern: {},
    use_rslora: false,
    use_dora: false,
  };
}

/** The two files of a PEFT adapter folder, as bytes (written by the caller). */
export function encodeLoraAdapter(c: LlamaConfig, a: LoraAdapter, baseModel: string): { config: string; weights: Buffer } {
  const tensors = loraTensors(c, a).map((t) => [t.name, { shape: t.shape, data: t.data }] as [string, Tensor]);
  return {
    config: `${JSON.stringify(adapterConfigJson(a.spec, baseModel), null, 2)}\n`,
    weights: encodeSafetensors(ADAPTER_WEIGHTS_FILE, tensors, { metadata: { format: 'pt' } }),
  };
}

/** What readLoraAdapter returns: the adapter, the base model it names and a digest of its files. */
export interface LoadedLoraAdapter extends LoraAdapter {
  dir: string;
  /** base_model_name_or_path of adapter_config.json (null when absent). */
  baseModel: string | null;
  /** sha256 over both files: names the adapter in fingerprints. */
  fingerprint: string;
}

/**
 * Read a PEFT LoRA adapter folder for a model of config `c`: checks that adapter_config.json describes
 * plain LoRA on maps this decoder has, and that adapter_model.safetensors holds exactly the tensors it
 * implies, with their shapes (one error lists every difference); values must be finite.
 */
export function readLoraAdapter(dir: string, c: LlamaConfig): LoadedLoraAdapter {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`adapter ${dir}: not a folder (expected ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE})`);
  const cfgPath = join(dir, ADAPTER_CONFIG_FILE), wPath = join(dir, ADAPTER_WEIGHTS_FILE);
  for (const p of [cfgPath, wPath]) if (!existsSync(p)) throw new Error(`adapter ${dir}: ${p} is missing`);
  const raw = readJson(cfgPath, 'adapter config') as Record<string, unknown>;
  const spec = parseAdapterConfig(raw, c, cfgPath);
  const { tensors } = readSafetensors(wPath, { finite: true });
  const expected = new Map<string, number[]>();
  const tmpl = loraTensors(c, { spec, layers: new Map(spec.layers.map((l) => [l, Object.fromEntries(spec.targets.map((t) => [t, { A: new Float32Array(0), B: new Float32Array(0) }]))])) });
  for (const t of tmpl) expected.set(t.name, t.shape);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    const got = tensors.get(name);
    if (!got) problems.push(`missing ${name} [${shape.join(', ')}]`);
    else if (got.shape.length !== shape.length || got.shape.some((d, i) => d !== shape[i])) problems.push(`${name} has shape [${got.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  for (const name of tensors.keys()) if (!expected.has(name)) problems.push(`unexpected tensor ${name}`);
  if (problems.length) {
    const shown = problems.length > 12 ? [...problems.slice(0, 12), `... and ${problems.length - 12} more`] : problems;
    throw new Error(`adapter ${dir}: ${ADAPTER_WEIGHTS_FILE} does not match ${ADAPTER_CONFIG_FILE} (r ${spec.r}, ${spec.targets.map((t) => LORA_MODULE_NAMES[t]).join(', ')} on layers ${spec.layers.join(', ')}): ${shown.join('; ')}`);
  }
  const layers = new Map<number, LoraLayer>();
  for (const l of spec.layers) {
    const layer: LoraLayer = {};
    for (const t of spec.targets) layer[t] = { A: tensors.get(loraTensorName(l, t, 'A'))!.data, B: tensors.get(loraTensorName(l, t, 'B'))!.data };
    layers.set(l, layer);
  }
  const fingerprint = createHash('sha256').update(`lora ${sha256File(cfgPath)} ${sha256File(wPath)}`).digest('hex');
  const base = raw.base_model_name_or_path;
  return { spec, layers, dir, baseModel: typeof base === 'string' ? base : null, fingerprint };
}

/** The LoraSpec of an adapter_config.json, or an error naming the field this decoder cannot compute. */
export function parseAdapterConfig(raw: Record<string, unknown>, c: LlamaConfig, where: string): LoraSpec {
  const fail = (field: string, msg: string): never => { throw new Error(`${where}: field "${field}": ${msg}`); };
  if (raw.peft_type !== 'LORA') fail('peft_type', `${JSON.stringify(raw.peft_type)} is not supported; expected "LORA"`);
  const r = raw.r;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail('r', `expected a positive integer, got ${JSON.stringify(r)}`);
  const alpha = raw.lora_alpha ?? 8; // PEFT's default
  if (typeof alpha !== 'number' || !(alpha > 0)) fail('lora_alpha', `expected a positive number, got ${JSON.stringify(alpha)}`);
  for (const [field, off] of [['use_dora', false], ['use_rslora', false], ['fan_in_fan_out', false]] as const) {
    if (raw[field] !== undefined && raw[field] !== null && raw[field] !== off) fail(field, `${JSON.stringify(raw[field])} is not supported (only plain LoRA: ${field} false)`);
  }
  if (raw.bias !== undefined && raw.bias !== 'none') fail('bias', `${JSON.stringify(raw.bias)} is not supported; expected "none"`);
  for (const field of ['rank_pattern', 'alpha_pattern'] as const) {
    const v = raw[field];
    if (v !== undefined && v !== null && (typeof v !== 'object' || Object.keys(v).length > 0)) fail(field, `per-module ${field === 'rank_pattern' ? 'ranks' : 'alphas'} are not supported; expected {}`);
  }
  const mts = raw.modules_to_save;
  if (mts !== undefined && mts !== null && !(Array.isArray(mts) && mts.length === 0)) fail('modules_to_save', `${JSON.stringify(mts)}: saved full modules are not supported`);
  if (raw.layer_replication !== undefined && raw.layer_replication !== null) fail('layer_replication', 'not supported');
  const tm = raw.target_modules;
  if (!Array.isArray(tm) || tm.length === 0 || !tm.every((x) => typeof x === 'string')) {
    fail('target_modules', `expected a list of module names among ${Object.values(LORA_MODULE_NAMES).join(', ')}, got ${JSON.stringify(tm)}`);
  }
  const targets: LoraTarget[] = [];
  for (const name of tm as string[]) {
    const t = LORA_TARGETS.find((x) => LORA_MODULE_NAMES[x] === name || LORA_MODULE_PATHS[x] === name);
    if (t === undefined) fail('target_modules', `${JSON.stringify(name)} is not a linear map of this decoder; known: ${Object.values(LORA_MODULE_NAMES).join(', ')}`);
    else targets.push(t);
  }
  const ltt = raw.layers_to_transform;
  let layers: number[];
  if (ltt === undefined || ltt === null) layers = Array.from({ length: c.num_hidden_layers }, (_, i) => i);
  else if (typeof ltt === 'number') layers = [ltt];
  else if (Array.isArray(ltt) && ltt.every((x) => typeof x === 'number')) layers = ltt as number[];
  else return fail('layers_to_transform', `expected null, a layer index or a list of them, got ${JSON.stringify(ltt)}`);
  const spec = normaliseLoraSpec({ r: r as number, alpha: alpha as number, targets, layers });
  try { validateLoraSpec(spec, c); } catch (e) { fail('layers_to_transform', (e as Error).message); }
  return spec;
}

/** Layer tensors in float32 that merging may change (the base weights of the adapted maps). */
export type MergeTarget = Partial<Record<LoraTarget, Float32Array>>;

/**
 * W += s * B A for every adapted map of `layer` (in place). Each entry's product is summed in float64
 * and the sum W + s * (B A) rounded once to float32.
 */
export function mergeLoraLayer(c: LlamaConfig, spec: LoraSpec, adapter: LoraLayer, weights: MergeTarget): void {
  const s = loraScale(spec), r = spec.r;
  for (const t of spec.targets) {
    const W = weights[t], p = adapter[t];
    if (!W || !p) throw new Error(`mergeLoraLayer: no ${t} weight or adapter`);
    const { in: I, out: O } = loraDims(c, t);
    const row = new Float64Array(I);
    for (let o = 0; o < O; o++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const b = p.B[o * r + k]!;
        if (b === 0) continue;
        const a = p.A.subarray(k * I, (k + 1) * I);
        for (let i = 0; i < I; i++) row[i]! += b * a[i]!;
      }
      const off = o * I;
      for (let i = 0; i < I; i++) W[off + i] = W[off + i]! + s * row[i]!;
    }
  }
}
