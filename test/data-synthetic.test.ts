import { test } from 'node:test';
import assert from 'node:assert/strict';
import { syntheticMarket, generateSyntheticMarket, SYNTHETIC_DEFAULTS } from '../src/data/synthetic.js';
import { sentimentTag } from '../src/data/headlines.js';
import type { MarketSeries } from '../src/data/series.js';

// Plain statistics, written out here so the checks do not lean on the code under test.
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const variance = (xs: number[]): number => { const m = mean(xs); return xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1); };
/** Welch t statistic of mean(a) - mean(b). */
const welchT = (a: number[], b: number[]): number => (mean(a) - mean(b)) / Math.sqrt(variance(a) / a.length + variance(b) / b.length);
const logReturn = (s: MarketSeries, t: number): number => Math.log(s.prices[t + 1]! / s.prices[t]!);
/** Net sentiment of a day from the tags, read with a regex of this test's own. */
function netSentiment(s: MarketSeries, t: number): number {
  let net = 0;
  for (const item of s.text![t]!) {
    const m = /\(Sentiment: (positive|neutral|negative)\)$/.exec(item.text);
    assert.ok(m, `news without a sentiment tag: ${item.text}`);
    net += m[1] === 'positive' ? 1 : m[1] === 'negative' ? -1 : 0;
  }
  return net;
}

test('synthetic: same seed gives an identical series; different seeds differ', () => {
  const a = syntheticMarket({ seed: 42 }), b = syntheticMarket({ seed: 42 }), c = syntheticMarket({ seed: 43 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(Array.from(a.prices), Array.from(c.prices));
  assert.notDeepEqual(a.text, c.text);
  assert.equal(a.source, 'synthetic:seed=42:days=500');
  assert.equal(a.asset, 'SYNTH');
  assert.deepEqual(syntheticMarket(), syntheticMarket({ seed: SYNTHETIC_DEFAULTS.seed }));
});

test('synthetic: business-day dates from the start date, weekends skipped', () => {
  const s = syntheticMarket({ seed: 1, days: 30 });
  assert.equal(s.dates.length, 30);
  assert.equal(s.dates[0], '2020-01-02'); // a Thursday
  for (let t = 0; t < s.dates.length; t++) {
    const day = new Date(`${s.dates[t]}T00:00:00Z`);
    assert.ok(day.getUTCDay() !== 0 && day.getUTCDay() !== 6, `${s.dates[t]} is a weekend day`);
    if (t > 0) {
      const gap = (day.getTime() - new Date(`${s.dates[t - 1]}T00:00:00Z`).getTime()) / 86_400_000;
      assert.ok(gap === 1 || (gap === 3 && day.getUTCDay() === 1), `gap of ${gap} days before ${s.dates[t]}`);
    }
  }
  // A Saturday start moves to Monday.
  assert.deepEqual(syntheticMarket({ startDate: '2021-05-01', days: 3 }).dates, ['2021-05-03', '2021-05-04', '2021-05-05']);
});

test('synthetic: prices positive, OHLCV consistent, 1-3 tagged headlines a day', () => {
  for (const seed of [1, 2, 3]) {
    const s = syntheticMarket({ seed, days: 400 });
    const o = s.ohlcv!;
    assert.equal(s.prices.length, 400);
    assert.equal(s.prices[0], SYNTHETIC_DEFAULTS.startPrice);
    for (let t = 0; t < 400; t++) {
      assert.ok(s.prices[t]! > 0 && Number.isFinite(s.prices[t]!));
      assert.equal(o.close[t], s.prices[t]);
      assert.ok(o.high[t]! >= Math.max(o.open[t]!, o.close[t]!) && o.low[t]! <= Math.min(o.open[t]!, o.close[t]!) && o.low[t]! > 0);
      assert.ok(Number.isInteger(o.volume[t]!) && o.volume[t]! >= 0);
      const k = s.text![t]!.length;
      assert.ok(k >= 1 && k <= 3, `day ${t} has ${k} headlines`);
      for (const item of s.text![t]!) {
        assert.equal(item.kind, 'news');
        assert.ok(item.text.startsWith('SYNTH') || item.text.includes('SYNTH'), item.text);
      }
    }
  }
});

test('synthetic: the hidden process has the documented statistics', () => {
  // Regime persistence, per-regime drift and news accuracy, pooled over seeds, each within 4 standard errors.
  const p = SYNTHETIC_DEFAULTS;
  let stay = 0, moves = 0, match = 0, headlines = 0;
  const byRegime: Record<string, number[]> = { bull: [], flat: [], bear: [] };
  const want: Record<string, string> = { bull: 'positive', flat: 'neutral', bear: 'negative' };
  for (let seed = 1; seed <= 8; seed++) {
    const { series: s, regimes } = generateSyntheticMarket({ seed, days: 2000 });
    for (let t = 0; t < regimes.length; t++) {
      if (t > 0) { moves++; if (regimes[t] === regimes[t - 1]) stay++; }
      if (t + 1 < regimes.length) byRegime[regimes[t]!]!.push(logReturn(s, t));
      for (const item of s.text![t]!) { headlines++; if (item.text.endsWith(`(Sentiment: ${want[regimes[t]!]})`)) match++; }
    }
  }
  const se = (q: number, n: number) => Math.sqrt((q * (1 - q)) / n);
  assert.ok(Math.abs(stay / moves - p.persistence) < 4 * se(p.persistence, moves), `stay rate ${stay / moves}`);
  assert.ok(Math.abs(match / headlines - p.newsAccuracy) < 4 * se(p.newsAccuracy, headlines), `news accuracy ${match / headlines}`);
  for (const r of ['bull', 'flat', 'bear'] as const) {
    const xs = byRegime[r]!;
    const { drift, vol } = p.regimes[r];
    assert.ok(Math.abs(mean(xs) - drift) < 4 * vol / Math.sqrt(xs.length), `${r}: mean ${mean(xs)} vs drift ${drift}`);
    assert.ok(Math.abs(Math.sqrt(variance(xs)) / vol - 1) < 0.05, `${r}: sd ${Math.sqrt(variance(xs))} vs vol ${vol}`);
  }
});

test('synthetic: news sentiment of day t predicts the return from t to t+1', () => {
  const pos: number[] = [], neg: number[] = [];
  for (let seed = 1; seed <= 5; seed++) {
    const s = syntheticMarket({ seed, days: 2000 });
    for (let t = 0; t + 1 < s.prices.length; t++) {
      const net = netSentiment(s, t);
      if (net > 0) pos.push(logReturn(s, t));
      else if (net < 0) neg.push(logReturn(s, t));
    }
  }
  assert.ok(pos.length > 1000 && neg.length > 1000);
  assert.ok(mean(pos) > 0 && mean(neg) < 0, `mean after positive news ${mean(pos)}, after negative ${mean(neg)}`);
  const t = welchT(pos, neg);
  assert.ok(t > 5, `difference of conditional means is not clear: t = ${t}`);
});

test('synthetic: following the news beats buy & hold on average across seeds', () => {
  const diffs: number[] = [];
  for (let seed = 100; seed < 130; seed++) {
    const s = syntheticMarket({ seed }); // the default 500 days
    let strategy = 0, hold = 0;
    for (let t = 0; t + 1 < s.prices.length; t++) {
      const r = logReturn(s, t);
      strategy += Math.sign(netSentiment(s, t)) * r; // long on net positive news, short on net negative, flat otherwise
      hold += r;
    }
    diffs.push(strategy - hold);
  }
  const wins = diffs.filter((d) => d > 0).length;
  const t = mean(diffs) / Math.sqrt(variance(diffs) / diffs.length);
  assert.ok(mean(diffs) > 0 && t > 3, `mean excess log return ${mean(diffs)}, t = ${t}`);
  assert.ok(wins > diffs.length / 2, `news strategy won on ${wins} of ${diffs.length} seeds`);
});

test('synthetic: momentum carries a signal (persistent regimes)', () => {
  const up: number[] = [], down: number[] = [];
  // Weaker than the news (a 10-day return says little about a regime that lasts ~20 days), so pool more.
  for (let seed = 1; seed <= 20; seed++) {
    const s = syntheticMarket({ seed, days: 2000 });
    for (let t = 10; t + 1 < s.prices.length; t++) {
      const trailing = Math.log(s.prices[t]! / s.prices[t - 10]!);
      (trailing > 0 ? up : down).push(logReturn(s, t));
    }
  }
  const t = welchT(up, down);
  assert.ok(mean(up) > mean(down) && t > 3, `next-day return after a rising vs a falling fortnight: t = ${t}`);
});

test('synthetic: options change what they say they change', () => {
  const s = syntheticMarket({ seed: 5, days: 50, asset: 'ZZZ', startPrice: 10, headlinesPerDay: [2, 2] });
  assert.equal(s.asset, 'ZZZ');
  assert.equal(s.prices[0], 10);
  assert.ok(s.text!.every((d) => d.length === 2 && d.every((i) => i.text.includes('ZZZ'))));
  // With perfectly accurate news every headline matches the regime.
  const { series, regimes } = generateSyntheticMarket({ seed: 6, days: 200, newsAccuracy: 1 });
  const want = { bull: 1, flat: 0, bear: -1 } as const;
  for (let t = 0; t < 200; t++) {
    for (const item of series.text![t]!) {
      const tag = sentimentTag(item.text);
      assert.equal(tag === 'positive' ? 1 : tag === 'negative' ? -1 : 0, want[regimes[t]!]);
    }
  }
  // No news at all is possible.
  assert.ok(syntheticMarket({ seed: 1, days: 10, headlinesPerDay: [0, 0] }).text!.every((d) => d.length === 0));
});

test('synthetic: bad options are errors naming the option', () => {
  const cases: [object, string][] = [
    [{ days: 1 }, 'days'],
    [{ days: 2.5 }, 'days'],
    [{ startDate: '2020-02-30' }, 'startDate'],
    [{ persistence: 1.5 }, 'persistence'],
    [{ newsAccuracy: -0.1 }, 'newsAccuracy'],
    [{ headlinesPerDay: [3, 1] }, 'headlinesPerDay'],
    [{ startPrice: 0 }, 'startPrice'],
    [{ regimes: { bull: { drift: 0.001, vol: 0 } } }, 'regimes.bull.vol'],
    [{ seed: Number.NaN }, 'seed'],
    [{ dayz: 10 }, 'dayz'],
  ];
  for (const [opts, name] of cases) {
    assert.throws(() => syntheticMarket(opts as never), (e: Error) => e.message.includes(name), `${JSON.stringify(opts)} should fail naming ${name}`);
  }
  assert.throws(() => syntheticMarket({ days: 50, regimes: { bull: { drift: 500, vol: 1 }, flat: { drift: 500, vol: 1 }, bear: { drift: 500, vol: 1 } } }), /floating-point range/);
});

test('sentimentTag reads both INVESTOR-BENCH tag styles and nothing else', () => {
  assert.equal(sentimentTag('Good quarter. (Sentiment: positive)'), 'positive');
  assert.equal(sentimentTag('bitcoin slips. (sentiment:negative)'), 'negative');
  assert.equal(sentimentTag('Meeting held (Sentiment: Neutral) '), 'neutral');
  assert.equal(sentimentTag('No tag here'), null);
  assert.equal(sentimentTag('(Sentiment: positive) but not at the end'), null);
  assert.equal(sentimentTag('(Sentiment: bullish)'), null);
});
