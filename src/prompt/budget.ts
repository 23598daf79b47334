/**
 * The prompt budget: which news items and filing summaries fit in maxChars / maxTokens.
 *
 * The rule (applied in this order, stopping as soon as the prompt fits):
 *   1. Whole news items are dropped from the END of the day's list (items keep their file order), but
 *      at least one item is kept in this step: the largest k >= 1 such that the first k items fit.
 *   2. Filing summaries (10-K/10-Q) are shortened, the last one first: each is cut at a word boundary
 *      to the longest prefix that fits (plus an ellipsis); one whose first word does not fit is
 *      removed and the prompt says "(10-Q summary omitted)".
 *   3. The single remaining news item is cut the same way; if not even its first word fits it is
 *      dropped too.
 *   4. If the prompt still does not fit, only the parts that are never cut are left (instructions, the
 *      market numbers, the account): an error states the size they need and the size allowed.
 * Instructions, prices, indicators and the account are never cut. The size is measured on the final
 * text, the "(N more news items omitted)" note included: characters = system.length + user.length
 * (UTF-16 code units), tokens = countTokens(system) + countTokens(user) (the chat template's own tokens
 * are not counted; leave them as margin).
 *
 * Steps 1-3 find the longest fit by bisection, which equals dropping/cutting one step at a time because
 * the size grows with every item or word kept.
 */

export interface BudgetLimits {
  maxChars?: number;
  maxTokens?: number;
  countTokens?: (s: string) => number;
}

/** How much of each cuttable item is shown. */
export interface CutState {
  /** The first `newsKept` news items are shown. */
  newsKept: number;
  /** Characters shown of the last kept news item (before the ellipsis); null = the whole item. */
  newsCut: number | null;
  /** Characters shown of each filing (before the ellipsis); null = the filing is omitted. */
  filingCuts: (number | null)[];
}

export interface Truncation {
  /** News items not shown. */
  newsDropped: number;
  /** Characters removed by the budget from items still shown (news and filings, ellipses not counted). */
  charsCut: number;
  /** Filing summaries the budget removed entirely. */
  filingsDropped: number;
}

export interface BudgetInput {
  /** Whitespace-normalised news texts, file order. */
  news: readonly string[];
  /** Whitespace-normalised filing texts. */
  filings: readonly string[];
  /** Shown length of each filing before any budget (its display cap); null = not shown even then. */
  filingStart: readonly (number | null)[];
  /** Word cut points of each news item and filing (see text.ts wordCutPoints). */
  newsCutPoints: readonly (readonly number[])[];
  filingCutPoints: readonly (readonly number[])[];
  render(state: CutState): { system: string; user: string };
  limits: BudgetLimits;
}

interface Size {
  chars: number;
  tokens: number | null;
}

export function validateLimits(l: BudgetLimits): void {
  if (l.maxChars !== undefined && !(Number.isInteger(l.maxChars) && l.maxChars > 0)) {
    throw new Error(`prompt option maxChars is ${String(l.maxChars)}; expected a positive integer`);
  }
  if (l.maxTokens !== undefined) {
    if (!(Number.isInteger(l.maxTokens) && l.maxTokens > 0)) {
      throw new Error(`prompt option maxTokens is ${String(l.maxTokens)}; expected a positive integer`);
    }
    if (typeof l.countTokens !== 'function') {
      throw new Error('prompt option maxTokens is set but countTokens is not; give a function that counts tokens of a string');
    }
  }
}

/** Choose what to show so the prompt fits; returns the state and what was cut, or throws (rule step 4). */
export function planBudget(input: BudgetInput): { state: CutState; truncated: Truncation } {
  const { news, filings, limits } = input;
  const full: CutState = { newsKept: news.length, newsCut: null, filingCuts: [...input.filingStart] };
  const none: Truncation = { newsDropped: 0, charsCut: 0, filingsDropped: 0 };
  if (limits.maxChars === undefined && limits.maxTokens === undefined) return { state: full, truncated: none };

  let lastSystem: string | null = null;
  let lastSystemTokens = 0;
  const countTokens = (s: string): number => {
    const n = limits.countTokens!(s);
    if (!(Number.isInteger(n) && n >= 0)) throw new Error(`countTokens returned ${String(n)}; expected a non-negative integer`);
    return n;
  };
  const measure = (state: CutState): Size => {
    const { system, user } = input.render(state);
    let tokens: number | null = null;
    if (limits.maxTokens !== undefined) {
      // The system text never changes between candidates: count it once.
      if (system !== lastSystem) {
        lastSystem = system;
        lastSystemTokens = countTokens(system);
      }
      tokens = lastSystemTokens + countTokens(user);
    }
    return { chars: system.length + user.length, tokens };
  };
  const fitsSize = (s: Size): boolean =>
    (limits.maxChars === undefined || s.chars <= limits.maxChars) &&
    (limits.maxTokens === undefined || (s.tokens as number) <= limits.maxTokens);
  const fits = (state: CutState): boolean => fitsSize(measure(state));

  // Largest index i in [0, n) with ok(i) true, assuming ok is true up to some point and false after; -1 if none.
  const lastTrue = (n: number, ok: (i: number) => boolean): number => {
    let lo = -1;
    let hi = n;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (ok(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  };

  const state: CutState = { ...full, filingCuts: [...full.filingCuts] };
  const done = () => ({ state, truncated: truncation(input, state) });
  if (fits(state)) return done();

  // Step 1: keep the largest k >= 1 leading news items that fit (k = 1 when none does).
  if (news.length > 1) {
    const k = lastTrue(news.length - 1, (i) => fits({ ...state, newsKept: i + 2 }));
    state.newsKept = k >= 0 ? k + 2 : 1;
    if (fits(state)) return done();
  }

  // Step 2: shorten filings, the last first.
  for (let j = filings.length - 1; j >= 0; j--) {
    const current = state.filingCuts[j];
    if (current === null) continue;
    const points = input.filingCutPoints[j].filter((p) => p < current);
    const with_ = (len: number | null): CutState => {
      const fc = [...state.filingCuts];
      fc[j] = len;
      return { ...state, filingCuts: fc };
    };
    const i = lastTrue(points.length, (m) => fits(with_(points[m])));
    state.filingCuts[j] = i >= 0 ? points[i] : null;
    if (fits(state)) return done();
  }

  // Step 3: cut the one remaining news item, or drop it.
  if (state.newsKept === 1) {
    const points = input.newsCutPoints[0];
    const i = lastTrue(points.length, (m) => fits({ ...state, newsCut: points[m] }));
    if (i >= 0) {
      state.newsCut = points[i];
      return done();
    }
    state.newsKept = 0;
    state.newsCut = null;
    if (fits(state)) return done();
  }

  // Step 4: only the uncuttable parts are left and they are too big.
  const need = measure(state);
  const parts: string[] = [];
  if (limits.maxChars !== undefined && need.chars > limits.maxChars) {
    parts.push(`${need.chars} characters but maxChars is ${limits.maxChars}`);
  }
  if (limits.maxTokens !== undefined && (need.tokens as number) > limits.maxTokens) {
    parts.push(`${need.tokens} tokens but maxTokens is ${limits.maxTokens}`);
  }
  throw new Error(
    `prompt budget too small: the parts that are never cut (instructions, market numbers, account) need ${parts.join(', and ')}`,
  );
}

function truncation(input: BudgetInput, s: CutState): Truncation {
  let charsCut = 0;
  if (s.newsCut !== null && s.newsKept > 0) charsCut += input.news[s.newsKept - 1].length - s.newsCut;
  let filingsDropped = 0;
  for (let j = 0; j < input.filings.length; j++) {
    const start = input.filingStart[j];
    const now = s.filingCuts[j];
    if (start === null) continue;
    if (now === null) filingsDropped++;
    else charsCut += start - now;
  }
  return { newsDropped: input.news.length - s.newsKept, charsCut, filingsDropped };
}
