/**
 * Causal language-model pretraining of a Llama-architecture model on a dated corpus, with a
 * point-in-time text cutoff, ending in a Hugging Face model folder that `train --model DIR` loads.
 *
 *   corpus (dated / undated documents, cutoff applied) -> held-out split by text hash
 *   -> packed token stream (documents joined by <|endoftext|>, in a seeded order)
 *   -> each step: batch_size windows of seq_len + 1 tokens at seeded random offsets
 *   -> forward/backward through every layer, the embedding and the LM head (lm-objective.ts)
 *   -> clip, AdamW with warm-up + cosine -> held-out loss every eval_every steps
 *   -> checkpoint every checkpoint_every steps (bit-identical resume) -> the model folder.
 *
 * Output folder:
 *   config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json
 *       the model, loadable by transformers unchanged (LlamaForCausalLM, or the family of the folder
 *       that continued pretraining started from)
 *   flag_trader.json      text cutoff, corpus hash and counts, synthetic seeds read, the command,
 *                         final losses (src/model/meta.ts)
 *   train/checkpoint.safetensors, train/metrics.jsonl, train/corpus.json
 *                         the resumable state and the log (not needed to use the model)
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { getBackend } from '../kernels/index.js';
import { loadModel, saveModelFolder, writeTokenizerFiles, type LoadedModel } from '../model/load.js';
import { readSafetensors, writeSafetensors, type Tensor } from '../model/safetensors.js';
import { END_OF_TEXT, type TextTokenizer } from '../model/tokenizer.js';
import { AdamW, clipGradNorm } from '../rl/optim.js';
import { writeFileAtomic } from '../util/atomic.js';
import { MODEL_META_FORMAT, MODEL_META_VERSION, writeModelMeta } from '../model/meta.js';
import { Rng, type RngState } from '../util/rng.js';
import { buildCorpus, packDocuments, splitHeldOut, windowTargetCount, windowTargets, type CorpusDoc, type CorpusSource, type CorpusStats, type PackedStream } from './corpus.js';
import { scheduledLr, type PretrainConfig } from './config.js';
import { IGNORE_TARGET, LanguageModelTrainer } from './lm-objective.js';

export const PRETRAIN_CHECKPOINT_FORMAT = 'flag-trader/pretrain-checkpoint';

export interface PretrainOptions {
  out: string;
  config: PretrainConfig;
  sources: CorpusSource[];
  /** Keep only text dated on or before this day (undated documents are kept and counted apart). */
  textCutoff: string | null;
  /** Continue from out/train/checkpoint.safetensors (same config and corpus). */
  resume?: boolean;
  /** Stop after this step (as if killed), leaving the checkpoint: for tests of resume. */
  stopAfter?: number;
  /** The command line, recorded in the metadata. */
  command?: string;
  log?: (message: string) => void;
  onStep?: (m: StepMetrics) => void;
  onStart?: (info: { startStep: number; steps: number; trainTokens: number }) => void;
}

export interface HeldOutLoss {
  /** Source group (the part of a document's source before ':', e.g. investorbench, synthetic). */
  group: string;
  /** Target tokens evaluated (for transcripts: the answers' tokens). */
  tokens: number;
  bytes: number;
  nats_per_token: number;
  nats_per_byte: number;
}

export interface StepMetrics {
  step: number;
  lr: number;
  loss: number;
  grad_norm: number;
  /** Target tokens of the step (every token read, unless documents have context-only parts). */
  tokens: number;
  /** Tokens READ per second (context included): the compute rate. */
  tokens_per_sec: number;
  heldout?: HeldOutLoss[];
}

export interface PretrainResult {
  out: string;
  steps: number;
  final: StepMetrics;
  corpus: CorpusStats & { hash: string; cutoff: string | null };
  /** The trained model in memory (the same weights as the folder). */
  model: LoadedModel;
}

interface TrainerState {
  step: number;
  rng: { s: RngState; spare: number | null };
  metrics: string[];
  configJson: string;
  corpusHash: string;
}

/** Documents grouped by the kind of their source, for held-out losses per kind. */
function groupOf(d: CorpusDoc): string {
  return d.source.split(':')[0]!;
}

export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const c = o.config;
  const log = o.log ?? (() => {});
  const trainDir = join(o.out, 'train');
  const ckptPath = join(trainDir, 'checkpoint.safetensors');
  if (o.resume && !existsSync(ckptPath)) throw new Error(`--resume: ${ckptPath} does not exist (nothing to resume)`);
  if (!o.resume && existsSync(ckptPath)) throw new Error(`${o.out} already holds a pretraining run (${ckptPath}); pass --resume to continue it or choose another --out`);

  // ---- model (first: transcripts are written in its chat template) ----
  const loaded = await loadModel(c.model, { seed: c.model_seed });
  if (loaded.config.max_position_embeddings < c.seq_len) throw new Error(`seq_len ${c.seq_len} exceeds the model's max_position_embeddings ${loaded.config.max_position_embeddings}`);

  // ---- corpus ----
  const corpus = await buildCorpus(o.sources, o.textCutoff, { chat: loaded.tokenizer });
  const { train, heldOut } = splitHeldOut(corpus.docs, c.heldout_fraction);
  if (train.length === 0) throw new Error('every document fell into the held-out split: lower --heldout-fraction or add text');
  log(`corpus: ${corpus.stats.documents} documents (${corpus.stats.dated} dated ${corpus.stats.firstDate ?? ''}..${corpus.stats.lastDate ?? ''}, ${corpus.stats.undated} undated; ${corpus.stats.droppedAfterCutoff} dropped after the cutoff ${o.textCutoff ?? '(none)'}), ${train.length} train / ${heldOut.length} held out`);
  const backend = getBackend();
  if (c.threads > 0) backend.setThreads(c.threads);
  const tok = loaded.tokenizer;
  const sep = tok.tokenId(END_OF_TEXT) ?? tok.eosId;
  const encode = (s: string) => tok.encode(s);
  const stream = packDocuments(train, encode, sep, c.seed);
  const N = stream.ids.length;
  // A window starts anywhere, so an answer near a window's start sees only the end of its prompt; one
  // whose prompt is at least a window long never sees all of it.
  if (stream.longestContext >= c.seq_len) throw new Error(`a document's context-only part (a transcript's prompt) is ${stream.longestContext} tokens, not shorter than seq_len ${c.seq_len}: no window would hold a whole prompt with its answer; raise --seq-len`);
  if (N < c.seq_len + 1) throw new Error(`the training text is ${N} tokens, fewer than one sequence of seq_len + 1 = ${c.seq_len + 1}: add text or lower --seq-len`);
  const heldStreams = new Map<string, PackedStream>();
  for (const g of [...new Set(heldOut.map(groupOf))].sort()) {
    const s = packDocuments(heldOut.filter((d) => groupOf(d) === g), encode, sep, null);
    const end = Math.min(s.ids.length, c.eval_tokens + 1);
    if (end >= 2) heldStreams.set(g, { ids: s.ids.subarray(0, end), target: s.target?.subarray(0, end) ?? null, longestContext: s.longestContext });
  }
  log(`model ${c.model}: ${loaded.config.num_hidden_layers} layers, hidden ${loaded.config.hidden_size}, vocab ${loaded.config.vocab_size}; ${N} training tokens${stream.target ? ` (${countTargets(stream.target)} of them targets: context-only text is read, not predicted)` : ''}`);

  const trainer = new LanguageModelTrainer(loaded.config, loaded.weights, backend);
  const params = trainer.params();
  const opt = new AdamW(params, { lr: c.learning_rate, beta1: c.adam_beta1, beta2: c.adam_beta2, eps: c.adam_eps, weightDecay: c.weight_decay });
  const rng = new Rng(c.seed ^ 0x5eed);
  const configJson = JSON.stringify(c);
  let step = 0;
  let metrics: string[] = [];

  if (o.resume) {
    const { tensors, metadata } = readSafetensors(ckptPath);
    if (metadata.format !== PRETRAIN_CHECKPOINT_FORMAT) throw new Error(`${ckptPath}: not a pretraining checkpoint (format ${JSON.stringify(metadata.format)})`);
    const st = JSON.parse(metadata.state ?? 'null') as TrainerState | null;
    if (!st) throw new Error(`${ckptPath}: no trainer state in the metadata`);
    if (st.configJson !== configJson) throw new Error(`${ckptPath}: the checkpoint was made with another config (${st.configJson}); resume with the same settings`);
    if (st.corpusHash !== corpus.hash) throw new Error(`${ckptPath}: the corpus differs from the checkpoint's (hash ${st.corpusHash.slice(0, 12)} vs ${corpus.hash.slice(0, 12)}): resume with the same sources and cutoff`);
    const m: Record<string, Float32Array> = {}, v: Record<string, Float32Array> = {};
    for (const p of params) {
      const t = tensors.get(p.name), tm = tensors.get(`optimizer.m.${p.name}`), tv = tensors.get(`optimizer.v.${p.name}`);
      if (!t || !tm || !tv || t.data.length !== p.data.length) throw new Error(`${ckptPath}: tensor ${p.name} (or its optimizer state) is missing or has the wrong size`);
      p.data.set(t.data);
      m[p.name] = tm.data; v[p.name] = tv.data;
    }
    opt.setState({ step: st.step, m, v });
    rng.setState(st.rng);
    step = st.step;
    metrics = st.metrics;
    log(`resumed at step ${step}`);
  }

  const saveCheckpoint = (): void => {
    const tensors: Array<[string, Tensor]> = [];
    const state = opt.getState();
    for (const p of params) tensors.push([p.name, { shape: p.shape, data: p.data }]);
    for (const p of params) tensors.push([`optimizer.m.${p.name}`, { shape: p.shape, data: state.m[p.name]! }], [`optimizer.v.${p.name}`, { shape: p.shape, data: state.v[p.name]! }]);
    const st: TrainerState = { step, rng: rng.getState(), metrics, configJson, corpusHash: corpus.hash };
    mkdirSync(trainDir, { recursive: true });
    writeSafetensors(ckptPath, tensors, { metadata: { format: PRETRAIN_CHECKPOINT_FORMAT, version: '1', state: JSON.stringify(st) } });
    writeFileAtomic(join(trainDir, 'metrics.jsonl'), metrics.map((l) => `${l}\n`).join(''));
  };

  const evaluate = (): HeldOutLoss[] => {
    const out: HeldOutLoss[] = [];
    for (const [group, s] of heldStreams) {
      let nats = 0, tokens = 0, bytes = 0;
      for (let a = 0; a + 1 < s.ids.length; a += c.seq_len) {
        const b = Math.min(a + c.seq_len, s.ids.length - 1);
        if (windowTargetCount(s, a, b) === 0) continue;
        const targets = windowTargets(s, a, b, IGNORE_TARGET);
        const r = trainer.loss(s.ids.subarray(a, b), targets);
        nats += r.lossSum; tokens += r.count;
        bytes += targetBytes(tok, targets, sep);
      }
      if (tokens === 0) continue; // eval_tokens shorter than one document's context: nothing to report
      out.push({ group, tokens, bytes, nats_per_token: nats / tokens, nats_per_byte: bytes > 0 ? nats / bytes : NaN });
    }
    return out;
  };

  o.onStart?.({ startStep: step, steps: c.steps, trainTokens: N });
  const L = c.seq_len;
  let last: StepMetrics | undefined = metrics.length ? JSON.parse(metrics[metrics.length - 1]!) as StepMetrics : undefined;
  const stopAt = Math.min(c.steps, o.stopAfter ?? c.steps);
  while (step < stopAt) {
    const t0 = performance.now();
    step++;
    opt.lr = scheduledLr(c, step);
    trainer.zeroGrads();
    let lossSum = 0, count = 0;
    // The batch's windows first: the gradient is the mean over the batch's targets.
    const offsets = Array.from({ length: c.batch_size }, () => rng.int(N - L));
    const counts = offsets.map((off) => windowTargetCount(stream, off, off + L));
    const batchTargets = counts.reduce((a, b) => a + b, 0);
    for (const [i, off] of offsets.entries()) {
      if (counts[i] === 0) continue; // context only: nothing to learn
      const r = trainer.step(stream.ids.subarray(off, off + L), windowTargets(stream, off, off + L, IGNORE_TARGET), batchTargets);
      lossSum += r.lossSum; count += r.count;
    }
    const gradNorm = clipGradNorm(params, c.max_grad_norm);
    if (count > 0) opt.step();
    const seconds = (performance.now() - t0) / 1000;
    // tokens_per_sec counts every token read (context included): the compute rate.
    const m: StepMetrics = { step, lr: opt.lr, loss: count > 0 ? lossSum / count : NaN, grad_norm: gradNorm, tokens: count, tokens_per_sec: (c.batch_size * L) / seconds };
    if (step % c.eval_every === 0 || step === c.steps) m.heldout = evaluate();
    // Wall-clock figures are left out of the checkpointed log so that a resumed run's log is bit-identical.
    metrics.push(JSON.stringify({ ...m, tokens_per_sec: undefined }));
    last = m;
    o.onStep?.(m);
    if (step % c.checkpoint_every === 0 || step === c.steps || step === stopAt) saveCheckpoint();
  }
  if (!last) throw new Error('pretraining ran no step');
  const corpusInfo = { ...corpus.stats, hash: corpus.hash, cutoff: corpus.cutoff };
  if (step < c.steps) return { out: o.out, steps: step, final: last, corpus: corpusInfo, model: loaded };

  // ---- the model folder ----
  saveModelFolder(o.out, loaded.config, loaded.weights);
  writeTokenizerFiles(o.out, loaded);
  writeFileAtomic(join(o.out, 'generation_config.json'), `${JSON.stringify({
    bos_token_id: loaded.config.bos_token_id, eos_token_id: loaded.config.eos_token_ids ?? loaded.config.eos_token_id, pad_token_id: loaded.config.pad_token_id,
  }, null, 2)}\n`);
  // Every synthetic market the model read (headlines or transcripts, its base's included): the guard
  // refuses to evaluate on them.
  const base = loaded.meta;
  const baseSeeds = Array.isArray(base?.synthetic_seeds) ? (base.synthetic_seeds as number[]) : [];
  const syntheticSeeds = [...new Set([...baseSeeds, ...o.sources.flatMap((s) => (s.kind === 'synthetic' || s.kind === 'transcripts' ? [s.seed] : []))])];
  writeFileAtomic(join(trainDir, 'corpus.json'), `${JSON.stringify({ sources: o.sources, ...corpusInfo }, null, 2)}\n`);
  writeModelMeta(o.out, {
    format: MODEL_META_FORMAT,
    version: MODEL_META_VERSION,
    text_cutoff: continuedCutoff(o.textCutoff, corpus.stats.dated, loaded, log),
    synthetic_seeds: syntheticSeeds,
    ...(base && { base_model_meta: { text_cutoff: base.text_cutoff, corpus_hash: (base.corpus as { hash?: string } | undefined)?.hash ?? null, synthetic_seeds: baseSeeds } }),
    corpus: { hash: corpus.hash, sources: o.sources.map(describeSource), ...corpus.stats },
    base_model: c.model,
    config: c,
    command: o.command ?? null,
    final: { step: last.step, train_loss: last.loss, heldout: last.heldout ?? [] },
  });
  return { out: o.out, steps: step, final: last, corpus: corpusInfo, model: loaded };
}

/**
 * The text cutoff of a model made by continuing `loaded` on a corpus with `dated` dated documents: it
 * has read its base's text too. This run's part is its cutoff, or, without one, nothing dated when the
 * corpus has no dated document (e.g. transcripts only), else unknown. The result is the later of the
 * base's and this run's, and null (not known: the guard cannot check) when either is unknown. A base
 * without our metadata (a Hub or other folder) has an unknown history: null, said in a warning.
 */
export function continuedCutoff(cutoff: string | null, dated: number, loaded: Pick<LoadedModel, 'source' | 'meta' | 'spec'>, log: (m: string) => void = () => {}): string | null {
  if (loaded.source === 'random') return cutoff;
  if (!loaded.meta) {
    log(`warning: base model ${loaded.spec} records no text cutoff (no flag_trader.json): its pretraining text is unknown, so the new model records text_cutoff null and the point-in-time guard cannot check it`);
    return null;
  }
  const b = loaded.meta.text_cutoff;
  if (b === null) return null;
  if (cutoff === null) return dated === 0 ? b : null;
  return b > cutoff ? b : cutoff;
}

function countTargets(target: Uint8Array): number {
  let n = 0;
  for (const x of target) n += x;
  return n;
}

/** UTF-8 bytes the target tokens stand for (separators and ignored positions count 0). */
function targetBytes(tok: TextTokenizer, targets: Int32Array, sep: number): number {
  if (tok.kind === 'bytes') {
    let n = 0;
    for (const id of targets) if (id >= 3) n++;
    return n;
  }
  const ids = Array.from(targets).filter((id) => id !== sep && id !== IGNORE_TARGET);
  return ids.length ? Buffer.byteLength(tok.decode(ids), 'utf8') : 0;
}

function describeSource(s: CorpusSource): string {
  switch (s.kind) {
    case 'investorbench': return `investorbench ${s.path.split('/').pop()}`;
    case 'synthetic': return `synthetic seed ${s.seed} (${s.days} days${s.newsTags ? '' : ', no tags'})`;
    case 'transcripts': return `transcripts of synthetic seed ${s.seed} (${s.days} days, news accuracy ${s.newsAccuracy}${s.newsTags ? '' : ', no tags'}; ${s.promptStyle} prompt; answer = ${s.label === 'regime' ? 'the regime\'s position' : `${s.horizon}-day trend, hold within ${s.holdBand}`})`;
    case 'text': return `text ${s.path.split('/').pop()}${s.date ? `@${s.date}` : ''}`;
    case 'jsonl': return `jsonl ${s.path.split('/').pop()}`;
  }
}

/** tokenizer.json (+ tokenizer_config.json) of the model: the byte tokenizer's, or a copy of the source's. */
