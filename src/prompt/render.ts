/**
 * Renders the observation of day t as the policy's prompt.
 *
 * Layout, from the most stable text to the least, so the frozen layers' output for the prefix can be
 * cached (see DESIGN.md):
 *   system = instructions: task, legal actions and their meaning, how to read the state, the answer
 *            format. Depends only on the asset and the options: byte-identical every day.
 *   user   = market + "\n\n" + account: the day's prices, returns, indicators, news and filings, then
 *            the account (changes with every action).
 * The renderer reads nothing but the observation and the options, so it cannot see past day t.
 * Text items are shown with whitespace collapsed to single spaces (see text.ts); the news keep their
 * file order. Budget rule: see budget.ts.
 */
import type { TextItem } from '../data/series.js';
import { computeFeatures, type MarketFeatures } from '../env/features.js';
import type { Observation } from '../env/types.js';
import { planBudget, validateLimits, type CutState } from './budget.js';
import { fixed, pct, pctAbs, priceDecimals } from './format.js';
import { cutPointWithin, cutText, normalizeWhitespace, wordCutPoints } from './text.js';

/** benchmark: buy/sell/hold set the position +1/-1/0 for the next day. account: trades of a cash account. */
export type PromptMode = 'benchmark' | 'account';

export interface PromptOptions {
  /** How actions are worded; must match the environment's semantics. Default 'benchmark'. */
  mode?: PromptMode;
  /** Account mode only: whether sell may open a short position (wording only). Default false. */
  allowShort?: boolean;
  /** How many recent closes to list (the last K of the window). Default 10. */
  recentPrices?: number;
  /** Decimals of listed prices and SMAs. Default: priceDecimals() of the listed closes. */
  priceDecimals?: number;
  /** Display cap of each 10-K/10-Q summary, cut at a word boundary with an ellipsis. Default 800. */
  maxFilingChars?: number;
  /** Budget in characters of system + user (see budget.ts). Default: none. */
  maxChars?: number;
  /** Budget in tokens of system + user; needs countTokens. Default: none. */
  maxTokens?: number;
  countTokens?: (s: string) => number;
  /**
   * `full` (default): the paper-like prompt with every indicator explained. `compact`: a short
   * instruction, the last closes, three indicators, the news and the position — for small models with
   * byte-level tokenizers, where every character is a token and attention cost grows with its square.
   */
  style?: PromptStyle;
}

export type PromptStyle = 'full' | 'compact';

export interface RenderedPrompt {
  /** The stable instruction text (= sections.instructions). */
  system: string;
  /** sections.market + "\n\n" + sections.account. */
  user: string;
  sections: { instructions: string; market: string; account: string };
  /** What the budget removed compared with the prompt rendered without a budget. */
  truncated: { newsDropped: number; charsCut: number; filingsDropped: number };
}

export const DEFAULT_RECENT_PRICES = 10;
export const DEFAULT_MAX_FILING_CHARS = 800;

/** The answer format line, last in the instructions; parse.ts reads this format (and a few looser ones). */
export const ANSWER_FORMAT = 'Respond with JSON only: {"action": "buy" | "sell" | "hold"}';

interface Resolved {
  style: PromptStyle;
  mode: PromptMode;
  allowShort: boolean;
  recentPrices: number;
  priceDecimals: number | null;
  maxFilingChars: number;
}

function resolveOptions(opts: PromptOptions): Resolved {
  const mode = opts.mode ?? 'benchmark';
  if (mode !== 'benchmark' && mode !== 'account') {
    throw new Error(`prompt option mode is ${JSON.stringify(mode)}; expected "benchmark" or "account"`);
  }
  const positiveInt = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`prompt option ${name} is ${String(v)}; expected a positive integer`);
    return v;
  };
  if (opts.priceDecimals !== undefined && !(Number.isInteger(opts.priceDecimals) && opts.priceDecimals >= 0 && opts.priceDecimals <= 12)) {
    throw new Error(`prompt option priceDecimals is ${String(opts.priceDecimals)}; expected an integer from 0 to 12`);
  }
  if (opts.allowShort !== undefined && typeof opts.allowShort !== 'boolean') {
    throw new Error(`prompt option allowShort is ${String(opts.allowShort)}; expected true or false`);
  }
  validateLimits(opts);
  const style = opts.style ?? 'full';
  if (style !== 'full' && style !== 'compact') throw new Error(`prompt option style is ${JSON.stringify(style)}; expected "full" or "compact"`);
  return {
    style,
    mode,
    allowShort: opts.allowShort ?? false,
    recentPrices: positiveInt('recentPrices', opts.recentPrices, DEFAULT_RECENT_PRICES),
    priceDecimals: opts.priceDecimals ?? null,
    maxFilingChars: positiveInt('maxFilingChars', opts.maxFilingChars, DEFAULT_MAX_FILING_CHARS),
  };
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** The checks the renderer relies on (prices are checked by computeFeatures). Throws naming the field. */
function validateObservation(obs: Observation): void {
  const where = `observation ${String(obs.asset)} ${String(obs.date)}`;
  if (typeof obs.asset !== 'string' || obs.asset.trim() === '') throw new Error(`${where}: asset is empty; expected a ticker or name`);
  if (typeof obs.date !== 'string' || !ISO_DATE.test(obs.date)) throw new Error(`${where}: date is not YYYY-MM-DD`);
  if (!Array.isArray(obs.dates) || obs.dates.length === 0) throw new Error(`${where}: dates is empty; expected the window's dates`);
  if (obs.dates[obs.dates.length - 1] !== obs.date) {
    throw new Error(`${where}: the last entry of dates is ${String(obs.dates[obs.dates.length - 1])}; expected the observation date`);
  }
  for (let i = 0; i < obs.dates.length; i++) {
    if (typeof obs.dates[i] !== 'string' || !ISO_DATE.test(obs.dates[i])) throw new Error(`${where}: dates[${i}] is ${String(obs.dates[i])}; expected YYYY-MM-DD`);
    if (i > 0 && !(obs.dates[i - 1] < obs.dates[i])) {
      throw new Error(`${where}: dates[${i}] (${obs.dates[i]}) does not come after dates[${i - 1}] (${obs.dates[i - 1]}); expected increasing dates`);
    }
  }
  if (!Array.isArray(obs.text)) throw new Error(`${where}: text is not a list`);
  obs.text.forEach((item: TextItem, i) => {
    if (item === null || typeof item !== 'object' || !['news', '10k', '10q'].includes(item.kind)) {
      throw new Error(`${where}: text[${i}].kind is ${JSON.stringify(item?.kind)}; expected "news", "10k" or "10q"`);
    }
    if (typeof item.text !== 'string' || item.text.trim() === '') {
      throw new Error(`${where}: text[${i}] (${item.kind}) is empty; expected the item's text`);
    }
  });
  const a = obs.account;
  if (a === null || typeof a !== 'object') throw new Error(`${where}: account is missing`);
  for (const k of ['position', 'cash', 'shares', 'value', 'cumulativeReturn'] as const) {
    if (typeof a[k] !== 'number' || !Number.isFinite(a[k])) throw new Error(`${where}: account.${k} is ${String(a[k])}; expected a finite number`);
  }
}

function actionLines(o: Resolved): string[] {
  if (o.mode === 'benchmark') {
    return [
      '- buy: be long (+1) from today\'s close to the next trading day\'s close; you gain when the price rises.',
      '- sell: be short (-1) from today\'s close to the next trading day\'s close; you gain when the price falls.',
      '- hold: be flat (0): no position, so no gain or loss on the next day.',
      'Your action sets the position for the next day; it replaces your current position, it does not add to it.',
    ];
  }
  // Matches the account mode of src/env/trading-env.ts: all-in buys, all-out sells.
  return [
    o.allowShort
      ? '- buy: put all your cash into shares (if you are short, buy the shares back first); if you are already long, nothing changes.'
      : '- buy: put all your cash into shares; if you already hold shares, nothing changes.',
    o.allowShort
      ? '- sell: sell all your shares; if you hold none, open a short position as large as your cash; if you are already short, nothing changes.'
      : '- sell: sell all your shares and hold cash. Short selling is not allowed, so with no shares nothing changes.',
    '- hold: trade nothing; keep your shares and cash as they are.',
  ];
}

/** The instruction text: the same for every day of an asset under the same options (the cacheable prefix). */
export function renderInstructions(asset: string, opts: PromptOptions = {}): string {
  const o = resolveOptions(opts);
  if (o.style === 'compact') {
    const acts = o.mode === 'benchmark'
      ? 'buy = long (+1), sell = short (-1), hold = flat (0), for the next day'
      : `buy = all cash into shares, sell = ${o.allowShort ? 'sell all shares or go short' : 'sell all shares'}, hold = no trade`;
    return `Trade ${asset} daily to maximise risk-adjusted return. Actions: ${acts}.\n${ANSWER_FORMAT}`;
  }
  return [
    `You are a trading agent for ${asset}. Each trading day you read the market state and your account, then choose one action. Your goal is to maximise risk-adjusted return (Sharpe ratio) over the episode, not return alone.`,
    '',
    'Actions:',
    ...actionLines(o),
    '',
    'Reading the state: closes are listed oldest first. Returns are log returns. SMA is the simple moving average of closes and RSI(14) runs from 0 to 100 (above 70 often overbought, below 30 oversold). Volatility is the standard deviation of daily log returns over 20 days. "n/a" means there is not enough history yet. News items end with a sentiment tag.',
    '',
    ANSWER_FORMAT,
  ].join('\n');
}

const FILING_LABEL: Record<'10k' | '10q', string> = { '10k': '10-K', '10q': '10-Q' };

interface Items {
  news: string[];
  filings: { kind: '10k' | '10q'; text: string }[];
}

function na<T>(x: T | null, f: (v: T) => string): string {
  return x === null ? 'n/a' : f(x);
}

function indicatorLines(f: MarketFeatures, dp: number): string[] {
  const sma = (k: number, v: number | null, rel: number | null) =>
    v === null || rel === null ? `SMA${k} n/a` : `SMA${k} ${fixed(v, dp)} (price ${pct(rel)} vs SMA${k})`;
  return [
    `Log returns: 1-day ${na(f.ret1, (x) => pct(x))}, 5-day ${na(f.ret5, (x) => pct(x))}, 20-day ${na(f.ret20, (x) => pct(x))}`,
    `Moving averages: ${sma(5, f.sma5, f.priceToSma5)}; ${sma(20, f.sma20, f.priceToSma20)}`,
    `RSI(14): ${na(f.rsi14, (x) => fixed(x, 1))}`,
    `Volatility (20-day, daily): ${na(f.vol20, (x) => pctAbs(x))}`,
    f.fromHigh20 === null || f.fromLow20 === null
      ? '20-day range: n/a'
      : `20-day range: price ${pct(f.fromHigh20)} from the high, ${pct(f.fromLow20)} from the low`,
    `History: ${f.historyDays} trading day${f.historyDays === 1 ? '' : 's'} available`,
  ];
}

function renderMarket(obs: Observation, f: MarketFeatures, items: Items, cut: CutState, o: Resolved): string {
  const k = Math.min(o.style === 'compact' ? Math.min(o.recentPrices, 5) : o.recentPrices, obs.prices.length);
  const closes = obs.prices.slice(-k);
  const dp = o.priceDecimals ?? priceDecimals(closes);
  const from = obs.dates[obs.dates.length - k];
  if (o.style === 'compact') {
    const lines = [
      `${obs.date} closes: ${closes.map((p) => fixed(p, dp)).join(', ')}`,
      `ret1 ${na(f.ret1, (x) => pct(x))}, ret5 ${na(f.ret5, (x) => pct(x))}, price vs SMA20 ${na(f.priceToSma20, (x) => pct(x))}`,
    ];
    for (let i = 0; i < cut.newsKept; i++) {
      const isLast = i === cut.newsKept - 1;
      lines.push(`- ${isLast && cut.newsCut !== null ? cutText(items.news[i], cut.newsCut) : items.news[i]}`);
    }
    const omitted = items.news.length - cut.newsKept;
    if (omitted > 0) lines.push(`(${omitted} more omitted)`);
    items.filings.forEach((fl, j) => {
      const len = cut.filingCuts[j];
      if (len !== null) lines.push(`${FILING_LABEL[fl.kind]}: ${cutText(fl.text, len)}`);
    });
    return lines.join('\n');
  }
  const lines = [
    `Market state of ${obs.asset} on ${obs.date}:`,
    `Closes, last ${k} trading day${k === 1 ? '' : 's'} (${from} to ${obs.date}): ${closes.map((p) => fixed(p, dp)).join(', ')}`,
    ...indicatorLines(f, dp),
  ];
  if (items.news.length === 0) {
    lines.push(`News on ${obs.date}: none`);
  } else {
    lines.push(`News on ${obs.date}:`);
    for (let i = 0; i < cut.newsKept; i++) {
      const isLast = i === cut.newsKept - 1;
      const text = isLast && cut.newsCut !== null ? cutText(items.news[i], cut.newsCut) : items.news[i];
      lines.push(`${i + 1}. ${text}`);
    }
    const omitted = items.news.length - cut.newsKept;
    if (omitted > 0) lines.push(`(${omitted} more news item${omitted === 1 ? '' : 's'} omitted)`);
  }
  items.filings.forEach((fl, j) => {
    const len = cut.filingCuts[j];
    const label = FILING_LABEL[fl.kind];
    lines.push(len === null ? `(${label} summary omitted)` : `${label} summary: ${cutText(fl.text, len)}`);
  });
  return lines.join('\n');
}

function quantity(x: number): string {
  return Number.isInteger(x) ? String(x) : fixed(x, 4);
}

function renderAccount(obs: Observation, o: Resolved): string {
  const a = obs.account;
  const side = a.position > 0 ? 'long' : a.position < 0 ? 'short' : 'flat';
  if (o.style === 'compact') {
    return o.mode === 'benchmark'
      ? `Position: ${side}. Return so far: ${pct(a.cumulativeReturn)}`
      : `Shares: ${quantity(a.shares)}, cash ${fixed(a.cash, 2)}. Return so far: ${pct(a.cumulativeReturn)}`;
  }
  if (o.mode === 'benchmark') {
    return [
      'Your account:',
      `Position: ${side} (${a.position === 0 ? '0' : (a.position > 0 ? '+' : '-') + quantity(Math.abs(a.position))})`,
      `Portfolio value: ${fixed(a.value, 4)} (started at 1.0000)`,
      `Cumulative return: ${pct(a.cumulativeReturn)} (log)`,
    ].join('\n');
  }
  return [
    'Your account:',
    `Position: ${a.shares === 0 ? 'no shares' : `${a.shares > 0 ? 'long' : 'short'} ${quantity(Math.abs(a.shares))} share${Math.abs(a.shares) === 1 ? '' : 's'}`}`,
    `Cash: ${fixed(a.cash, 2)}`,
    `Portfolio value: ${fixed(a.value, 2)}`,
    `Cumulative return: ${pct(a.cumulativeReturn)} (log)`,
  ].join('\n');
}

/** The observation of day t as a prompt, within the budget of `opts` (see budget.ts for the rule). */
export function renderPrompt(obs: Observation, opts: PromptOptions = {}): RenderedPrompt {
  const o = resolveOptions(opts);
  validateObservation(obs);
  const features = computeFeatures(obs);
  const items: Items = { news: [], filings: [] };
  for (const it of obs.text) {
    const text = normalizeWhitespace(it.text);
    if (it.kind === 'news') items.news.push(text);
    else items.filings.push({ kind: it.kind, text });
  }
  const instructions = renderInstructions(obs.asset, opts);
  const account = renderAccount(obs, o);
  const build = (cut: CutState) => {
    const market = renderMarket(obs, features, items, cut, o);
    return { system: instructions, user: `${market}\n\n${account}`, market };
  };
  const { state, truncated } = planBudget({
    news: items.news,
    filings: items.filings.map((f) => f.text),
    filingStart: items.filings.map((f) => cutPointWithin(f.text, o.maxFilingChars)),
    newsCutPoints: items.news.map(wordCutPoints),
    filingCutPoints: items.filings.map((f) => wordCutPoints(f.text)),
    render: build,
    limits: opts,
  });
  const { system, user, market } = build(state);
  return { system, user, sections: { instructions, market, account }, truncated };
}
