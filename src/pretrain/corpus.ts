/**
 * The pretraining corpus: documents of text, each DATED (the day the text was written) or declared
 * UNDATED, from four kinds of source:
 *   - INVESTOR-BENCH files: every news item and 10-K / 10-Q summary, dated by its day;
 *   - the built-in synthetic market's generated headlines, for chosen market seeds (the seeds a
 *     model has read are recorded, so that it is never evaluated on one of them); undated, since their
 *     calendar is made up;
 *   - trading transcripts of such markets (transcripts.ts): each day's prompt, in the chat format the
 *     policy reads, with the answer that hindsight shows was right; undated, like their markets;
 *   - plain text files: one undated document per blank-line-separated paragraph, or dated with
 *     FILE@YYYY-MM-DD;
 *   - JSONL files: one document per line, {"text": "...", "date": "YYYY-MM-DD" | null}; the date key
 *     must be there (null declares the line undated), so that nothing is guessed.
 *
 * Point-in-time: with a text cutoff, dated documents after it are dropped (undated ones are kept and
 * counted apart). The corpus hash covers every kept document in order, so a model's metadata names
 * exactly what it read.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadSeries } from '../data/load.js';
import { generateSyntheticMarket } from '../data/synthetic.js';
import { Rng } from '../util/rng.js';
import { isIsoDate } from '../data/dates.js';
import type { ChatRenderer } from '../model/chat-template.js';
import type { PromptStyle } from '../prompt/render.js';
import { marketTranscripts, regimeLabel, trendLabel } from './transcripts.js';
import { defaultConfig } from '../rl/config.js';

const TRAINING = defaultConfig();

export interface CorpusDoc {
  text: string;
  /** YYYY-MM-DD, or null for a document declared undated. */
  date: string | null;
  /** Which source it came from: `investorbench:msft.json`, `synthetic:1001`, `text:notes.txt`, ... */
  source: string;
  /**
   * Characters at the start of `text` that are context only: their tokens are read but never
   * predicted (a transcript's prompt; only its answer is a target, as in supervised fine-tuning).
   * Absent: every token is a target.
   */
  contextChars?: number;
}

export type CorpusSource =
  | { kind: 'investorbench'; path: string }
  | { kind: 'synthetic'; seed: number; days: number; newsTags: boolean }
  | {
    kind: 'transcripts'; seed: number; days: number; newsTags: boolean; newsAccuracy: number;
    /** regime: the synthetic regime's position; trend: the sign of the horizon's return outside the hold band. */
    label: 'regime' | 'trend'; horizon: number; holdBand: number; promptStyle: PromptStyle;
  }
  | { kind: 'text'; path: string; date: string | null }
  | { kind: 'jsonl'; path: string };


function checkDate(d: string, where: string): string {
  if (!isIsoDate(d)) throw new Error(`${where}: date ${JSON.stringify(d)} is not YYYY-MM-DD`);
  return d;
}

/** Parse a `--text FILE[@YYYY-MM-DD]` argument. */
export function parseTextSource(arg: string): CorpusSource {
  const m = /^(.*)@(\d{4}-\d{2}-\d{2})$/.exec(arg);
  return m ? { kind: 'text', path: m[1]!, date: checkDate(m[2]!, `--text ${arg}`) } : { kind: 'text', path: arg, date: null };
}

/** What reading some sources needs besides the source itself. */
export interface ReadContext {
  /** The chat template of the model being trained (transcripts are written in it). */
  chat?: ChatRenderer;
}


/** The documents of one source, in a fixed order. */
export async function readSource(src: CorpusSource, ctx: ReadContext = {}): Promise<CorpusDoc[]> {
  switch (src.kind) {
    case 'investorbench': {
      const series = await loadSeries({ path: src.path, format: 'investorbench' });
      const name = `investorbench:${src.path.split('/').pop()}`;
      const docs: CorpusDoc[] = [];
      series.dates.forEach((date, t) => {
        for (const item of series.text?.[t] ?? []) docs.push({ text: item.text, date, source: name });
      });
      return docs;
    }
    case 'synthetic': {
      const { series } = generateSyntheticMarket({ seed: src.seed, days: src.days, newsTags: src.newsTags });
      const docs: CorpusDoc[] = [];
      for (const items of series.text ?? []) for (const item of items) docs.push({ text: item.text, date: null, source: `synthetic:${src.seed}` });
      return docs;
    }
    case 'transcripts': {
      if (!ctx.chat) throw new Error(`transcripts of synthetic seed ${src.seed} need the model's chat template (read them through pretrain)`);
      const { series, regimes } = generateSyntheticMarket({ seed: src.seed, days: src.days, newsTags: src.newsTags, newsAccuracy: src.newsAccuracy });
      const source = `transcripts:${src.seed}${src.newsTags ? '' : ':words'}`;
      const labelOf = src.label === 'regime' ? (t: number) => regimeLabel(regimes, t) : (t: number) => trendLabel(series.prices, t, src.horizon, src.holdBand);
      return marketTranscripts(series, ctx.chat, {
        // The prompt's history and the episode length the policy trains with by default.
        labelOf, lookback: TRAINING.lookback, episodeSteps: TRAINING.max_episode_steps, seed: src.seed, prompt: { style: src.promptStyle },
      }).map((d) => ({ text: d.text, date: null, source, contextChars: d.text.length - d.answerChars }));
    }
    case 'text': {
      const raw = readText(src.path);
      const name = `text:${src.path.split('/').pop()}`;
      return raw.split(/\r?\n\s*\r?\n/).map((p) => p.trim()).filter((p) => p !== '').map((text) => ({ text, date: src.date, source: name }));
    }
    case 'jsonl': {
      const raw = readText(src.path);
      const name = `jsonl:${src.path.split('/').pop()}`;
      const docs: CorpusDoc[] = [];
      raw.split(/\r?\n/).forEach((line, i) => {
        if (line.trim() === '') return;
        const where = `${src.path} line ${i + 1}`;
        let v: unknown;
        try { v = JSON.parse(line); } catch (e) { throw new Error(`${where}: not JSON (${(e as Error).message})`); }
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${where}: expected an object {"text": ..., "date": ...}`);
        const o = v as Record<string, unknown>;
        if (typeof o.text !== 'string' || o.text.trim() === '') throw new Error(`${where}: "text" must be a non-empty string`);
        if (!('date' in o)) throw new Error(`${where}: no "date" field; give "date": "YYYY-MM-DD", or "date": null to declare the text undated`);
        if (o.date !== null && typeof o.date !== 'string') throw new Error(`${where}: "date" must be "YYYY-MM-DD" or null`);
        docs.push({ text: o.text, date: o.date === null ? null : checkDate(o.date, where), source: name });
      });
      return docs;
    }
  }
}

function readText(path: string): string {
  try { return readFileSync(path, 'utf8'); } catch (e) { throw new Error(`cannot read corpus file ${path}: ${(e as Error).message}`); }
}

export interface CorpusStats {
  documents: number;
  dated: number;
  undated: number;
  /** Dated documents dropped by the cutoff. */
  droppedAfterCutoff: number;
  characters: number;
  firstDate: string | null;
  lastDate: string | null;
  bySource: Record<string, number>;
}

export interface Corpus {
  docs: CorpusDoc[];
  cutoff: string | null;
  /** sha256 over the kept documents (date, source, text) in order. */
  hash: string;
  stats: CorpusStats;
}

/** Read every source, keep what the cutoff allows, hash and count it. */
export async function buildCorpus(sources: CorpusSource[], cutoff: string | null, ctx: ReadContext = {}): Promise<Corpus> {
  if (sources.length === 0) throw new Error('the corpus has no source: give at least one of --investorbench, --synthetic-seeds, --transcript-seeds, --text, --jsonl');
  if (cutoff !== null) checkDate(cutoff, '--text-cutoff');
  const docs: CorpusDoc[] = [];
  let dropped = 0;
  for (const src of sources) {
    for (const d of await readSource(src, ctx)) {
      if (cutoff !== null && d.date !== null && d.date > cutoff) { dropped++; continue; }
      docs.push(d);
    }
  }
  if (docs.length === 0) throw new Error(`the corpus is empty after the text cutoff ${cutoff ?? '(none)'}: every dated document is later`);
  const h = createHash('sha256');
  const bySource: Record<string, number> = {};
  let dated = 0, chars = 0;
  let first: string | null = null, last: string | null = null;
  for (const d of docs) {
    h.update(`${d.date ?? '-'}\t${d.source}\t${d.text}\n`);
    bySource[d.source] = (bySource[d.source] ?? 0) + 1;
    chars += d.text.length;
    if (d.date !== null) {
      dated++;
      if (first === null || d.date < first) first = d.date;
      if (last === null || d.date > last) last = d.date;
    }
  }
  return {
    docs, cutoff, hash: h.digest('hex'),
    stats: { documents: docs.length, dated, undated: docs.length - dated, droppedAfterCutoff: dropped, characters: chars, firstDate: first, lastDate: last, bySource },
  };
}

/**
 * Split into training and held-out documents by a hash of the TEXT (not the position), so that a text
 * repeated in the corpus always lands on the same side and the held-out loss is on unseen text.
 */
export function splitHeldOut(docs: CorpusDoc[], fraction: number): { train: CorpusDoc[]; heldOut: CorpusDoc[] } {
  if (!(fraction >= 0 && fraction < 1)) throw new Error(`held-out fraction must be in [0, 1), got ${fraction}`);
  const train: CorpusDoc[] = [], heldOut: CorpusDoc[] = [];
  for (const d of docs) {
    const u = createHash('sha256').update(d.text).digest().readUInt32BE(0) / 2 ** 32;
    (u < fraction ? heldOut : train).push(d);
  }
  return { train, heldOut };
}

/**
 * A packed token stream. `target[p]` says whether token p is predicted (from the tokens before it);
 * null when every token is (no document has context-only characters).
 */
export interface PackedStream {
  ids: Int32Array;
  target: Uint8Array | null;
  /** Tokens of the longest context-only part (0 when none). */
  longestContext: number;
}

/** Token stream of documents (each followed by the separator id), in a seeded shuffled order. */
export function packDocuments(docs: CorpusDoc[], encode: (s: string) => number[], separator: number, seed: number | null): PackedStream {
  const order = docs.map((_, i) => i);
  if (seed !== null) {
    const rng = new Rng(seed);
    for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j]!, order[i]!]; }
  }
  const parts: Array<{ ids: number[]; context: number }> = [];
  let n = 0, masked = false, longestContext = 0;
  for (const i of order) {
    const d = docs[i]!;
    const ids = encode(d.text);
    const context = d.contextChars === undefined ? 0 : contextTokens(d, ids, encode);
    if (context > 0) masked = true;
    if (context > longestContext) longestContext = context;
    parts.push({ ids, context });
    n += ids.length + 1;
  }
  const out = new Int32Array(n);
  const target = masked ? new Uint8Array(n).fill(1) : null;
  let k = 0;
  for (const { ids, context } of parts) {
    out.set(ids, k);
    if (target) target.fill(0, k, k + context);
    k += ids.length;
    out[k++] = separator;
  }
  return { ids: out, target, longestContext };
}

/** Tokens of a document's context part: its encoding must be where the whole text's encoding starts. */
function contextTokens(d: CorpusDoc, ids: number[], encode: (s: string) => number[]): number {
  const head = encode(d.text.slice(0, d.contextChars));
  if (head.length >= ids.length || head.some((id, i) => ids[i] !== id)) {
    throw new Error(`${d.source}: the document's context (${d.contextChars} characters) does not end at a token boundary of its text, or leaves nothing to predict: ${JSON.stringify(d.text.slice(Math.max(0, d.contextChars! - 40), d.contextChars! + 20))}`);
  }
  return head.length;
}

/** The targets of the window ids[a..b): ids[a+1..b+1], IGNORE_TARGET where the stream predicts nothing. */
export function windowTargets(s: PackedStream, a: number, b: number, ignore: number): Int32Array {
  const t = s.ids.slice(a + 1, b + 1);
  if (s.target) for (let i = 0; i < t.length; i++) if (s.target[a + 1 + i] === 0) t[i] = ignore;
  return t;
}

/** How many targets the window ids[a..b) has. */
export function windowTargetCount(s: PackedStream, a: number, b: number): number {
  if (!s.target) return b - a;
  let n = 0;
  for (let p = a + 1; p <= b; p++) n += s.target[p]!;
  return n;
}
