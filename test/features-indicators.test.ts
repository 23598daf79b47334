import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeFeatures, FEATURE_NAMES, featureVector, newsSentiment, sentimentOf } from '../src/env/features.js';
import { makeObs, zigzag } from './prompt-fixtures.js';

const close = (a: number | null, b: number, tol = 1e-12) => {
  assert.ok(a !== null, `expected ${b}, got null`);
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `expected ${b}, got ${a}`);
};

test('indicators on a 6-day path, by hand', () => {
  const f = computeFeatures(makeObs([100, 102, 101, 103, 104, 106]));
  assert.equal(f.historyDays, 6);
  assert.equal(f.lastPrice, 106);
  close(f.ret1, Math.log(106 / 104));
  close(f.ret5, Math.log(106 / 100));
  close(f.sma5, 516 / 5); // 102 + 101 + 103 + 104 + 106
  close(f.priceToSma5, 106 / 103.2 - 1);
  for (const k of ['ret20', 'sma20', 'priceToSma20', 'vol20', 'rsi14', 'fromHigh20', 'fromLow20'] as const) {
    assert.equal(f[k], null, `${k} needs more history`);
  }
});

test('indicators on the 21-day zigzag path, by hand', () => {
  // p[2m] = 100 + m, p[2m+1] = 102 + m; p[20] = 110, p[19] = 111, p[15] = 109.
  const p = zigzag(21);
  assert.deepEqual(p.slice(0, 5), [100, 102, 101, 103, 102]);
  assert.equal(p[20], 110);
  const f = computeFeatures(makeObs(p));
  close(f.ret1, Math.log(110 / 111));
  close(f.ret5, Math.log(110 / 109));
  close(f.ret20, Math.log(110 / 100));
  close(f.sma5, (108 + 110 + 109 + 111 + 110) / 5);
  // p[1..20]: odd ones 102..111 (sum 1065), even ones 101..110 (sum 1055).
  close(f.sma20, 2120 / 20);
  close(f.priceToSma20, 110 / 106 - 1);
  // Last 14 changes (c7..c20): seven gains of 2, seven losses of 1 -> G = 1, L = 0.5 -> 100 * 1 / 1.5.
  close(f.rsi14, 200 / 3);
  close(f.fromHigh20, 110 / 111 - 1); // high of p[1..20] is p[19] = 111
  close(f.fromLow20, 110 / 101 - 1); // low is p[2] = 101 (p[0] = 100 is outside the 20-day window)
});

test('realised volatility: alternating log returns of +a and -a', () => {
  // 20 returns alternate +a, -a: mean 0, sum of squares 20 a^2, sample std a * sqrt(20 / 19).
  const a = 0.01;
  const p = Array.from({ length: 21 }, (_, i) => 100 * Math.exp(i % 2 === 1 ? a : 0));
  const f = computeFeatures(makeObs(p));
  close(f.vol20, a * Math.sqrt(20 / 19), 1e-9);
  // Equal gains and losses in the last 14 changes -> RSI 50.
  close(f.rsi14, 50, 1e-9);
  // Only the last 20 returns count: an extra, wild first price changes nothing.
  const g = computeFeatures(makeObs([1, ...p]));
  close(g.vol20, a * Math.sqrt(20 / 19), 1e-9);
});

test('RSI edge cases: only gains 100, only losses 0, no movement 50', () => {
  const up = Array.from({ length: 15 }, (_, i) => 50 + i);
  assert.equal(computeFeatures(makeObs(up)).rsi14, 100);
  assert.equal(computeFeatures(makeObs([...up].reverse())).rsi14, 0);
  assert.equal(computeFeatures(makeObs(Array(15).fill(7))).rsi14, 50);
  // A flat path also has zero volatility and sits at both its high and its low.
  const flat = computeFeatures(makeObs(Array(21).fill(7)));
  assert.equal(flat.vol20, 0);
  assert.equal(flat.fromHigh20, 0);
  assert.equal(flat.fromLow20, 0);
});

test('each indicator becomes available exactly at its documented history length', () => {
  const needs: Record<string, number> = {
    ret1: 2, ret5: 6, ret20: 21, sma5: 5, sma20: 20, priceToSma5: 5, priceToSma20: 20,
    vol20: 21, rsi14: 15, fromHigh20: 20, fromLow20: 20,
  };
  for (let n = 1; n <= 22; n++) {
    const f = computeFeatures(makeObs(zigzag(n)));
    assert.equal(f.historyDays, n);
    for (const [k, need] of Object.entries(needs)) {
      const v = f[k as keyof typeof f];
      assert.equal(v === null, n < need, `${k} with ${n} prices`);
    }
  }
});

test('bad prices are rejected with the index, date and value', () => {
  const obs = makeObs([100, -1, 102]);
  assert.throws(() => computeFeatures(obs), /prices\[1\] \(2021-01-02\) is -1; expected a positive finite number/);
  assert.throws(() => computeFeatures(makeObs([100, NaN])), /prices\[1\] \(2021-01-02\) is NaN/);
  assert.throws(() => computeFeatures(makeObs([])), /prices is empty/);
  const short = { ...makeObs([1, 2, 3]), dates: ['2021-01-01'] };
  assert.throws(() => computeFeatures(short), /dates has 1 entries but prices has 3/);
});

test('sentiment tags: equity and crypto spellings, the last tag wins, none is null', () => {
  assert.equal(sentimentOf('Good quarter. (Sentiment: positive)'), 'positive');
  assert.equal(sentimentOf('BTC falls (sentiment:negative)'), 'negative');
  assert.equal(sentimentOf('was (Sentiment: negative) now (Sentiment: neutral)'), 'neutral');
  assert.equal(sentimentOf('investor sentiment is improving'), null);
});

test('news sentiment: (positive - negative) / news items; filings ignored; no news is null', () => {
  const text = [
    { kind: 'news' as const, text: 'a (Sentiment: positive)' },
    { kind: 'news' as const, text: 'b (sentiment:positive)' },
    { kind: 'news' as const, text: 'c (Sentiment: negative)' },
    { kind: 'news' as const, text: 'd has no tag' },
    { kind: '10k' as const, text: 'filing (Sentiment: negative)' },
  ];
  assert.equal(newsSentiment(makeObs([1], text)), (2 - 1) / 4);
  assert.equal(newsSentiment(makeObs([1], [{ kind: '10q', text: 'x (Sentiment: positive)' }])), null);
});

test('feature vector: fixed length, names, nulls as 0 with flags, position one-hot, sentiment', () => {
  const at = (v: Float32Array, name: string) => {
    const i = FEATURE_NAMES.indexOf(name);
    assert.ok(i >= 0, `no feature ${name}`);
    return v[i];
  };
  assert.equal(new Set(FEATURE_NAMES).size, FEATURE_NAMES.length);
  assert.equal(FEATURE_NAMES.length, 9 * 2 + 3 + 2);

  const long = { position: 1, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 };
  const v = featureVector(makeObs(zigzag(21), [{ kind: 'news', text: 'x (Sentiment: negative)' }], long));
  assert.equal(v.length, FEATURE_NAMES.length);
  assert.equal(at(v, 'ret1'), Math.fround(Math.log(110 / 111)));
  assert.equal(at(v, 'rsi14_over_100'), Math.fround(2 / 3));
  assert.equal(at(v, 'ret20_available'), 1);
  assert.deepEqual([at(v, 'position_short'), at(v, 'position_flat'), at(v, 'position_long')], [0, 0, 1]);
  assert.deepEqual([at(v, 'news_sentiment'), at(v, 'news_available')], [-1, 1]);

  const shortAcc = { position: -1, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 };
  const w = featureVector(makeObs([100, 101, 102], [], shortAcc));
  assert.equal(at(w, 'ret1'), Math.fround(Math.log(102 / 101)));
  assert.equal(at(w, 'ret1_available'), 1);
  for (const k of ['ret5', 'ret20', 'priceToSma5', 'priceToSma20', 'vol20', 'rsi14', 'fromHigh20', 'fromLow20']) {
    assert.equal(at(w, `${k}_available`), 0, k);
  }
  assert.equal(at(w, 'ret5'), 0);
  assert.equal(at(w, 'rsi14_over_100'), 0);
  assert.deepEqual([at(w, 'position_short'), at(w, 'position_flat'), at(w, 'position_long')], [1, 0, 0]);
  assert.deepEqual([at(w, 'news_sentiment'), at(w, 'news_available')], [0, 0]);

  const flat = featureVector(makeObs([5]));
  assert.equal(at(flat, 'position_flat'), 1);
  const bad = makeObs([5], [], { position: NaN, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 });
  assert.throws(() => featureVector(bad), /account\.position is NaN/);
});

test('deterministic: same observation, same vector', () => {
  const obs = makeObs(zigzag(30), [{ kind: 'news', text: 'y (Sentiment: positive)' }]);
  assert.deepEqual(featureVector(obs), featureVector(structuredClone(obs)));
});
