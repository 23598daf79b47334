import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Observation } from '../src/env/types.js';
import { toChatMessages } from '../src/prompt/chat.js';
import { fixed, pct, priceDecimals } from '../src/prompt/format.js';
import { ANSWER_FORMAT, renderInstructions, renderPrompt } from '../src/prompt/render.js';
import { deepFreeze, makeObs, wordsText, zigzag } from './prompt-fixtures.js';

const LONG = { position: 1, cash: 1.05, shares: 0, value: 1.0512, cumulativeReturn: 0.04993 };

function dayObs(): Observation {
  return makeObs(
    zigzag(21),
    [
      { kind: 'news', text: 'First story about TEST. (Sentiment: positive)' },
      { kind: 'news', text: 'Second story,\n  with a line break. (Sentiment: negative)' },
      { kind: '10q', text: 'Quarterly summary:\n\n1. **Revenue** grew.' },
    ],
    LONG,
  );
}

test('deterministic: the same observation gives byte-identical output', () => {
  const a = renderPrompt(dayObs());
  const b = renderPrompt(structuredClone(dayObs()));
  assert.deepEqual(a, b);
});

test('layout: system = instructions; user = market, blank line, account; instructions first and the format line last', () => {
  const r = renderPrompt(dayObs());
  assert.equal(r.system, r.sections.instructions);
  assert.equal(r.user, `${r.sections.market}\n\n${r.sections.account}`);
  assert.ok(r.sections.market.startsWith('Market state of TEST on 2021-01-21:'));
  assert.ok(r.sections.account.startsWith('Your account:'));
  assert.ok(r.system.endsWith(ANSWER_FORMAT));
  assert.equal(ANSWER_FORMAT, 'Respond with JSON only: {"action": "buy" | "sell" | "hold"}');
  const msgs = toChatMessages(r);
  assert.deepEqual(msgs, [
    { role: 'system', content: r.system },
    { role: 'user', content: r.user },
  ]);
});

test('instructions are byte-identical across days, accounts, news and budgets of one asset (the cacheable prefix)', () => {
  const base = renderPrompt(dayObs()).system;
  const others: Observation[] = [
    makeObs([50]),
    makeObs(zigzag(40), [{ kind: 'news', text: 'other day' }], { position: -1, cash: 0.9, shares: 0, value: 0.9, cumulativeReturn: -0.1 }),
    makeObs(zigzag(7).map((x) => x * 1000)),
  ];
  for (const o of others) assert.equal(renderPrompt(o).system, base);
  assert.equal(renderPrompt(dayObs(), { maxChars: 1800 }).system, base);
  assert.equal(renderInstructions('TEST'), base);
  // What the instructions do depend on: the asset and the mode.
  assert.notEqual(renderInstructions('OTHER'), base);
  assert.notEqual(renderInstructions('TEST', { mode: 'account' }), base);
});

test('action wording follows the mode', () => {
  const bench = renderInstructions('X');
  assert.match(bench, /- buy: be long \(\+1\)/);
  assert.match(bench, /- sell: be short \(-1\)/);
  assert.match(bench, /- hold: be flat \(0\)/);
  const acc = renderInstructions('X', { mode: 'account' });
  assert.match(acc, /- buy: put all your cash into shares;/);
  assert.match(acc, /- sell: sell all your shares and hold cash\. Short selling is not allowed/);
  assert.doesNotMatch(acc, /be short/);
  const accShort = renderInstructions('X', { mode: 'account', allowShort: true });
  assert.match(accShort, /if you are short, buy the shares back first/);
  assert.match(accShort, /if you hold none, open a short position as large as your cash/);
  assert.doesNotMatch(accShort, /not allowed/);
  for (const s of [bench, acc, accShort]) assert.match(s, /^You are a trading agent for X\. .*risk-adjusted return/);
});

test('market section: last K closes with fixed decimals, hand-derived indicators, news in file order, filings', () => {
  const r = renderPrompt(dayObs());
  const lines = r.sections.market.split('\n');
  // zigzag(21) ends ... 106, 108, 107, 109, 108, 110, 109, 111, 110 (p[11..20]).
  assert.equal(lines[1], 'Closes, last 10 trading days (2021-01-12 to 2021-01-21): 107.00, 106.00, 108.00, 107.00, 109.00, 108.00, 110.00, 109.00, 111.00, 110.00');
  // ln(110/111) = -0.904%, ln(110/109) = +0.913%, ln(1.1) = +9.531%.
  assert.equal(lines[2], 'Log returns: 1-day -0.90%, 5-day +0.91%, 20-day +9.53%');
  // SMA5 = 109.6 (110/109.6 - 1 = +0.365%), SMA20 = 106 (110/106 - 1 = +3.774%).
  assert.equal(lines[3], 'Moving averages: SMA5 109.60 (price +0.36% vs SMA5); SMA20 106.00 (price +3.77% vs SMA20)');
  assert.equal(lines[4], 'RSI(14): 66.7');
  assert.match(lines[5], /^Volatility \(20-day, daily\): \d+\.\d\d%$/);
  // 110/111 - 1 = -0.901%, 110/101 - 1 = +8.911%.
  assert.equal(lines[6], '20-day range: price -0.90% from the high, +8.91% from the low');
  assert.equal(lines[7], 'History: 21 trading days available');
  assert.equal(lines[8], 'News on 2021-01-21:');
  assert.equal(lines[9], '1. First story about TEST. (Sentiment: positive)');
  assert.equal(lines[10], '2. Second story, with a line break. (Sentiment: negative)');
  assert.equal(lines[11], '10-Q summary: Quarterly summary: 1. **Revenue** grew.');
  assert.equal(lines.length, 12);
  assert.deepEqual(r.truncated, { newsDropped: 0, charsCut: 0, filingsDropped: 0 });
});

test('volatility line matches a hand value', () => {
  const a = 0.01;
  const p = Array.from({ length: 21 }, (_, i) => 100 * Math.exp(i % 2 === 1 ? a : 0));
  // a * sqrt(20/19) = 0.0102598 -> 1.03%
  assert.match(renderPrompt(makeObs(p)).sections.market, /\nVolatility \(20-day, daily\): 1\.03%\n/);
});

test('short history shows n/a, not guesses; no news says none', () => {
  const m = renderPrompt(makeObs([10, 11])).sections.market;
  assert.match(m, /Closes, last 2 trading days \(2021-01-01 to 2021-01-02\): 10\.00, 11\.00\n/);
  assert.match(m, /Log returns: 1-day \+9\.53%, 5-day n\/a, 20-day n\/a/);
  assert.match(m, /Moving averages: SMA5 n\/a; SMA20 n\/a/);
  assert.match(m, /RSI\(14\): n\/a/);
  assert.match(m, /Volatility \(20-day, daily\): n\/a/);
  assert.match(m, /20-day range: n\/a/);
  assert.match(m, /History: 2 trading days available/);
  assert.match(m, /News on 2021-01-02: none/);
  const one = renderPrompt(makeObs([10])).sections.market;
  assert.match(one, /Closes, last 1 trading day \(2021-01-01 to 2021-01-01\): 10\.00\n/);
  assert.match(one, /History: 1 trading day available/);
});

test('recentPrices and priceDecimals options', () => {
  const r = renderPrompt(makeObs(zigzag(21)), { recentPrices: 3, priceDecimals: 1 });
  assert.match(r.sections.market, /Closes, last 3 trading days \(2021-01-19 to 2021-01-21\): 109\.0, 111\.0, 110\.0\n/);
  assert.match(r.sections.market, /SMA5 109\.6 /);
});

test('number formatting: fixed decimals, no negative zero, sensible price decimals', () => {
  assert.equal(fixed(-0.0001, 2), '0.00');
  assert.equal(pct(-0.00001), '0.00%');
  assert.equal(pct(0.01234), '+1.23%');
  assert.equal(pct(-0.0125), '-1.25%');
  assert.equal(priceDecimals([205.24, 199.1]), 2);
  assert.equal(priceDecimals([23456.78]), 2);
  assert.equal(priceDecimals([5.3]), 3);
  assert.equal(priceDecimals([0.061234]), 5);
  assert.throws(() => fixed(NaN, 2), /cannot format NaN/);
});

test('account section in both modes', () => {
  const b = renderPrompt(makeObs([10], [], LONG)).sections.account;
  assert.equal(b, 'Your account:\nPosition: long (+1)\nPortfolio value: 1.0512 (started at 1.0000)\nCumulative return: +4.99% (log)');
  const flat = renderPrompt(makeObs([10])).sections.account;
  assert.match(flat, /Position: flat \(0\)/);
  assert.match(flat, /Cumulative return: 0\.00% \(log\)/);
  const acc = { position: 1, cash: 1234.5, shares: 12, value: 9876.543, cumulativeReturn: -0.0123 };
  const a = renderPrompt(makeObs([10], [], acc), { mode: 'account' }).sections.account;
  assert.equal(a, 'Your account:\nPosition: long 12 shares\nCash: 1234.50\nPortfolio value: 9876.54\nCumulative return: -1.23% (log)');
  const none = renderPrompt(makeObs([10], [], { ...acc, shares: 0, position: 0 }), { mode: 'account' }).sections.account;
  assert.match(none, /Position: no shares/);
  const frac = renderPrompt(makeObs([10], [], { ...acc, shares: -0.5, position: -1 }), { mode: 'account' }).sections.account;
  assert.match(frac, /Position: short 0\.5000 shares/);
});

test('filings are capped at maxFilingChars at a word boundary, without counting as budget truncation', () => {
  const filing = wordsText('f', 300); // "f1 f2 ... f300"
  const r = renderPrompt(makeObs([10], [{ kind: '10k', text: filing }]), { maxFilingChars: 100 });
  const line = r.sections.market.split('\n').find((l) => l.startsWith('10-K summary: '));
  assert.ok(line);
  const shown = line.slice('10-K summary: '.length);
  assert.ok(shown.endsWith('\u2026'));
  const prefix = shown.slice(0, -1);
  // "f1 ... fk" (9 <= k <= 99) has 2*9 + 3*(k-9) letters and digits plus k-1 spaces = 4k - 10 characters:
  // the longest word-boundary prefix within 100 is k = 27 (98 characters; k = 28 would be 102).
  assert.equal(prefix, wordsText('f', 27));
  assert.equal(prefix.length, 98);
  assert.deepEqual(r.truncated, { newsDropped: 0, charsCut: 0, filingsDropped: 0 });
});

test('no look-ahead: only the observation is read, it is not modified, no later date appears', () => {
  const obs = dayObs();
  const plain = renderPrompt(obs);
  // Extra fields (e.g. future data somebody attached) change nothing.
  const withFuture = { ...structuredClone(obs), futurePrices: [999, 998], futureDates: ['2030-01-01'] } as Observation;
  assert.deepEqual(renderPrompt(withFuture), plain);
  // A deep-frozen observation renders (nothing is written to it) and gives the same text.
  assert.deepEqual(renderPrompt(deepFreeze(structuredClone(obs))), plain);
  // Every date in the prompt is <= the observation date.
  const all = `${plain.system}\n${plain.user}`;
  for (const m of all.matchAll(/\d{4}-\d{2}-\d{2}/g)) assert.ok(m[0] <= obs.date, `${m[0]} is after ${obs.date}`);
});

test('bad observations are rejected, naming the field', () => {
  const ok = dayObs();
  const cases: [Observation, RegExp][] = [
    [{ ...ok, asset: '' }, /asset is empty/],
    [{ ...ok, date: '21-01-2021' }, /date is not YYYY-MM-DD/],
    [{ ...ok, date: '2021-01-20' }, /last entry of dates is 2021-01-21; expected the observation date/],
    [{ ...ok, dates: [...ok.dates.slice(0, 5), ok.dates[3], ...ok.dates.slice(6)] }, /dates\[5\] \(2021-01-04\) does not come after dates\[4\] \(2021-01-05\)/],
    [{ ...ok, dates: ['bad', ...ok.dates.slice(1)] }, /dates\[0\] is bad; expected YYYY-MM-DD/],
    [{ ...ok, text: [{ kind: 'tweet' as never, text: 'x' }] }, /text\[0\]\.kind is "tweet"; expected "news", "10k" or "10q"/],
    [{ ...ok, text: [{ kind: 'news', text: '  \n ' }] }, /text\[0\] \(news\) is empty/],
    [{ ...ok, account: { ...LONG, value: Infinity } }, /account\.value is Infinity; expected a finite number/],
    [{ ...ok, prices: [...ok.prices.slice(0, -1), 0] }, /prices\[20\] \(2021-01-21\) is 0; expected a positive finite number/],
  ];
  for (const [obs, re] of cases) assert.throws(() => renderPrompt(obs), re);
});

test('bad options are rejected, naming the option', () => {
  const obs = dayObs();
  assert.throws(() => renderPrompt(obs, { mode: 'paper' as never }), /mode is "paper"; expected "benchmark" or "account"/);
  assert.throws(() => renderPrompt(obs, { recentPrices: 0 }), /recentPrices is 0; expected a positive integer/);
  assert.throws(() => renderPrompt(obs, { maxFilingChars: 2.5 }), /maxFilingChars is 2\.5/);
  assert.throws(() => renderPrompt(obs, { priceDecimals: 13 }), /priceDecimals is 13; expected an integer from 0 to 12/);
  assert.throws(() => renderPrompt(obs, { allowShort: 'yes' as never }), /allowShort is yes; expected true or false/);
  assert.throws(() => renderPrompt(obs, { maxChars: -5 }), /maxChars is -5; expected a positive integer/);
  assert.throws(() => renderPrompt(obs, { maxTokens: 100 }), /maxTokens is set but countTokens is not/);
  assert.throws(() => renderPrompt(obs, { maxTokens: 0, countTokens: () => 1 }), /maxTokens is 0/);
  assert.throws(() => renderPrompt(obs, { maxTokens: 10000, countTokens: () => -1 }), /countTokens returned -1/);
});
