import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import type { TextItem } from '../src/data/series.js';
import type { Observation } from '../src/env/types.js';
import { renderInstructions, renderPrompt, type PromptOptions, type RenderedPrompt } from '../src/prompt/render.js';
import { makeObs, wordsText, zigzag } from './prompt-fixtures.js';
import { dataPath, modelsPath, needsData, needsModels } from './shared-paths.js';

const ELLIPSIS = '\u2026';
const chars = (r: RenderedPrompt) => r.system.length + r.user.length;
/** A stand-in tokenizer for the tests: one token per whitespace-separated word. */
const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
const wordTokens = (r: RenderedPrompt) => words(r.system) + words(r.user);
const note = (m: number) => `(${m} more news item${m === 1 ? '' : 's'} omitted)`;

// Five news items of different lengths ("a1 a2 ...", "b1 ...", ...), each with a sentiment tag.
const NEWS: TextItem[] = ['a', 'b', 'c', 'd', 'e'].map((p, i) => ({ kind: 'news', text: wordsText(p, 12 + 5 * i, 'positive') }));
const FILING: TextItem = { kind: '10q', text: wordsText('q', 120) };
const PRICES = zigzag(25);
const obsOf = (text: TextItem[]) => makeObs(PRICES, text);

/**
 * The prompt that keeps the first k of the n news items, built WITHOUT the budget code: render an
 * observation that has only those k items, then insert the omission note after the k-th item.
 */
function keptPrompt(k: number, n: number, extra: TextItem[] = []): { system: string; user: string } {
  const r = renderPrompt(obsOf([...NEWS.slice(0, k), ...extra]));
  const last = `${k}. ${NEWS[k - 1].text}`;
  assert.ok(r.user.includes(last));
  return { system: r.system, user: r.user.replace(last, `${last}\n${note(n - k)}`) };
}

test('no budget, or a budget the full prompt meets exactly: nothing is cut', () => {
  const obs = obsOf([...NEWS, FILING]);
  const full = renderPrompt(obs);
  assert.deepEqual(full.truncated, { newsDropped: 0, charsCut: 0, filingsDropped: 0 });
  const exact = renderPrompt(obs, { maxChars: chars(full) });
  assert.deepEqual(exact, full);
});

test('step 1: whole news items are dropped from the end; the largest prefix of items that fits is kept', () => {
  const obs = obsOf(NEWS);
  for (let k = 1; k <= 4; k++) {
    const want = keptPrompt(k, 5);
    const budget = want.system.length + want.user.length;
    const r = renderPrompt(obs, { maxChars: budget });
    assert.equal(r.user, want.user, `k = ${k}`);
    assert.equal(r.system, want.system);
    assert.deepEqual(r.truncated, { newsDropped: 5 - k, charsCut: 0, filingsDropped: 0 });
    // One character less and item k no longer fits.
    const less = renderPrompt(obs, { maxChars: budget - 1 });
    assert.ok(chars(less) <= budget - 1);
    if (k >= 2) {
      assert.equal(less.truncated.newsDropped, 6 - k);
      assert.ok(less.user.includes(note(6 - k)));
      assert.ok(!less.user.includes(`${k}. `));
    }
  }
});

test('step 2: filings are shortened (longest word-boundary prefix) before the last news item is cut', () => {
  const obs = obsOf([...NEWS.slice(0, 3), FILING]);
  const oneItem = keptPrompt(1, 3, [FILING]);
  const budget = oneItem.system.length + oneItem.user.length - 50;
  const r = renderPrompt(obs, { maxChars: budget });
  assert.ok(chars(r) <= budget);
  // The first news item is still whole.
  assert.ok(r.user.includes(`1. ${NEWS[0].text}\n${note(2)}\n`));
  const line = r.user.split('\n').find((l) => l.startsWith('10-Q summary: '));
  assert.ok(line && line.endsWith(ELLIPSIS));
  const shown = line.slice('10-Q summary: '.length, -1);
  assert.ok(FILING.text.startsWith(`${shown} `), 'the cut ends at a word boundary');
  // Maximal: the next word would not fit (the prompt grows by exactly the added characters).
  const next = FILING.text.indexOf(' ', shown.length + 1);
  assert.ok(chars(r) + (next - shown.length) > budget);
  assert.deepEqual(r.truncated, { newsDropped: 2, charsCut: FILING.text.length - shown.length, filingsDropped: 0 });
});

test('steps 3-4: filing removed, the single item cut at a word; then removed; then an error with the sizes', () => {
  const obs = obsOf([...NEWS.slice(0, 3), FILING]);
  // The smallest possible prompt, built by hand from the prompt without any text items.
  const bare = renderPrompt(obsOf([]));
  const date = obs.date;
  const minimalUser = bare.user.replace(`News on ${date}: none`, `News on ${date}:\n${note(3)}\n(10-Q summary omitted)`);
  const need = bare.system.length + minimalUser.length;

  const exact = renderPrompt(obs, { maxChars: need });
  assert.equal(exact.user, minimalUser);
  assert.deepEqual(exact.truncated, { newsDropped: 3, charsCut: 0, filingsDropped: 1 });
  assert.throws(
    () => renderPrompt(obs, { maxChars: need - 1 }),
    new RegExp(`prompt budget too small: the parts that are never cut .* need ${need} characters but maxChars is ${need - 1}`),
  );

  // With 30 characters more, the first item comes back, cut after the longest word prefix that fits.
  const budget = need + 30;
  const r = renderPrompt(obs, { maxChars: budget });
  assert.ok(chars(r) <= budget);
  assert.ok(r.user.includes('(10-Q summary omitted)'));
  const line = r.user.split('\n').find((l) => l.startsWith('1. '));
  assert.ok(line && line.endsWith(ELLIPSIS));
  const shown = line.slice(3, -1);
  assert.ok(NEWS[0].text.startsWith(`${shown} `));
  const next = NEWS[0].text.indexOf(' ', shown.length + 1);
  assert.ok(chars(r) + (next - shown.length) > budget);
  assert.ok(r.user.includes(`${line}\n${note(2)}\n`));
  assert.deepEqual(r.truncated, { newsDropped: 2, charsCut: NEWS[0].text.length - shown.length, filingsDropped: 1 });
});

test('instructions and account are never cut, whatever the budget', () => {
  const obs = makeObs(PRICES, [...NEWS, FILING], { position: -1, cash: 0.97, shares: 0, value: 0.97, cumulativeReturn: -0.0305 });
  const full = renderPrompt(obs);
  for (let budget = chars(full); budget > 1200; budget -= 97) {
    let r: RenderedPrompt;
    try {
      r = renderPrompt(obs, { maxChars: budget });
    } catch (e) {
      assert.match(String(e), /prompt budget too small/);
      break;
    }
    assert.ok(chars(r) <= budget);
    assert.equal(r.sections.instructions, renderInstructions('TEST'));
    assert.equal(r.sections.account, full.sections.account);
    // Prices and indicators: every market line before the news is untouched.
    const head = (m: string) => m.slice(0, m.indexOf('News on'));
    assert.equal(head(r.sections.market), head(full.sections.market));
  }
});

test('token budget: counted by the given function, same rule; both limits hold together', () => {
  const obs = obsOf(NEWS);
  for (let k = 1; k <= 4; k++) {
    const want = keptPrompt(k, 5);
    const budget = words(want.system) + words(want.user);
    const r = renderPrompt(obs, { maxTokens: budget, countTokens: words });
    assert.equal(r.user, want.user, `k = ${k}`);
    assert.equal(wordTokens(r), budget);
    assert.equal(r.truncated.newsDropped, 5 - k);
    if (k >= 2) assert.equal(renderPrompt(obs, { maxTokens: budget - 1, countTokens: words }).truncated.newsDropped, 6 - k);
  }
  // Both limits: whichever is tighter decides, and both are met.
  const two = keptPrompt(2, 5);
  const opts: PromptOptions = { maxTokens: words(two.system) + words(two.user), countTokens: words, maxChars: 100000 };
  assert.equal(renderPrompt(obs, opts).truncated.newsDropped, 3);
  const r = renderPrompt(obs, { ...opts, maxChars: two.system.length + two.user.length - 1 });
  assert.equal(r.truncated.newsDropped, 4);
  // An impossible token budget names tokens in the error.
  assert.throws(() => renderPrompt(obs, { maxTokens: 10, countTokens: words }), /need \d+ tokens but maxTokens is 10/);
});

/** An Observation built by hand from the InvestorBench JSON (no project loaders): `lookback` days to `date`. */
function investorBenchObs(file: string, asset: string, date: string, lookback: number): Observation {
  const raw = JSON.parse(readFileSync(dataPath('investorbench', file), 'utf8')) as Record<
    string,
    { prices: number; news?: string[]; '10k'?: string[]; '10q'?: string[] }
  >;
  const keys = Object.keys(raw).sort();
  const t = keys.indexOf(date);
  assert.ok(t >= lookback, `${date} is in ${file} with ${lookback} days before it`);
  const dates = keys.slice(t - lookback + 1, t + 1);
  const day = raw[date];
  const text: TextItem[] = [
    ...(day.news ?? []).map((x) => ({ kind: 'news' as const, text: x })),
    ...(day['10k'] ?? []).map((x) => ({ kind: '10k' as const, text: x })),
    ...(day['10q'] ?? []).map((x) => ({ kind: '10q' as const, text: x })),
  ];
  return {
    asset, date, t, step: 5, dates, prices: dates.map((d) => raw[d].prices), text,
    account: { position: 1, cash: 1.012, shares: 0, value: 1.012, cumulativeReturn: Math.log(1.012) },
  };
}

const norm = (s: string) => s.replace(/\s+/g, ' ').trim();

test('MSFT day with 14 news items: 2000 characters keep the documented cut; no budget keeps every item', { skip: needsData('investorbench', 'msft.json') }, () => {
  const obs = investorBenchObs('msft.json', 'MSFT', '2020-10-28', 20);
  assert.equal(obs.text.length, 14);
  const news = obs.text.map((x) => norm(x.text));

  const full = renderPrompt(obs);
  assert.deepEqual(full.truncated, { newsDropped: 0, charsCut: 0, filingsDropped: 0 });
  let at = -1;
  news.forEach((s, i) => {
    const pos = full.user.indexOf(`${i + 1}. ${s}\n`);
    assert.ok(pos > at, `item ${i + 1} is present and after item ${i}`);
    at = pos;
  });

  const r = renderPrompt(obs, { maxChars: 2000 });
  assert.ok(chars(r) <= 2000, `${chars(r)} characters`);
  assert.equal(r.sections.instructions, full.sections.instructions);
  assert.equal(r.sections.account, full.sections.account);
  // The instructions and numbers take most of the 2000 characters: 13 items go, the first is cut.
  assert.equal(r.truncated.newsDropped, 13);
  assert.ok(r.user.includes(note(13)));
  const line = r.user.split('\n').find((l) => l.startsWith('1. '));
  assert.ok(line && line.endsWith(ELLIPSIS));
  const shown = line.slice(3, -1);
  assert.ok(news[0].startsWith(`${shown} `));
  assert.equal(r.truncated.charsCut, news[0].length - shown.length);
  assert.ok(chars(r) + (news[0].indexOf(' ', shown.length + 1) - shown.length) > 2000, 'the next word would not fit');
});

test('MSFT filing day under a real SmolLM2 token budget', { skip: needsData('investorbench', 'msft.json') || needsModels('smollm2-135m-instruct', 'tokenizer.json') }, () => {
  const tok = new Tokenizer(JSON.parse(readFileSync(modelsPath('smollm2-135m-instruct', 'tokenizer.json'), 'utf8')), {});
  const count = (s: string) => tok.encode(s, { add_special_tokens: false }).ids.length;
  const obs = investorBenchObs('msft.json', 'MSFT', '2020-10-27', 20); // 17 news items and a 10-Q
  assert.ok(obs.text.some((x) => x.kind === '10q'));
  const full = renderPrompt(obs);
  const fullTokens = count(full.system) + count(full.user);
  assert.ok(fullTokens > 1024, `${fullTokens} tokens unbudgeted`);
  const r = renderPrompt(obs, { maxTokens: 1024, countTokens: count });
  const used = count(r.system) + count(r.user);
  assert.ok(used <= 1024, `${used} tokens`);
  assert.ok(r.truncated.newsDropped > 0);
  assert.ok(r.truncated.newsDropped < 17, 'some news still fit in 1024 tokens');
  // Step 1 stopped at the largest k: one more whole item would not have fitted.
  const k = 17 - r.truncated.newsDropped;
  const items = obs.text.filter((x) => x.kind === 'news');
  const more = renderPrompt({ ...obs, text: [...items.slice(0, k + 1), ...obs.text.filter((x) => x.kind !== 'news')] });
  const withNote = more.user.replace(`${k + 1}. ${norm(items[k].text)}`, `$&\n${note(16 - k)}`);
  assert.ok(count(more.system) + count(withNote) > 1024);
});
