// The compact prompt style: short, same layout rule (stable instructions first), same budget rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderPrompt, renderInstructions } from '../src/prompt/render.js';
import { makeObs, zigzag, wordsText } from './prompt-fixtures.js';

test('compact: the instructions are identical across days and accounts; the day follows in the user turn', () => {
  const a = makeObs(zigzag(21), [{ kind: 'news', text: 'Up (Sentiment: positive)' }]);
  const b = makeObs(zigzag(25), [], { position: 1, cash: 1, shares: 0, value: 1.1, cumulativeReturn: 0.0953 });
  const ra = renderPrompt(a, { style: 'compact' }), rb = renderPrompt(b, { style: 'compact' });
  assert.equal(ra.system, rb.system);
  assert.equal(ra.system, renderInstructions('TEST', { style: 'compact' }));
  assert.match(ra.system, /buy = long \(\+1\), sell = short \(-1\), hold = flat \(0\)/);
  assert.ok(ra.system.endsWith('Respond with JSON only: {"action": "buy" | "sell" | "hold"}'));
  // zigzag(21): last five closes p[16..20] = 108, 110, 109, 111, 110; ret1 = ln(110/111).
  assert.ok(ra.user.startsWith(`${a.date} closes: 108.00, 110.00, 109.00, 111.00, 110.00\n`), ra.user);
  assert.ok(ra.user.includes(`ret1 ${(100 * Math.log(110 / 111)).toFixed(2)}%`), ra.user);
  assert.ok(ra.user.includes('- Up (Sentiment: positive)'));
  assert.ok(ra.user.endsWith('Position: flat. Return so far: +0.00%') || ra.user.endsWith('Position: flat. Return so far: 0.00%'), ra.user);
  assert.ok(rb.user.includes('Position: long. Return so far: +9.53%'), rb.user);
});

test('compact is much shorter than full, and the budget rule still drops news from the end', () => {
  const news = [1, 2, 3, 4].map((i) => ({ kind: 'news' as const, text: wordsText(`n${i}w`, 12, 'positive') }));
  const obs = makeObs(zigzag(30), news);
  const full = renderPrompt(obs), compact = renderPrompt(obs, { style: 'compact' });
  const len = (r: { system: string; user: string }) => r.system.length + r.user.length;
  assert.ok(len(compact) * 2 < len(full), `${len(compact)} vs ${len(full)}`);
  const limit = len(compact) - 60; // too small for all four items
  const cut = renderPrompt(obs, { style: 'compact', maxChars: limit });
  assert.ok(len(cut) <= limit);
  assert.ok(cut.truncated.newsDropped >= 1);
  assert.ok(cut.user.includes('n1w1'), 'the first item is kept');
  assert.ok(!cut.user.includes('n4w1'), 'the last item goes first');
  assert.match(cut.user, /\(\d more omitted\)/);
});

test('compact account mode words the actions as trades; unknown styles are rejected', () => {
  assert.match(renderInstructions('X', { style: 'compact', mode: 'account' }), /buy = all cash into shares, sell = sell all shares, hold = no trade/);
  assert.match(renderInstructions('X', { style: 'compact', mode: 'account', allowShort: true }), /sell all shares or go short/);
  assert.throws(() => renderInstructions('X', { style: 'tiny' as never }), /style is "tiny"; expected "full" or "compact"/);
});
