// The walk-forward section of the report (src/report/walk-forward.ts, markdown.ts, html.ts): per-window
// metrics as the mean over seeds, the aggregates over windows checked by hand (mean, sample std, the
// share of windows beating Buy & Hold), the seeded bootstrap of the mean SR - B&H over windows against
// an independent re-implementation, and the Markdown/HTML sections (the chart painted in Chromium).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { meanBootstrapCI, quantile } from '../src/report/bootstrap.js';
import { summarizeWalkForward } from '../src/report/walk-forward.js';
import { writeReport } from '../src/report/write.js';
import type { AgentRun, ReportInput, WalkForwardResult } from '../src/report/types.js';
import { Rng } from '../src/util/rng.js';
import { launchChromium, needsChromium } from './browser.js';

const ann = { vol: 252, sr: 252 };

// The Sharpe ratio written out again (DESIGN.md): N prices = returns + 1.
function sr(r: number[]): number {
  const n = r.length, cr = r.reduce((a, b) => a + b, 0), m = cr / n;
  const sd = Math.sqrt(r.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1));
  return sd === 0 ? 0 : (cr / ((n + 1) / 252)) / (sd * Math.sqrt(252));
}

const run = (seed: number | null, returns: number[]): AgentRun => ({ seed, returns, positions: returns.map(() => 1) });

// Three windows of 5 test prices (4 daily returns). Buy & Hold's returns are the market's; the trained
// policy has two seeds; momentum one run.
const BH = [[0.01, -0.02, 0.015, 0.005], [-0.01, -0.01, 0.02, -0.005], [0.02, 0.01, -0.01, 0.004]];
const FT = [
  [[0.01, 0.02, 0.015, 0.005], [0.01, -0.02, 0.015, -0.005]],
  [[0.01, 0.01, 0.02, 0.005], [-0.01, 0.01, 0.02, 0.005]],
  [[0.02, -0.01, 0.01, 0.004], [-0.02, 0.01, -0.01, 0.004]],
];
const MOM = [[-0.01, 0.02, -0.015, 0.005], [0.01, 0.01, -0.02, 0.005], [0.02, 0.01, -0.01, 0.004]];

function walk(): WalkForwardResult {
  const day = (w: number, i: number) => `2021-0${w + 2}-0${i + 1}`;
  return {
    asset: 'T&X', scheme: { train: 20, test: 5, step: 5, expanding: false }, annualization: ann,
    windows: [0, 1, 2].map((w) => ({
      index: w,
      train: { start: `2020-0${w + 1}-01`, end: `2020-0${w + 1}-28` },
      test: { start: day(w, 0), end: day(w, 4) },
      dates: [0, 1, 2, 3, 4].map((i) => day(w, i)),
      agents: [
        { name: 'buy-and-hold', kind: 'baseline' as const, runs: [run(null, BH[w]!)] },
        { name: 'flag-trader (PPO LLM)', kind: 'trained' as const, runs: FT[w]!.map((r, s) => run(s + 1, r)) },
        { name: 'momentum', kind: 'baseline' as const, runs: [run(null, MOM[w]!)] },
      ],
    })),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sampleStd = (xs: number[]) => { const m = mean(xs); return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)); };
const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);

test('walk-forward summary: per-window means over seeds; mean, std and share over windows by hand', () => {
  const s = summarizeWalkForward(walk(), { bootstrapSeed: 4, bootstrapResamples: 500 });
  assert.deepEqual(s.agents.map((a) => [a.name, a.windows]), [['buy-and-hold', 3], ['flag-trader (PPO LLM)', 3], ['momentum', 3]]);
  assert.deepEqual([s.start, s.end], ['2020-01-01', '2021-04-05']);
  const bhSr = BH.map(sr);
  const ftSr = FT.map((seeds) => mean(seeds.map(sr)));
  const momSr = MOM.map(sr);
  for (let w = 0; w < 3; w++) {
    close(s.windows[w]!.agents[0]!.sharpeRatio, bhSr[w]!, `B&H SR window ${w}`);
    close(s.windows[w]!.agents[1]!.sharpeRatio, ftSr[w]!, `policy SR window ${w}`);
    assert.equal(s.windows[w]!.agents[1]!.runs, 2);
    // CR in percent, mean over the seeds.
    close(s.windows[w]!.agents[1]!.cumulativeReturn, 100 * mean(FT[w]!.map((r) => r.reduce((a, b) => a + b, 0))), `policy CR window ${w}`);
    assert.equal(s.windows[w]!.prices, 5);
  }
  const ft = s.agents[1]!;
  close(ft.sharpeRatio.mean, mean(ftSr), 'mean SR over windows');
  close(ft.sharpeRatio.std, sampleStd(ftSr), 'std SR over windows');
  close(ft.cumulativeReturn.mean, mean(FT.map((seeds) => mean(seeds.map((r) => 100 * r.reduce((a, b) => a + b, 0))))), 'mean CR');
  const diffs = ftSr.map((x, w) => x - bhSr[w]!);
  close(ft.srMinusBuyAndHold!.mean, mean(diffs), 'mean SR - B&H');
  // Worked out: the policy beats Buy & Hold in windows 1 and 2 (a market that fell), not in 3.
  assert.deepEqual(diffs.map((d) => d > 0), [true, true, false]);
  assert.deepEqual(ft.beatsBuyAndHold, { windows: 2, of: 3, share: 2 / 3 });
  // Momentum equals Buy & Hold in window 3: a tie is not a win.
  close(momSr[2]!, bhSr[2]!, 'tie');
  assert.equal(s.agents[2]!.beatsBuyAndHold!.windows, momSr.filter((x, w) => x > bhSr[w]!).length);
  assert.equal(s.agents[0]!.beatsBuyAndHold, null);
  assert.equal(s.agents[0]!.vsBuyAndHold, null);
  close(ft.vsBuyAndHold!.observed, mean(diffs), 'bootstrap observed');
  assert.ok(ft.vsBuyAndHold!.lower <= ft.vsBuyAndHold!.observed && ft.vsBuyAndHold!.observed <= ft.vsBuyAndHold!.upper);
  assert.ok(ft.vsBuyAndHold!.lower >= Math.min(...diffs) - 1e-12 && ft.vsBuyAndHold!.upper <= Math.max(...diffs) + 1e-12);
  // Seeded: the same input gives the same summary; a single window has no interval.
  assert.deepEqual(summarizeWalkForward(walk(), { bootstrapSeed: 4, bootstrapResamples: 500 }), s);
  const one = walk();
  one.windows = one.windows.slice(0, 1);
  assert.equal(summarizeWalkForward(one, {}).agents[1]!.vsBuyAndHold, null);
  assert.equal(summarizeWalkForward(one, {}).agents[1]!.sharpeRatio.std, 0);
});

test('the bootstrap of the mean over windows: windows drawn with replacement from the seeded Rng', () => {
  const values = [0.3, -0.1, 0.8, 0.05, -0.4];
  const ci = meanBootstrapCI(values, { seed: 7, resamples: 400 });
  // The same procedure written out: n draws of rng.int(n) per resample, percentile bounds.
  const rng = new Rng(7);
  const means = Array.from({ length: 400 }, () => mean(values.map(() => values[rng.int(values.length)]!))).sort((a, b) => a - b);
  close(ci.lower, quantile(means, 0.025), 'lower');
  close(ci.upper, quantile(means, 0.975), 'upper');
  close(ci.observed, mean(values), 'observed');
  assert.equal(ci.fractionNotBetter, means.filter((m) => m <= 0).length / 400);
  assert.deepEqual([ci.n, ci.block, ci.resamples, ci.level], [5, 1, 400, 0.95]);
  assert.deepEqual(meanBootstrapCI([2, 2, 2], { seed: 1, resamples: 50 }), { observed: 2, lower: 2, upper: 2, level: 0.95, fractionNotBetter: 0, resamples: 50, block: 1, n: 3 });
  assert.throws(() => meanBootstrapCI([1]), /need at least 2 values, got 1/);
  assert.throws(() => meanBootstrapCI([1, Number.NaN]), /value 1 is not finite/);
});

test('windows with different agents are an error naming the window', () => {
  const w = walk();
  w.windows[2]!.agents.pop();
  assert.throws(() => summarizeWalkForward(w, {}), /walk-forward window 3 of T&X has agents buy-and-hold, flag-trader \(PPO LLM\); window 1 has buy-and-hold, flag-trader \(PPO LLM\), momentum/);
});

function input(): ReportInput {
  return { title: 'WF <test>', notes: ['a note'], assets: [], walkForward: [walk()], training: [], bootstrapSeed: 0, bootstrapResamples: 300 };
}

test('report files: the walk-forward section in Markdown, HTML and JSON', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-wf-'));
  try {
    const { walkForward: [s] } = writeReport(dir, input());
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    assert.match(md, /## T&X walk-forward: 3 windows, rolling 20:5:5 \(2020-01-01 \.\. 2021-04-05\)/);
    assert.match(md, /\| agent \| windows \| CR % \| SR \| AV % \| MDD % \| beats B&H \| mean SR − B&H \[95% CI\] \|/);
    const ft = s!.agents[1]!;
    const f = (x: number, d = 2) => x.toFixed(d).replace('.', '\\.').replace('-', '\\-');
    assert.match(md, new RegExp(`\\| flag-trader \\(PPO LLM\\) \\| 3 \\| ${f(ft.cumulativeReturn.mean)} ± ${f(ft.cumulativeReturn.std)} \\| ${f(ft.sharpeRatio.mean, 3)} ± ${f(ft.sharpeRatio.std, 3)} \\|.* \\| 2/3 \\(67%\\) \\| ${f(ft.vsBuyAndHold!.observed)} \\[${f(ft.vsBuyAndHold!.lower)}, ${f(ft.vsBuyAndHold!.upper)}\\] \\|`));
    assert.match(md, /\| buy-and-hold \| 3 \| .* \| — \| — \|/);
    // The per-window table: one row per window with every agent's SR and the policy's SR - B&H.
    assert.match(md, /\| # \| train \| test \| buy-and-hold \| flag-trader \(PPO LLM\) \| momentum \| flag-trader \(PPO LLM\) − B&H \|/);
    for (const w of s!.windows) {
      const d = w.agents[1]!.sharpeRatio - w.agents[0]!.sharpeRatio;
      assert.ok(md.includes(`| ${w.index + 1} | ${w.train.start} .. ${w.train.end} | ${w.test.start} .. ${w.test.end} | ${w.agents.map((a) => a.sharpeRatio.toFixed(3)).join(' | ')} | ${d.toFixed(3)} |`), `window ${w.index + 1} row`);
    }
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.ok(html.includes('<canvas id="wf-sr-T_X">'), 'the per-window chart');
    assert.ok(html.includes('data-walk-forward="T&amp;X"'));
    assert.match(html, /"walkForward":\[\{"asset":"T&X","id":"T_X","labels":\["2021-02-01","2021-03-01","2021-04-01"\]/);
    const json = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8')) as { walkForward: unknown[] };
    assert.deepEqual(json.walkForward, JSON.parse(JSON.stringify([s])));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('report.html draws the walk-forward chart in headless Chromium with no console errors', { skip: needsChromium(), timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-wf-'));
  const browser = await launchChromium();
  try {
    writeReport(dir, input());
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(pathToFileURL(join(dir, 'report.html')).href);
    await page.waitForFunction('window.__reportCharts !== undefined', null, { timeout: 30_000 });
    assert.equal(await page.evaluate('window.__reportCharts'), 1, 'one walk-forward chart, no training panels');
    const painted = await page.evaluate(`(() => {
      const c = document.getElementById('wf-sr-T_X');
      const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    })()`) as number;
    assert.ok(painted > 500, `the chart has only ${painted} painted pixels`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
