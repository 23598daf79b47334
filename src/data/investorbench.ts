/**
 * INVESTOR-BENCH JSON: `{ "YYYY-MM-DD": { "prices": number, "news": [..], "10k": [..], "10q": [..] } }`.
 * Each date becomes one price and its text items (news first, then 10-K, then 10-Q summaries, each in
 * file order). Keys may come in any order and are sorted; `news`, `10k`, `10q` may be missing (no items)
 * but, when present, must be lists of strings; any other field is an error, so that nothing in the
 * file is silently ignored. A date with a bad price fails, or with `dropInvalidRows` is dropped with a
 * warning. (JSON.parse keeps the last of repeated keys, so duplicate dates cannot be seen here.)
 */
import { z } from 'zod';
import type { MarketSeries, TextItem } from './series.js';
import { DataError, describeWhere, quote } from './errors.js';
import { isIsoDate } from './dates.js';
import { checkJsonNumber } from './values.js';
import { readWholeText, assetFromPath } from './file-source.js';
import { jsonTypeName } from '../util/read-json.js';

export interface InvestorBenchLoadOptions {
  dropInvalidRows?: boolean;
  asset?: string;
}

const DayEntry = z.strictObject({
  prices: z.unknown().optional(), // checked (present, a positive number) by checkJsonNumber, for a clearer message
  news: z.array(z.string()).optional(),
  '10k': z.array(z.string()).optional(),
  '10q': z.array(z.string()).optional(),
});

const TEXT_KINDS = ['news', '10k', '10q'] as const;

export async function loadInvestorBench(path: string, opts: InvestorBenchLoadOptions = {}): Promise<MarketSeries> {
  const text = await readWholeText(path);
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new DataError({ file: path }, `not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new DataError({ file: path }, `expected a JSON object keyed by date ("YYYY-MM-DD": { "prices": ... }), found ${jsonTypeName(root)}`);
  }
  const keys = Object.keys(root);
  for (const k of keys) {
    if (!isIsoDate(k)) throw new DataError({ file: path }, `key ${quote(k)} is not a date; expected YYYY-MM-DD keys`);
  }
  keys.sort();

  const dates: string[] = [];
  const prices: number[] = [];
  const items: TextItem[][] = [];
  const warnings: string[] = [];
  for (const date of keys) {
    const parsed = DayEntry.safeParse((root as Record<string, unknown>)[date]);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.length > 0 ? `field ${issue.path.map(String).join('.')}: ` : '';
      throw new DataError({ file: path, date }, `${field}${issue.message} (expected { "prices": number, "news"?: [string], "10k"?: [string], "10q"?: [string] })`);
    }
    const entry = parsed.data;
    const price = checkJsonNumber(entry.prices, 'prices', 'price');
    if (!price.ok) {
      if (!opts.dropInvalidRows) throw new DataError({ file: path, date }, price.problem);
      warnings.push(`${describeWhere({ file: path, date })}date dropped (dropInvalidRows): ${price.problem}`);
      continue;
    }
    dates.push(date);
    prices.push(price.value);
    items.push(TEXT_KINDS.flatMap((kind) => (entry[kind] ?? []).map((t) => ({ kind, text: t }))));
  }
  if (dates.length === 0) {
    throw new DataError({ file: path }, keys.length === 0 ? 'empty series: the file holds no dates' : `empty series: all ${keys.length} dates were dropped as invalid`);
  }
  const series: MarketSeries = {
    asset: opts.asset ?? assetFromPath(path),
    source: path,
    dates,
    prices: Float64Array.from(prices),
    text: items,
  };
  if (warnings.length > 0) series.warnings = warnings;
  return series;
}
