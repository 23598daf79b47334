/**
 * The point-in-time guard. A pretrained model may record a text cutoff (flag_trader.json's
 * text_cutoff, src/model/meta.ts): the date of the latest text it was pretrained on. A model that read
 * news or filings of the days it is then evaluated on has seen the answers, so no test window may
 * start on or before that date, unless the run says so explicitly (allow_text_overlap), in which case
 * the overlap is recorded in the run (config.json's point_in_time) and shown in reports.
 *
 * checkTextCutoff is the one check; runPointInTime applies it to a training config (train, resume,
 * reproduce and demo call it before any training starts; evaluate checks its requested window).
 */
import type { MarketSeries } from '../data/series.js';
import { loadModelMeta } from '../model/load.js';
import { MODEL_META_FILE } from '../model/meta.js';
import type { TrainConfig } from './config.js';
import { testWindow } from './data.js';

export interface TextCutoffCheck {
  /** The model's text cutoff (YYYY-MM-DD), or null when it records none (nothing to check). */
  cutoff: string | null;
  /** First date of the test window. */
  testStart: string;
  /** The model spec, as the user gave it. */
  model: string;
  /** allow_text_overlap: run anyway (the caller records the overlap). */
  allowOverlap: boolean;
}

/** Where a model's cutoff is written, for messages. */
export function textCutoffSource(model: string): string {
  return `${model.replace(/\/+$/, '')}/${MODEL_META_FILE}`;
}

/**
 * Refuse a test window starting on or before the model's text cutoff (ISO dates compare as strings).
 * Returns whether the window overlaps the pretraining text (true only with allowOverlap).
 */
export function checkTextCutoff(o: TextCutoffCheck): { overlap: boolean } {
  if (o.cutoff === null || o.testStart > o.cutoff) return { overlap: false };
  if (o.allowOverlap) return { overlap: true };
  throw new Error(`model ${o.model} was pretrained on text dated up to ${o.cutoff} (text_cutoff in ${textCutoffSource(o.model)}), `
    + `but the test window starts on ${o.testStart}: its text would leak into the evaluation; choose a test window after ${o.cutoff} `
    + 'or pass --allow-text-overlap true to run anyway (recorded in the run)');
}

/** What a run records of the check (config.json's point_in_time). */
export interface PointInTime {
  model: string;
  /** The model's text cutoff; null when it records none. */
  text_cutoff: string | null;
  /** First date of the test window checked; null when the series has no days after the training window. */
  test_start: string | null;
  /** True when the test window starts on or before text_cutoff (only possible with allow_text_overlap). */
  text_overlap: boolean;
}

/** Whether a policy kind reads the pretrained model (only those can have read the test period's text). */
export function policyReadsModel(policy: string): boolean {
  return policy === 'llm';
}

/**
 * The test window a training config implies: test_start (snapped to the series' first date on or
 * after it), else the day after the training window. A train-only run whose series ends with its
 * training window has none here (null): `evaluate` checks the window it is given later.
 */
export function impliedTestStart(series: MarketSeries, c: TrainConfig): string | null {
  try {
    return testWindow(series, c).start;
  } catch {
    return c.test_start; // e.g. test_start past the series' end: check the configured date itself
  }
}

/**
 * Check a run's config against its model's text cutoff (reading only flag_trader.json, not the
 * weights, so that a refusal comes before anything heavy). Null for policies that read no model.
 * `testStart` overrides the implied test window (evaluate with another window).
 */
export async function runPointInTime(c: TrainConfig, series: MarketSeries, testStart?: string): Promise<PointInTime | null> {
  if (!policyReadsModel(c.policy)) return null;
  const meta = await loadModelMeta(c.model);
  const cutoff = meta?.text_cutoff ?? null;
  const start = testStart ?? impliedTestStart(series, c);
  // The synthetic market's calendar is made up and its text generated: real text of any date says
  // nothing about it, so only the market seeds the model read are checked there.
  const { overlap } = start === null || !dateCheckApplies(c) ? { overlap: false } : checkTextCutoff({ cutoff, testStart: start, model: c.model, allowOverlap: c.allow_text_overlap });
  // The synthetic market's headlines carry no real dates: a model that read a market seed's headlines
  // has read that market's whole future, so that seed is refused like an overlapping window.
  const seeds = Array.isArray(meta?.synthetic_seeds) ? (meta.synthetic_seeds as unknown[]) : [];
  const seedOverlap = c.data === 'synthetic' && seeds.includes(c.synthetic_seed);
  if (seedOverlap && !c.allow_text_overlap) {
    throw new Error(`model ${c.model} was pretrained on the headlines of synthetic market seed ${c.synthetic_seed} (synthetic_seeds ${JSON.stringify(seeds)} in its flag_trader.json): it has read that market's future; choose another --synthetic-seed or pass --allow-text-overlap true to run anyway (recorded in the run)`);
  }
  return { model: c.model, text_cutoff: cutoff, test_start: start, text_overlap: overlap || seedOverlap };
}

/** Whether the text cutoff is compared with the test window's dates: real data only (see runPointInTime). */
export function dateCheckApplies(c: Pick<TrainConfig, 'data'>): boolean {
  return c.data !== 'synthetic';
}

/** A one-line description for logs and reports. */
export function describePointInTime(p: PointInTime): string {
  if (p.text_cutoff === null) return `Point-in-time: model ${p.model} records no text cutoff; not checked.`;
  if (p.text_overlap) {
    return `Point-in-time: model ${p.model} was pretrained on text dated up to ${p.text_cutoff}, but the test window starts on ${p.test_start} `
      + '(allowed by allow_text_overlap): its results may reflect text it read about the test period.';
  }
  return p.test_start === null
    ? `Point-in-time: model text cutoff ${p.text_cutoff}; no test window in the data yet (evaluate checks it).`
    : `Point-in-time: model text cutoff ${p.text_cutoff}; the test window starts after it (${p.test_start}).`;
}
