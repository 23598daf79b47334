/**
 * The pretraining corpus: documents of text, each DATED (the day the text was written) or declared
 * UNDATED, from four kinds of source:
 *   - INVESTOR-BENCH files: every news item and 10-K / 10-Q summary, dated by its day;
 *   - the built-in synthetic market's generated headlines, for chosen market seeds (the seeds a
 *     model has read are recorded, so that it is never evaluated on one of them); undated, since their
 *     calendar is made up;
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

export interface CorpusDoc {
  text: string;
  /** YYYY-MM-DD, or null for a document declared undated. */
  date: string | null;
  /** Which source it came from: `investorbench:msft.json`, `synthetic:1001`, `text:notes.txt`, ... */
  source: string;
}

export type CorpusSource =
  | { kind: 'investorbench'; path: string }
  | { kind: 'synthetic'; seed: number; days: number; newsTags: boolean }
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

/** The documents of one source, in a fixed order. */
export async function readSource(src: CorpusSource): Promise<CorpusDoc[]> {
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
export async function buildCorpus(sources: CorpusSource[], cutoff: string | null): Promise<Corpus> {
  if (sources.length === 0) throw new Error('the corpus has no source: give at least one of --investorbench, --synthetic-seeds, --text, --jsonl');
  if (cutoff !== null) checkDate(cutoff, '--text-cutoff');
  const docs: CorpusDoc[] = [];
  let dropped = 0;
  for (const src of sources) {
    for (const d of await readSource(src)) {
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

/** Token stream of documents (each followed by the separator id), in a seeded shuffled order. */
export function packDocuments(docs: CorpusDoc[], encode: (s: string) => number[], separator: number, seed: number | null): Int32Array {
  const order = docs.map((_, i) => i);
  if (seed !== null) {
    const rng = new Rng(seed);
    for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j]!, order[i]!]; }
  }
  const parts: number[][] = [];
  let n = 0;
  for (const i of order) {
    const ids = encode(docs[i]!.text);
    parts.push(ids);
    n += ids.length + 1;
  }
  const out = new Int32Array(n);
  let k = 0;
  for (const ids of parts) { out.set(ids, k); k += ids.length; out[k++] = separator; }
  return out;
}
