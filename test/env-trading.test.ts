import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TradingEnv } from '../src/env/trading-env.js';
import type { Action, Observation } from '../src/env/types.js';
import type { MarketSeries, TextItem } from '../src/data/series.js';
import { Rng } from '../src/util/rng.js';
import { isoDates, makeSeries, randomWalk } from './env-helpers.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

test('benchmark mode: rewards step by step on a 4-price series', () => {
  // Prices 100, 110, 99, 99. Actions buy, sell, hold:
  //   day 0: position +1, r = ln(110/100) = ln 1.1
  //   day 1: position -1, r = -ln(99/110) = ln(10/9)
  //   day 2: position  0, r = 0
  const env = new TradingEnv(makeSeries([100, 110, 99, 99]), { start: 'first', lookback: 2 });
  const o0 = env.reset();
  assert.equal(o0.t, 0);
  assert.equal(o0.step, 0);
  assert.deepEqual(o0.prices, [100]);
  assert.deepEqual(o0.account, { position: 0, cash: 1, shares: 0, value: 1, cumulativeReturn: 0 });

  const s1 = env.step('buy');
  close(s1.reward, 0.09531017980432486); // ln 1.1
  assert.equal(s1.done, false);
  assert.equal(s1.info.date, '2021-01-01');
  assert.equal(s1.info.position, 1);
  assert.equal(s1.info.cost, 0);
  assert.equal(s1.observation.t, 1);
  assert.deepEqual(s1.observation.prices, [100, 110]);
  assert.equal(s1.observation.account.position, 1);
  close(s1.observation.account.value, 1.1);

  const s2 = env.step('sell');
  close(s2.reward, 0.10536051565782628); // ln(10/9)
  close(s2.info.logReturn, Math.log(0.9));
  assert.equal(s2.info.position, -1);
  assert.deepEqual(s2.observation.prices, [100, 110, 99]);
  close(s2.observation.account.cumulativeReturn, 0.09531017980432486 + 0.10536051565782628);
  // Value = exp(CR) = 1.1 * 10/9 = 11/9.
  close(s2.observation.account.value, 11 / 9);

  const s3 = env.step('hold');
  assert.equal(s3.reward, 0);
  assert.equal(s3.info.position, 0);
  assert.equal(s3.done, true, 'N = 4 prices allow exactly 3 steps');
  assert.equal(s3.info.endReason, 'window-end');
  // lookback 2: the last observation holds days 1..3.
  assert.deepEqual(s3.observation.prices, [110, 99, 99]);
  assert.throws(() => env.step('buy'), /after the episode ended/);
});

test('benchmark mode: costs are costBps/1e4 per unit of position change, starting flat', () => {
  // costBps 10 -> 0.001 per unit. buy: |1-0| -> 0.001; sell: |-1-1| = 2 -> 0.002; hold: |0+1| -> 0.001; hold: 0.
  const env = new TradingEnv(makeSeries([100, 110, 99, 99, 99]), { start: 'first', costBps: 10 });
  env.reset();
  const a = env.step('buy'), b = env.step('sell'), c = env.step('hold'), d = env.step('hold');
  close(a.info.cost, 0.001); close(a.reward, Math.log(1.1) - 0.001);
  close(b.info.cost, 0.002); close(b.reward, -Math.log(99 / 110) - 0.002);
  close(c.info.cost, 0.001); close(c.reward, -0.001);
  assert.equal(d.info.cost, 0); assert.equal(d.reward, 0);
  close(d.observation.account.cumulativeReturn, Math.log(1.1) - Math.log(0.9) - 0.004);
});

test('episode ends at maxEpisodeSteps with endReason max-steps; misuse is an error', () => {
  const env = new TradingEnv(makeSeries([1, 2, 3, 4, 5, 6]), { start: 'first', maxEpisodeSteps: 2 });
  assert.throws(() => env.step('buy'), /before reset/);
  env.reset();
  assert.equal(env.step('buy').done, false);
  const last = env.step('buy');
  assert.equal(last.done, true);
  assert.equal(last.info.endReason, 'max-steps');
  assert.equal(last.observation.t, 2);
  assert.throws(() => env.step('hold'), /after the episode ended/);
  env.reset();
  assert.throws(() => env.step('long' as Action), /unknown action "long" on 2021-01-01; expected one of buy, sell, hold/);
});

test('a window bounds the episode: decisions from windowStart, the last one on windowEnd - 1', () => {
  const env = new TradingEnv(makeSeries([1, 2, 3, 4, 5, 6, 7, 8]), { start: 'first', windowStart: 3, windowEnd: 5, lookback: 2 });
  const o = env.reset();
  assert.equal(o.t, 3);
  assert.deepEqual(o.prices, [2, 3, 4], 'history before the window is visible');
  assert.equal(env.step('buy').done, false);
  const s = env.step('buy');
  assert.equal(s.done, true);
  assert.equal(s.info.endReason, 'window-end');
  assert.equal(s.observation.t, 5);
});

test('fixed start: first day with a full lookback, else the window start with shorter history', () => {
  const series = makeSeries([1, 2, 3, 4, 5, 6]);
  assert.equal(new TradingEnv(series, { lookback: 2 }).reset().t, 2);
  assert.equal(new TradingEnv(series, { lookback: 2, windowStart: 3 }).reset().t, 3);
  // lookback 5 would start on index 5 = the last index: no step left, so it starts at 0.
  const short = new TradingEnv(series, { lookback: 5 }).reset();
  assert.equal(short.t, 0);
  assert.deepEqual(short.prices, [1]);
});

test('random start: deterministic per seed, within range, covering it', () => {
  const series = randomWalk(40, 1, false);
  // lookback 5, maxEpisodeSteps 10: starts from 5 to 39 - 10 = 29.
  const env = new TradingEnv(series, { start: 'random', lookback: 5, maxEpisodeSteps: 10, seed: 3 });
  assert.deepEqual(env.startRange(), [5, 29]);
  const draw = (e: TradingEnv, seed?: number) => Array.from({ length: 200 }, (_, i) => e.reset(i === 0 ? seed : undefined).t);
  const a = draw(env, 11);
  const b = draw(new TradingEnv(series, { start: 'random', lookback: 5, maxEpisodeSteps: 10 }), 11);
  const c = draw(new TradingEnv(series, { start: 'random', lookback: 5, maxEpisodeSteps: 10 }), 12);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok(a.every((t) => t >= 5 && t <= 29));
  assert.equal(Math.min(...a), 5);
  assert.equal(Math.max(...a), 29);
  // The config seed seeds the stream like reset(seed) does.
  const fromConfig = new TradingEnv(series, { start: 'random', lookback: 5, maxEpisodeSteps: 10, seed: 3 });
  const fromReset = new TradingEnv(series, { start: 'random', lookback: 5, maxEpisodeSteps: 10 });
  assert.deepEqual(draw(fromConfig), draw(fromReset, 3));
  // Every random episode has the full 10 steps.
  const e = new TradingEnv(series, { start: 'random', lookback: 5, maxEpisodeSteps: 10, seed: 9 });
  for (let k = 0; k < 30; k++) {
    e.reset();
    let steps = 0, done = false;
    while (!done) { done = e.step('hold').done; steps++; }
    assert.equal(steps, 10);
  }
});

test('account mode: all-in buy and sell with fees, by hand', () => {
  // Cash 1000, fee 1%. Day 0 buy at 100: notional n = 1000 / 1.01, shares = n / 100, cash 0.
  //   V_1 = shares * 110 = 1100 / 1.01; reward = ln(1.1 / 1.01); fee share: cost = ln(1000 / (1000 / 1.01)) = ln 1.01.
  // Day 1 sell at 110: cash = shares * 110 * 0.99 = 1100 * 0.99 / 1.01; reward = ln 0.99, cost = -ln 0.99.
  // Day 2 hold (all cash) 99 -> 120: reward 0.
  const env = new TradingEnv(makeSeries([100, 110, 99, 120]), { mode: 'account', initialCash: 1000, feeBps: 100, start: 'first' });
  const o = env.reset();
  assert.deepEqual(o.account, { position: 0, cash: 1000, shares: 0, value: 1000, cumulativeReturn: 0 });
  const a = env.step('buy');
  close(a.reward, Math.log(1.1 / 1.01));
  close(a.info.cost, Math.log(1.01));
  assert.equal(a.info.position, 1);
  close(a.observation.account.shares, 10 / 1.01);
  assert.equal(a.observation.account.cash, 0);
  close(a.observation.account.value, 1100 / 1.01);
  const b = env.step('sell');
  close(b.reward, Math.log(0.99));
  close(b.info.cost, -Math.log(0.99));
  assert.equal(b.info.position, 0);
  close(b.observation.account.cash, (1100 * 0.99) / 1.01);
  const c = env.step('hold');
  assert.equal(c.reward, 0);
  assert.equal(c.done, true);
  close(c.observation.account.cumulativeReturn, Math.log((1.1 * 0.99) / 1.01));
  close(c.info.value!, (1100 * 0.99) / 1.01);
});

test('account mode: buying when invested or selling when flat changes nothing unless shorting is allowed', () => {
  const env = new TradingEnv(makeSeries([100, 110, 99, 120]), { mode: 'account', initialCash: 1000, start: 'first' });
  env.reset();
  assert.equal(env.step('sell').reward, 0, 'no short without allowShort: stays in cash');
  const b = env.step('buy'); // 1000 / 110 shares
  close(b.reward, Math.log(99 / 110));
  const c = env.step('buy'); // already all in: keeps the shares, no fee
  close(c.reward, Math.log(120 / 99));
  close(c.observation.account.value, (1000 / 110) * 120);
});

test('account mode with allowShort: 1x short, cover and go long, by hand', () => {
  // Cash 1000, no fee. Day 0 sell at 100: shares -10, cash 2000. V_1 at 110 = 2000 - 1100 = 900: reward ln 0.9.
  // Day 1 buy at 110: cover 10 * 110 -> cash 900; then 900 / 110 shares. V_2 at 99 = 810: reward ln 0.9.
  const env = new TradingEnv(makeSeries([100, 110, 99]), { mode: 'account', initialCash: 1000, allowShort: true, start: 'first' });
  env.reset();
  const a = env.step('sell');
  close(a.reward, Math.log(0.9));
  assert.equal(a.info.position, -1);
  close(a.observation.account.shares, -10);
  close(a.observation.account.cash, 2000);
  assert.equal(a.observation.account.position, -1);
  const b = env.step('buy');
  close(b.reward, Math.log(0.9));
  close(b.observation.account.shares, 900 / 110);
  close(b.observation.account.value, 810);
});

test('account mode: a short wiped out by a price jump ends the episode as ruined', () => {
  // Short 10 at 100 with cash 2000; at 250 the value is 2000 - 2500 < 0.
  const env = new TradingEnv(makeSeries([100, 250, 260]), { mode: 'account', initialCash: 1000, allowShort: true, start: 'first' });
  env.reset();
  const s = env.step('sell');
  assert.equal(s.done, true);
  assert.equal(s.info.endReason, 'ruined');
  close(s.reward, Math.log(1e-6));
});

test('no look-ahead: garbage after day t leaves every observation up to t unchanged', () => {
  const n = 30;
  const series = randomWalk(n, 5);
  const rng = new Rng(77);
  const actions: Action[] = Array.from({ length: n }, () => (['buy', 'sell', 'hold'] as const)[rng.int(3)]!);
  const run = (s: MarketSeries, upTo: number, opts: ConstructorParameters<typeof TradingEnv>[1]) => {
    const env = new TradingEnv(s, opts);
    const seen: Observation[] = [env.reset(4)];
    const rewards: number[] = [];
    for (let k = 0; seen[seen.length - 1]!.t < upTo; k++) {
      const r = env.step(actions[k]!);
      seen.push(r.observation);
      rewards.push(r.reward);
      if (r.done) break;
    }
    return { seen, rewards };
  };
  let compared = 0;
  for (const t of [0, 1, 7, 15, 28]) {
    const g = new Rng(1000 + t);
    const garbageText: TextItem[][] = series.text!.map((items, i) => (i <= t ? items : [{ kind: 'news', text: `garbage ${g.uniform()}` }, { kind: '10k', text: 'junk' }]));
    const garbage: MarketSeries = {
      ...series,
      dates: [...series.dates.slice(0, t + 1), ...isoDates(n - t - 1, '2099-01-01')],
      prices: Float64Array.from(series.prices, (p, i) => (i <= t ? p : 1e-3 + 1e6 * g.uniform())),
      text: garbageText,
    };
    for (const opts of [{ start: 'first' as const, lookback: 5 }, { start: 'fixed' as const, lookback: 3, mode: 'account' as const }]) {
      const a = run(series, t, opts), b = run(garbage, t, opts);
      const upToT = (o: Observation[]) => o.filter((x) => x.t <= t);
      compared += upToT(a.seen).length;
      assert.deepEqual(upToT(b.seen), upToT(a.seen), `observations up to day ${t}`);
      // Rewards of steps that end on or before t only use prices <= t too.
      const k = upToT(a.seen).length - 1;
      assert.deepEqual(b.rewards.slice(0, k), a.rewards.slice(0, k));
    }
  }
  // 1 + 2 + 8 + 16 + 29 observations from the first-day start, 0 + 0 + 5 + 13 + 26 from the fixed start (t0 = 3).
  assert.equal(compared, 56 + 44);
});

test('observations are copies: an agent changing one cannot change the series', () => {
  const series = makeSeries([1, 2, 3], { text: [[{ kind: 'news', text: 'a' }], [], []] });
  const env = new TradingEnv(series, { start: 'first' });
  const o = env.reset();
  o.prices[0] = 99;
  o.text[0]!.text = 'changed';
  assert.equal(series.prices[0], 1);
  assert.equal(series.text![0]![0]!.text, 'a');
  assert.deepEqual(env.observe().text, [{ kind: 'news', text: 'a' }]);
});

test('getState / setState continue an episode exactly (random starts included)', () => {
  const series = randomWalk(60, 2, false);
  const opts = { start: 'random' as const, maxEpisodeSteps: 8, lookback: 4, mode: 'account' as const, feeBps: 5 };
  const a = new TradingEnv(series, opts);
  a.reset(1);
  a.step('buy'); a.step('sell');
  const saved = JSON.parse(JSON.stringify(a.getState()));
  const play = (e: TradingEnv) => {
    const out: unknown[] = [];
    for (let ep = 0; ep < 3; ep++) {
      let done = e.done;
      while (!done) { const r = e.step('buy'); out.push(r); done = r.done; }
      out.push(e.reset());
    }
    return out;
  };
  const expected = play(a);
  const b = new TradingEnv(series, opts);
  b.setState(saved);
  assert.deepEqual(play(b), expected);
});

test('bad config and bad series are errors naming the field or date', () => {
  const s = makeSeries([1, 2, 3]);
  assert.throws(() => new TradingEnv(s, { lookback: -1 }), /Invalid trading environment config: lookback:/);
  assert.throws(() => new TradingEnv(s, { maxEpisodeSteps: 0 }), /maxEpisodeSteps:/);
  assert.throws(() => new TradingEnv(s, { mode: 'paper' as 'account' }), /mode:/);
  assert.throws(() => new TradingEnv(s, { start: 'middle' as 'fixed' }), /start:/);
  assert.throws(() => new TradingEnv(s, { costBps: -1 }), /costBps:/);
  assert.throws(() => new TradingEnv(s, { mode: 'account', feeBps: 10000 }), /feeBps:/);
  assert.throws(() => new TradingEnv(s, { initialCash: 0 }), /initialCash:/);
  assert.throws(() => new TradingEnv(s, { mode: 'account', costBps: 5 }), /costBps applies to benchmark mode; account mode charges feeBps/);
  assert.throws(() => new TradingEnv(s, { feeBps: 5 }), /feeBps and allowShort apply to account mode/);
  assert.throws(() => new TradingEnv(s, { allowShort: true }), /feeBps and allowShort apply to account mode/);
  assert.throws(() => new TradingEnv(s, { lookbak: 3 } as never), /Unrecognized key.*lookbak/);
  assert.throws(() => new TradingEnv(s, { windowEnd: 3 }), /windowEnd 3 is past the series' last index 2/);
  assert.throws(() => new TradingEnv(s, { windowStart: 2 }), /windowStart 2 must be before windowEnd 2/);
  assert.throws(() => new TradingEnv(makeSeries([1]), {}), /at least 2 prices, got 1/);
  assert.throws(() => new TradingEnv(makeSeries([1, -2, 3]), {}), /price on 2021-01-02 is -2; expected a positive finite number/);
  assert.throws(() => new TradingEnv(makeSeries([1, Number.NaN]), {}), /price on 2021-01-02 is NaN/);
  assert.throws(() => new TradingEnv(makeSeries([1, 2], { dates: ['2021-01-02', '2021-01-01'] }), {}), /2021-01-01 does not come after 2021-01-02/);
  assert.throws(() => new TradingEnv({ ...makeSeries([1, 2]), dates: ['2021-01-01'] }, {}), /1 dates but 2 prices/);
  assert.throws(() => new TradingEnv(makeSeries([1, 2], { text: [[]] }), {}), /text has 1 days but the series has 2/);
});
