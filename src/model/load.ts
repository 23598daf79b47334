// One entry point that turns a model spec into config + float32 weights + tokenizer:
//   <folder>                config.json + model.safetensors (or model.safetensors.index.json and its
//                           shards) + tokenizer.json (+ tokenizer_config.json and chat_template.jinja when present)
//   random:<name>           a built-in config (smollm2-135m, small, tiny) with seeded random weights
//   random:<path>.json      random weights of that config.json; tokenizer.json beside it when present
//   <name>                  a model shipped in the project's models/ folder (project-models.ts)
//   org/name[@revision]     a Hugging Face Hub model, downloaded into the cache (see hub.ts)
// A folder (or Hub model) may also hold flag_trader.json (src/model/meta.ts): our metadata, whose
// text_cutoff the point-in-time guard reads; it joins the fingerprint only when present.
// The byte-level tokenizer stands in only for random specs without a tokenizer.json.
// With `adapter` (a PEFT LoRA folder, src/model/lora.ts) the adapter is merged into the loaded weights
// (W + alpha/r * B A, mergeLora) and its files join the fingerprint: the result is the model that
// `flag-trader model merge` writes, so both give bit-identical logits.
//
// Tensor checks: every tensor of tensorManifest(config) must be present with its shape. Extra tensors
// are an error, except two known-harmless cases: rotary inv_freq buffers (model.layers.N.self_attn.
// rotary_emb.inv_freq, saved by old transformers versions; recomputed from rope_theta, so they are
// ignored) and lm_head.weight in a tied model, which is accepted only when it equals
// model.embed_tokens.weight exactly (transformers would silently replace it by the embedding; a
// different one means the config and the checkpoint disagree). Every tensor read must be finite: a NaN
// or +-Inf (a corrupt file, diverged training) is an error naming the file and the tensor.
import { createHash } from 'node:crypto';
import { existsSync, statSync, openSync, readSync, closeSync, readFileSync } from 'node:fs';
import { join, dirname, basename, resolve } from 'node:path';
import type { LlamaConfig } from './config.js';
import { LAYER_TENSOR_KIND, LAYER_TENSOR_NAMES, layerKeyOf, layerKeys, tensorManifest, type LayerKey, type LayerWeights, type LlamaWeights } from './weights.js';
import { FROZEN_DTYPES, packBf16, toFloat32, type FrozenDtype, type StoredTensor } from './bf16.js';
import { SafetensorsFile, writeSafetensors, readSafetensors, type Tensor, type FloatDtype } from './safetensors.js';
import { parseLlamaConfig, toHfConfigJson, canonicalConfigJson } from './parse-config.js';
import { builtinConfig, BUILTIN_CONFIGS } from './configs.js';
import { randomWeights } from './random-init.js';
import { ByteTokenizer, BYTE_VOCAB_SIZE, loadHfTokenizer, type TextTokenizer } from './tokenizer.js';
import { projectModelDir } from './project-models.js';
import { CHAT_TEMPLATE_FILE, downloadModel, parseHubId, shardFilesOfIndex } from './hub.js';
import { MODEL_META_FILE, readModelMeta, type ModelMeta } from './meta.js';
import { byteTokenizerConfigJson, byteTokenizerJson } from './byte-tokenizer-json.js';
import { mergeLoraLayer, readLoraAdapter, type LoadedLoraAdapter, type LoraSpec, type LoraTarget } from './lora.js';
import { writeFileAtomic } from '../util/atomic.js';
import { readJson } from '../util/read-json.js';

export interface LoadOptions {
  /** Hub cache folder (default $FLAG_TRADER_CACHE/hub or ~/.cache/flag-trader/hub). */
  cacheDir?: string;
  /** Seed of random weights (random: specs); default 0. */
  seed?: number;
  /** Hub base URL (default $HF_ENDPOINT or https://huggingface.co). */
  hubUrl?: string;
  /** Hub revision when the spec has no @revision (default main). */
  revision?: string;
  /** A tokenizer.json file, or a folder holding one, used instead of the model's own. */
  tokenizerPath?: string;
  /** Progress lines (downloads). */
  log?: (message: string) => void;
  /** A PEFT LoRA adapter folder merged into the weights as they load (see the module comment). */
  adapter?: string;
  /**
   * How frozen matrices are stored (src/model/bf16.ts): `bfloat16` keeps the embedding / LM head and
   * the linear weights of every layer below the top `float32Layers` as bf16 bits, halving their
   * memory (read from the file, or drawn, chunk by chunk: no float32 copy of a whole tensor). Default
   * float32.
   */
  frozenDtype?: FrozenDtype;
  /** With frozenDtype bfloat16: how many top layers keep float32 weights (the layers that train). Default 0. */
  float32Layers?: number;
}

/** A loaded model; T is how its matrices may be stored (float32 unless loaded with frozenDtype). */
export interface LoadedModel<T extends StoredTensor = Float32Array> {
  config: LlamaConfig;
  weights: LlamaWeights<T>;
  tokenizer: TextTokenizer;
  spec: string;
  source: 'folder' | 'hub' | 'random';
  /** sha256 over config + tensor files + tokenizer (or seed + config for random): names the model in run records. */
  fingerprint: string;
  /** flag_trader.json of a folder or Hub model; null when absent (and for random models). */
  meta: ModelMeta | null;
  /** Last date of the pretraining text (meta.text_cutoff); null when not recorded. */
  textCutoff: string | null;
  /** The folder holding the tokenizer's files (tokenizer.json, ...); null for the built-in byte tokenizer. */
  tokenizerDir: string | null;
  /** The model folder read (a local, shipped or downloaded folder); null for random weights. */
  dir: string | null;
  /** The LoRA adapter merged into the weights (LoadOptions.adapter), or absent. */
  adapter?: { dir: string; spec: LoraSpec; baseModel: string | null; fingerprint: string };
  /** How frozen matrices are stored (LoadOptions.frozenDtype; float32 when not asked). */
  frozenDtype: FrozenDtype;
}

export const HARMLESS_EXTRA_TENSOR = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

export async function loadModel(spec: string, opts?: LoadOptions & { frozenDtype?: 'float32' }): Promise<LoadedModel>;
export async function loadModel(spec: string, opts: LoadOptions): Promise<LoadedModel<StoredTensor>>;
export async function loadModel(spec: string, opts: LoadOptions = {}): Promise<LoadedModel<StoredTensor>> {
  const dtype = opts.frozenDtype ?? 'float32';
  if (!FROZEN_DTYPES.includes(dtype)) throw new Error(`frozenDtype must be one of ${FROZEN_DTYPES.join(', ')}, got ${String(dtype)}`);
  const keep = opts.float32Layers ?? 0;
  if (!Number.isInteger(keep) || keep < 0) throw new Error(`float32Layers must be an integer >= 0, got ${keep}`);
  return loadBase(spec, opts);
}

/** What loading does to each tensor after reading it: merge the adapter, store in bf16 (LoadOptions). */
interface StoragePlan {
  frozenDtype: FrozenDtype;
  /** Store the embedding / LM head as bf16. */
  packEmbed: boolean;
  /** Store layer l's linear weights as bf16. */
  packLayer(l: number): boolean;
  adapter: LoadedLoraAdapter | null;
}

function storagePlan(config: LlamaConfig, opts: LoadOptions): StoragePlan {
  const bf16 = opts.frozenDtype === 'bfloat16';
  const firstFloat32 = config.num_hidden_layers - (opts.float32Layers ?? 0);
  return {
    frozenDtype: opts.frozenDtype ?? 'float32',
    packEmbed: bf16,
    packLayer: (l) => bf16 && l < firstFloat32,
    adapter: opts.adapter === undefined ? null : readLoraAdapter(opts.adapter, config),
  };
}

/** Whether the plan's adapter changes layer l's linear weight `key`. */
function adapted(plan: StoragePlan, l: number, key: LayerKey): boolean {
  return plan.adapter !== null && plan.adapter.layers.has(l) && (plan.adapter.spec.targets as readonly LayerKey[]).includes(key);
}

/** A linear weight of layer l as stored: the adapter merged into it (float32), then packed if the plan says so. */
function finishLinear(config: LlamaConfig, plan: StoragePlan, l: number, key: LayerKey, w: Float32Array): StoredTensor {
  if (adapted(plan, l, key)) {
    const t = key as LoraTarget, a = plan.adapter!;
    mergeLoraLayer(config, { ...a.spec, targets: [t] }, a.layers.get(l)!, { [t]: w });
  }
  return plan.packLayer(l) ? packBf16(w) : w;
}

/** The model's fingerprint with the merged adapter's files added (unchanged without an adapter). */
function withAdapter<T extends StoredTensor>(loaded: LoadedModel<T>, plan: StoragePlan): LoadedModel<T> {
  const a = plan.adapter;
  if (!a) return loaded;
  const fingerprint = createHash('sha256').update(`${loaded.fingerprint}\nadapter ${a.fingerprint}\n`).digest('hex');
  return { ...loaded, fingerprint, adapter: { dir: a.dir, spec: a.spec, baseModel: a.baseModel, fingerprint: a.fingerprint } };
}

async function loadBase(spec: string, opts: LoadOptions): Promise<LoadedModel<StoredTensor>> {
  if (spec.startsWith('random:')) return loadRandom(spec, opts);
  const shipped = existsSync(spec) ? null : projectModelDir(spec);
  if (shipped) return { ...loadModelFolder(shipped, opts), spec, source: 'folder', dir: shipped };
  if (existsSync(spec)) {
    if (!statSync(spec).isDirectory()) throw new Error(`${spec}: expected a model folder (config.json, *.safetensors, tokenizer.json), got a file`);
    return { ...loadModelFolder(spec, opts), spec, source: 'folder', dir: spec };
  }
  const hub = parseHubId(spec);
  if (!hub) {
    throw new Error(`model "${spec}" is not a local folder, a random:<${Object.keys(BUILTIN_CONFIGS).join('|')}|config.json> spec, nor a Hub id (org/name[@revision])`);
  }
  const snap = await downloadModel(hub.repo, {
    revision: hub.revision ?? opts.revision,
    ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.hubUrl !== undefined ? { hubUrl: opts.hubUrl } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  return { ...loadModelFolder(snap.dir, opts), spec, source: 'hub', dir: snap.dir };
}

/**
 * The flag_trader.json of a model spec without loading its weights (the point-in-time guard runs
 * before any model is loaded): null for random specs and folders without the file. A Hub model is
 * downloaded into the cache as loadModel would (the later load then reads the cache).
 */
export async function loadModelMeta(spec: string, opts: Pick<LoadOptions, 'cacheDir' | 'hubUrl' | 'revision' | 'log'> = {}): Promise<ModelMeta | null> {
  if (spec.startsWith('random:')) return null;
  if (existsSync(spec)) return statSync(spec).isDirectory() ? readModelMeta(spec) : null;
  const shipped = projectModelDir(spec);
  if (shipped) return readModelMeta(shipped);
  const hub = parseHubId(spec);
  if (!hub) return null; // loadModel names the bad spec
  const snap = await downloadModel(hub.repo, {
    revision: hub.revision ?? opts.revision,
    ...(opts.cacheDir !== undefined ? { cacheDir: opts.cacheDir } : {}),
    ...(opts.hubUrl !== undefined ? { hubUrl: opts.hubUrl } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  return readModelMeta(snap.dir);
}

// ---------------------------------------------------------------------------------------------
// Random weights

function loadRandom(spec: string, opts: LoadOptions): LoadedModel<StoredTensor> {
  const what = spec.slice('random:'.length);
  const seed = opts.seed ?? 0;
  let config: LlamaConfig;
  let besideTokenizer: string | undefined;
  if (what in BUILTIN_CONFIGS) {
    config = builtinConfig(what);
  } else if (what.endsWith('.json') || what.includes('/')) {
    const path = existsSync(what) && statSync(what).isDirectory() ? join(what, 'config.json') : what;
    config = parseLlamaConfig(readJson(path, 'model config'), path);
    const t = join(dirname(path), 'tokenizer.json');
    if (existsSync(t)) besideTokenizer = t;
  } else {
    throw new Error(`model spec "${spec}": unknown built-in config "${what}"; expected one of ${Object.keys(BUILTIN_CONFIGS).join(', ')} or a path to a config.json`);
  }
  let tokenizer: TextTokenizer;
  let tokenizerHash: string;
  const tokPath = opts.tokenizerPath ?? besideTokenizer;
  if (tokPath !== undefined) {
    ({ tokenizer, hash: tokenizerHash } = loadTokenizerAt(tokPath));
  } else {
    if (config.vocab_size < BYTE_VOCAB_SIZE) {
      throw new Error(`model spec "${spec}": no tokenizer.json, and the byte-level tokenizer needs vocab_size >= ${BYTE_VOCAB_SIZE} (config has ${config.vocab_size})`);
    }
    tokenizer = new ByteTokenizer();
    tokenizerHash = 'bytes';
  }
  checkTokenizerFits(tokenizer, config, spec);
  const plan = storagePlan(config, opts);
  const weights = randomWeights(config, seed, { packEmbed: plan.packEmbed, finishLinear: (l, key, w) => finishLinear(config, plan, l, key, w) });
  const h = createHash('sha256');
  h.update('flag-trader model v1\n');
  h.update(`config ${canonicalConfigJson(config)}\n`);
  h.update(`random seed ${seed}\n`);
  h.update(`tokenizer ${tokenizerHash}\n`);
  return withAdapter({
    config, weights, tokenizer, spec, source: 'random', fingerprint: h.digest('hex'), meta: null, textCutoff: null,
    tokenizerDir: tokPath === undefined ? null : tokenizerFolder(tokPath), dir: null, frozenDtype: plan.frozenDtype,
  }, plan);
}

// ---------------------------------------------------------------------------------------------
// Model folders


/** sha256 of a file, read in chunks (model files are hundreds of MB). */
export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 24);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** The folder of a tokenizer.json path (or the folder itself). */
function tokenizerFolder(pathOrDir: string): string {
  return existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? pathOrDir : dirname(pathOrDir);
}

/**
 * Write a loaded model's tokenizer into a model folder: the byte tokenizer as tokenizer.json and
 * tokenizer_config.json, an HF tokenizer by copying its tokenizer.json, tokenizer_config.json and
 * chat_template.jinja (those present).
 */
export function writeTokenizerFiles(dir: string, loaded: Pick<LoadedModel, 'tokenizer' | 'tokenizerDir' | 'spec'>): void {
  if (loaded.tokenizer.kind === 'bytes') {
    writeFileAtomic(join(dir, 'tokenizer.json'), `${JSON.stringify(byteTokenizerJson())}\n`);
    writeFileAtomic(join(dir, 'tokenizer_config.json'), `${JSON.stringify(byteTokenizerConfigJson(), null, 2)}\n`);
    return;
  }
  const from = loaded.tokenizerDir;
  if (from === null) throw new Error(`${loaded.spec}: the tokenizer's files are unknown; cannot write them into ${dir}`);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', CHAT_TEMPLATE_FILE]) {
    const src = join(from, f);
    if (existsSync(src) && resolve(src) !== resolve(join(dir, f))) writeFileAtomic(join(dir, f), readFileSync(src));
  }
  if (!existsSync(join(dir, 'tokenizer.json'))) throw new Error(`${loaded.spec}: cannot find the tokenizer.json to copy into ${dir}`);
}

function loadTokenizerAt(pathOrDir: string): { tokenizer: TextTokenizer; hash: string } {
  const file = existsSync(pathOrDir) && statSync(pathOrDir).isDirectory() ? join(pathOrDir, 'tokenizer.json') : pathOrDir;
  if (!existsSync(file)) throw new Error(`${file}: tokenizer file not found`);
  const cfg = join(dirname(file), 'tokenizer_config.json');
  // A chat_template.jinja beside them replaces tokenizer_config.json's chat_template (as in transformers).
  const jinja = join(dirname(file), CHAT_TEMPLATE_FILE);
  const hasJinja = existsSync(jinja);
  const tokenizer = loadHfTokenizer(file, existsSync(cfg) ? cfg : undefined, hasJinja ? jinja : undefined);
  const h = createHash('sha256').update(sha256File(file)).update(existsSync(cfg) ? sha256File(cfg) : '');
  if (hasJinja) h.update(`${CHAT_TEMPLATE_FILE} ${sha256File(jinja)}`); // only when present: older fingerprints stay
  return { tokenizer, hash: h.digest('hex') };
}

function checkTokenizerFits(tok: TextTokenizer, config: LlamaConfig, where: string): void {
  if (tok.vocabSize > config.vocab_size) {
    throw new Error(`${where}: the tokenizer has ${tok.vocabSize} ids but the model's vocab_size is ${config.vocab_size}`);
  }
}

/** Load config, weights and tokenizer of a model folder (no spec bookkeeping). */
export function loadModelFolder(dir: string, opts: Pick<LoadOptions, 'tokenizerPath' | 'adapter' | 'frozenDtype' | 'float32Layers'> = {}): Omit<LoadedModel<StoredTensor>, 'spec' | 'source' | 'dir'> {
  const configPath = join(dir, 'config.json');
  if (!existsSync(configPath)) throw new Error(`${dir}: model folder has no config.json`);
  const config = parseLlamaConfig(readJson(configPath, 'model config'), configPath);

  const tokPath = opts.tokenizerPath ?? join(dir, 'tokenizer.json');
  if (opts.tokenizerPath === undefined && !existsSync(tokPath)) {
    throw new Error(`${dir}: model folder has no tokenizer.json (pass tokenizerPath to use another tokenizer)`);
  }
  const { tokenizer, hash: tokenizerHash } = loadTokenizerAt(tokPath);
  checkTokenizerFits(tokenizer, config, dir);

  const files = weightFiles(dir);
  const plan = storagePlan(config, opts);
  const weights = readCheckpointWeights(dir, config, files, plan);
  const meta = readModelMeta(dir);

  const h = createHash('sha256');
  h.update('flag-trader model v1\n');
  h.update(`config ${canonicalConfigJson(config)}\n`);
  for (const f of [...files].sort()) h.update(`file ${basename(f)} ${sha256File(f)}\n`);
  h.update(`tokenizer ${tokenizerHash}\n`);
  // Only when present, so folders without it keep the fingerprints their runs recorded.
  if (meta) h.update(`meta ${sha256File(join(dir, MODEL_META_FILE))}\n`);
  const loaded = { config, weights, tokenizer, fingerprint: h.digest('hex'), meta, textCutoff: meta?.text_cutoff ?? null, tokenizerDir: tokenizerFolder(tokPath), frozenDtype: plan.frozenDtype };
  return withAdapter({ ...loaded, spec: dir, source: 'folder', dir }, plan);
}

/** The safetensors files of a folder: model.safetensors, else the shards of the index (as HF picks them). */
export function weightFiles(dir: string): string[] {
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) return shardFilesOfIndex(index).map((f) => join(dir, f));
  throw new Error(`${dir}: model folder has neither model.safetensors nor model.safetensors.index.json`);
}

function shapeStr(s: number[]): string {
  return `[${s.join(', ')}]`;
}

function listSome(xs: string[], max = 12): string {
  return xs.length <= max ? xs.join('; ') : `${xs.slice(0, max).join('; ')}; ... and ${xs.length - max} more`;
}

/**
 * Compare the tensors found (name -> shape) with the expected list; throw one error naming every
 * missing, mis-shaped and unexpected tensor. `allowExtra` exempts names from the unexpected check.
 */
export function checkTensorSet(where: string, expected: Array<[string, number[]]>, found: Map<string, number[]>,
  allowExtra: (name: string) => boolean = () => false): void {
  const missing: string[] = [], wrong: string[] = [], extra: string[] = [];
  const want = new Map(expected);
  for (const [name, shape] of expected) {
    const got = found.get(name);
    if (!got) missing.push(`${name} ${shapeStr(shape)}`);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) wrong.push(`${name}: expected ${shapeStr(shape)}, got ${shapeStr(got)}`);
  }
  for (const name of found.keys()) if (!want.has(name) && !allowExtra(name)) extra.push(name);
  const parts: string[] = [];
  if (missing.length) parts.push(`missing tensors: ${listSome(missing)}`);
  if (wrong.length) parts.push(`wrong shapes: ${listSome(wrong)}`);
  if (extra.length) parts.push(`unexpected tensors: ${listSome(extra)}`);
  if (parts.length) throw new Error(`${where}: checkpoint does not match the config: ${parts.join(' | ')}`);
}

/** Read and check the config's tensors (tensorManifest: its family's biases and q/k norms included) from safetensors files (one or shards) into LlamaWeights. */
export function readCheckpointWeights(where: string, config: LlamaConfig, files: string[]): LlamaWeights;
export function readCheckpointWeights(where: string, config: LlamaConfig, files: string[], plan: StoragePlan): LlamaWeights<StoredTensor>;
export function readCheckpointWeights(where: string, config: LlamaConfig, files: string[], plan?: StoragePlan): LlamaWeights<StoredTensor> {
  const opened: SafetensorsFile[] = [];
  try {
    const owner = new Map<string, SafetensorsFile>();
    for (const path of files) {
      const f = SafetensorsFile.open(path);
      opened.push(f);
      for (const name of f.names()) {
        const prev = owner.get(name);
        if (prev) throw new Error(`${where}: tensor "${name}" appears in both ${prev.path} and ${path}`);
        owner.set(name, f);
      }
    }
    checkIndexAgrees(where, files, owner);
    const found = new Map<string, number[]>();
    for (const [name, f] of owner) found.set(name, f.info(name).shape);
    const manifest = tensorManifest(config);
    const tiedHead = config.tie_word_embeddings && owner.has('lm_head.weight');
    checkTensorSet(where, manifest, found, (n) => HARMLESS_EXTRA_TENSOR.test(n) || (n === 'lm_head.weight' && config.tie_word_embeddings));

    const read = (name: string): Float32Array => owner.get(name)!.read(name, { finite: true }).data;
    const readMatrix = (name: string): StoredTensor => (plan?.packEmbed ? owner.get(name)!.readBf16(name, { finite: true }).data : read(name));
    const embed = readMatrix('model.embed_tokens.weight');
    if (tiedHead) {
      const head = owner.get('lm_head.weight')!;
      const shape = head.info('lm_head.weight').shape;
      const data = head.read('lm_head.weight', { finite: true }).data;
      if (data.length !== embed.length || shape[0] !== config.vocab_size || !bitsEqual(data, toFloat32(embed))) {
        throw new Error(`${where}: config ties word embeddings, but lm_head.weight ${shapeStr(shape)} differs from model.embed_tokens.weight; set tie_word_embeddings false or drop lm_head.weight`);
      }
    }
    const layers: LayerWeights<StoredTensor>[] = [];
    for (let i = 0; i < config.num_hidden_layers; i++) {
      const layer: Partial<Record<LayerKey, StoredTensor>> = {};
      for (const key of layerKeys(config)) {
        const name = `model.layers.${i}.${LAYER_TENSOR_NAMES[key]}`;
        if (!plan || LAYER_TENSOR_KIND[key] !== 'linear') layer[key] = read(name);
        // Packed and untouched by an adapter: straight from the file to bf16, no float32 copy.
        else if (plan.packLayer(i) && !adapted(plan, i, key)) layer[key] = owner.get(name)!.readBf16(name, { finite: true }).data;
        else layer[key] = finishLinear(config, plan, i, key, read(name));
      }
      layers.push(layer as unknown as LayerWeights<StoredTensor>);
    }
    const norm = read('model.norm.weight');
    const lmHead = config.tie_word_embeddings ? null : readMatrix('lm_head.weight');
    return { embed, layers, norm, lmHead };
  } finally {
    for (const f of opened) f.close();
  }
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** With a shard index, its weight_map must say exactly which shard holds each tensor. */
function checkIndexAgrees(where: string, files: string[], owner: Map<string, SafetensorsFile>): void {
  if (files.length === 0) return;
  const indexPath = join(dirname(files[0]!), 'model.safetensors.index.json');
  if (basename(files[0]!) === 'model.safetensors' || !existsSync(indexPath)) return;
  const wm = (readJson(indexPath, 'shard index') as { weight_map: Record<string, string> }).weight_map;
  const problems: string[] = [];
  for (const [name, file] of Object.entries(wm)) {
    const f = owner.get(name);
    if (!f) problems.push(`${name} is listed in ${file} but no shard has it`);
    else if (basename(f.path) !== file) problems.push(`${name} is listed in ${file} but is in ${basename(f.path)}`);
  }
  for (const [name, f] of owner) if (!(name in wm)) problems.push(`${name} (in ${basename(f.path)}) is not listed in the index`);
  if (problems.length) throw new Error(`${where}: ${indexPath} disagrees with the shards: ${listSome(problems)}`);
}

// ---------------------------------------------------------------------------------------------
// Writing checkpoints

/** The weights as [HF name, tensor] in tensorManifest order (shares the float32 arrays; bf16 ones are expanded). */
export function weightsToTensors(config: LlamaConfig, w: LlamaWeights<StoredTensor>): Array<[string, Tensor]> {
  const out: Array<[string, Tensor]> = [];
  for (const [name, shape] of tensorManifest(config)) {
    let data: StoredTensor | null | undefined;
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
    if (m) {
      const layer = w.layers[Number(m[1])];
      const key = layerKeyOf(m[2]!);
      data = layer && key ? layer[key] : undefined;
    } else if (name === 'model.embed_tokens.weight') data = w.embed;
    else if (name === 'model.norm.weight') data = w.norm;
    else if (name === 'lm_head.weight') data = w.lmHead;
    if (!data) throw new Error(`weights have no ${name}`);
    if (data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`weights: ${name} has ${data.length} values, expected shape ${shapeStr(shape)}`);
    out.push([name, { shape, data: toFloat32(data) }]); // bf16-stored matrices are written as the float32 values they hold
  }
  return out;
}

export interface SaveFolderOptions {
  dtype?: FloatDtype;
  /** Split into shards of at most this many bytes (with model.safetensors.index.json); default one file. */
  maxShardBytes?: number;
  /** A tokenizer.json to copy into the folder. */
  tokenizerJsonPath?: string;
}

/** Write a Hugging Face-style model folder (config.json, safetensors, optional tokenizer.json). */
export function saveModelFolder(dir: string, config: LlamaConfig, weights: LlamaWeights<StoredTensor>, opts: SaveFolderOptions = {}): void {
  const tensors = weightsToTensors(config, weights);
  const dtype = opts.dtype ?? 'F32';
  const bytesPer = dtype === 'F32' ? 4 : 2;
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(toHfConfigJson(config), null, 2)}\n`);
  if (opts.tokenizerJsonPath) writeFileAtomic(join(dir, 'tokenizer.json'), readFileSync(opts.tokenizerJsonPath));
  if (opts.maxShardBytes === undefined) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { dtype, metadata: { format: 'pt' } });
    return;
  }
  const shards: Array<Array<[string, Tensor]>> = [[]];
  let size = 0, total = 0;
  for (const t of tensors) {
    const b = t[1].data.length * bytesPer;
    if (size > 0 && size + b > opts.maxShardBytes) { shards.push([]); size = 0; }
    shards[shards.length - 1]!.push(t);
    size += b; total += b;
  }
  const n = shards.length, pad = (i: number) => String(i).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  shards.forEach((shard, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    writeSafetensors(join(dir, file), shard, { dtype, metadata: { format: 'pt' } });
    for (const [name] of shard) weightMap[name] = file;
  });
  writeFileAtomic(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`);
}

/** Save named float32 tensors (e.g. the trainable parameters, under their HF names) as safetensors. */
export function saveTensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeSafetensors(path, tensors, metadata ? { metadata } : {});
}

/**
 * Load every tensor of a safetensors file as float32. With `expected`, the file must hold exactly
 * those names and shapes (one error lists every difference). NaN or +-Inf in a tensor is an error.
 */
export function loadTensors(path: string, expected?: Array<[string, number[]]>): Record<string, Tensor> {
  const abs = resolve(path);
  if (expected) {
    const f = SafetensorsFile.open(abs);
    try {
      const found = new Map<string, number[]>();
      for (const name of f.names()) found.set(name, f.info(name).shape);
      checkTensorSet(path, expected, found);
    } finally {
      f.close();
    }
  }
  const out: Record<string, Tensor> = {};
  for (const [name, t] of readSafetensors(abs, { finite: true }).tensors) out[name] = { shape: t.shape, data: t.data };
  return out;
}
