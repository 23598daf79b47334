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
import { buildCorpus, packDocuments, splitHeldOut, type CorpusDoc, type CorpusSource, type CorpusStats } from './corpus.js';
import { scheduledLr, type PretrainConfig } from './config.js';
import { LanguageModelTrainer } from './lm-objective.js';

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
  tokens: number;
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

  // ---- corpus ----
  const corpus = await buildCorpus(o.sources, o.textCutoff);
  const { train, heldOut } = splitHeldOut(corpus.docs, c.heldout_fraction);
  if (train.length === 0) throw new Error('every document fell into the held-out split: lower --heldout-fraction or add text');
  log(`corpus: ${corpus.stats.documents} documents (${corpus.stats.dated} dated ${corpus.stats.firstDate ?? ''}..${corpus.stats.lastDate ?? ''}, ${corpus.stats.undated} undated; ${corpus.stats.droppedAfterCutoff} dropped after the cutoff ${o.textCutoff ?? '(none)'}), ${train.length} train / ${heldOut.length} held out`);

  // ---- model ----
  const loaded = await loadModel(c.model, { seed: c.model_seed });
  if (loaded.config.max_position_embeddings < c.seq_len) throw new Error(`seq_len ${c.seq_len} exceeds the model's max_position_embeddings ${loaded.config.max_position_embeddings}`);
  const backend = getBackend();
  if (c.threads > 0) backend.setThreads(c.threads);
  const tok = loaded.tokenizer;
  const sep = tok.tokenId(END_OF_TEXT) ?? tok.eosId;
  const encode = (s: string) => tok.encode(s);
  const stream = packDocuments(train, encode, sep, c.seed);
  if (stream.length < c.seq_len + 1) throw new Error(`the training text is ${stream.length} tokens, fewer than one sequence of seq_len + 1 = ${c.seq_len + 1}: add text or lower --seq-len`);
  const heldStreams = new Map<string, Int32Array>();
  for (const g of [...new Set(heldOut.map(groupOf))].sort()) {
    const s = packDocuments(heldOut.filter((d) => groupOf(d) === g), encode, sep, null);
    if (s.length >= 2) heldStreams.set(g, s.subarray(0, Math.min(s.length, c.eval_tokens + 1)));
  }
  log(`model ${c.model}: ${loaded.config.num_hidden_layers} layers, hidden ${loaded.config.hidden_size}, vocab ${loaded.config.vocab_size}; ${stream.length} training tokens`);

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
      for (let a = 0; a + 1 < s.length; a += c.seq_len) {
        const b = Math.min(a + c.seq_len, s.length - 1);
        const r = trainer.loss(s.subarray(a, b), s.subarray(a + 1, b + 1));
        nats += r.lossSum; tokens += r.count;
        bytes += targetBytes(tok, s.subarray(a + 1, b + 1), sep);
      }
      out.push({ group, tokens, bytes, nats_per_token: nats / tokens, nats_per_byte: bytes > 0 ? nats / bytes : NaN });
    }
    return out;
  };

  o.onStart?.({ startStep: step, steps: c.steps, trainTokens: stream.length });
  const L = c.seq_len;
  let last: StepMetrics | undefined = metrics.length ? JSON.parse(metrics[metrics.length - 1]!) as StepMetrics : undefined;
  const stopAt = Math.min(c.steps, o.stopAfter ?? c.steps);
  while (step < stopAt) {
    const t0 = performance.now();
    step++;
    opt.lr = scheduledLr(c, step);
    trainer.zeroGrads();
    let lossSum = 0, count = 0;
    for (let b = 0; b < c.batch_size; b++) {
      const off = rng.int(stream.length - L);
      const r = trainer.step(stream.subarray(off, off + L), stream.subarray(off + 1, off + L + 1), c.batch_size * L);
      lossSum += r.lossSum; count += r.count;
    }
    const gradNorm = clipGradNorm(params, c.max_grad_norm);
    opt.step();
    const seconds = (performance.now() - t0) / 1000;
    const m: StepMetrics = { step, lr: opt.lr, loss: lossSum / count, grad_norm: gradNorm, tokens: count, tokens_per_sec: count / seconds };
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
  const syntheticSeeds = o.sources.filter((s): s is Extract<CorpusSource, { kind: 'synthetic' }> => s.kind === 'synthetic').map((s) => s.seed);
  writeFileAtomic(join(trainDir, 'corpus.json'), `${JSON.stringify({ sources: o.sources, ...corpusInfo }, null, 2)}\n`);
  writeModelMeta(o.out, {
    format: MODEL_META_FORMAT,
    version: MODEL_META_VERSION,
    text_cutoff: o.textCutoff,
    synthetic_seeds: syntheticSeeds,
    corpus: { hash: corpus.hash, sources: o.sources.map(describeSource), ...corpus.stats },
    base_model: c.model,
    config: c,
    command: o.command ?? null,
    final: { step: last.step, train_loss: last.loss, heldout: last.heldout ?? [] },
  });
  return { out: o.out, steps: step, final: last, corpus: corpusInfo, model: loaded };
}

/** UTF-8 bytes the target tokens stand for (separators count 0). */
function targetBytes(tok: TextTokenizer, targets: Int32Array, sep: number): number {
  if (tok.kind === 'bytes') {
    let n = 0;
    for (const id of targets) if (id >= 3) n++;
    return n;
  }
  const ids = Array.from(targets).filter((id) => id !== sep);
  return ids.length ? Buffer.byteLength(tok.decode(ids), 'utf8') : 0;
}

function describeSource(s: CorpusSource): string {
  switch (s.kind) {
    case 'investorbench': return `investorbench ${s.path.split('/').pop()}`;
    case 'synthetic': return `synthetic seed ${s.seed} (${s.days} days${s.newsTags ? '' : ', no tags'})`;
    case 'text': return `text ${s.path.split('/').pop()}${s.date ? `@${s.date}` : ''}`;
    case 'jsonl': return `jsonl ${s.path.split('/').pop()}`;
  }
}

/** tokenizer.json (+ tokenizer_config.json) of the model: the byte tokenizer's, or a copy of the source's. */
