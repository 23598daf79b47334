import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeReport } from '../src/report/write.js';
import type { ReportInput } from '../src/report/types.js';
import { Rng } from '../src/util/rng.js';
import { launchChromium, needsChromium } from './browser.js';

function sampleInput(): ReportInput {
  const rng = new Rng(11);
  const assets = ['AAA', 'BTC-X'].map((asset) => {
    const N = 30;
    const dates = Array.from({ length: N }, (_, i) => `2021-01-${String(i + 1).padStart(2, '0')}`);
    const logr = Array.from({ length: N - 1 }, () => 0.01 * rng.normal());
    const prices = [100];
    for (const r of logr) prices.push(prices[prices.length - 1]! * Math.exp(r));
    const runFor = (pos: number[], seed: number | null) => ({ seed, positions: pos, returns: pos.map((p, i) => p * logr[i]!) });
    return {
      asset, dates, prices, annualization: { vol: asset.startsWith('BTC') ? 365 : 252, sr: 252 },
      agents: [
        { name: 'buy-and-hold', kind: 'baseline' as const, runs: [runFor(logr.map(() => 1), null)] },
        { name: 'flag-trader', kind: 'trained' as const, runs: [1, 2, 3].map((s) => runFor(logr.map(() => [1, -1, 0][rng.int(3)]!), s)) },
      ],
    };
  });
  const training = [1, 2, 3].map((seed) => ({
    asset: 'AAA', seed,
    points: Array.from({ length: 5 }, (_, u) => ({ update: u + 1, episode_return: u === 0 ? null : u * 0.01, entropy: 1.09 - 0.05 * u, kl_ref: 0.01 * u, value_loss: 0.1 / (u + 1) })),
  }));
  return { title: 'Test report <&>', notes: ['a note'], assets, training, bootstrapSeed: 1, bootstrapResamples: 200 };
}

test('report files: the Markdown table holds the metrics of the data it was given', () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-'));
  try {
    const input = sampleInput();
    const { summaries } = writeReport(dir, input);
    const md = readFileSync(join(dir, 'report.md'), 'utf8');
    // Buy & Hold CR in percent, recomputed here from the prices: 100 * ln(P_end / P_start).
    const a = input.assets[0]!;
    const cr = 100 * Math.log(a.prices[a.prices.length - 1]! / a.prices[0]!);
    assert.ok(Math.abs(summaries[0]!.agents[0]!.cumulativeReturn.mean - cr) < 1e-9);
    assert.match(md, new RegExp(`\\| buy-and-hold \\| 1 \\| ${cr.toFixed(2).replace('.', '\\.')} \\|`));
    assert.match(md, /\| flag-trader \| 3 \| -?\d+\.\d+ ± \d+\.\d+ \|/);
    assert.match(md, /## BTC-X: 2021-01-01 \.\. 2021-01-30 \(30 prices\)/);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    assert.ok(html.includes('Test report &lt;&amp;&gt;'), 'title is escaped');
    assert.ok(!/src=["']https?:/.test(html), 'no external scripts');
    // Every training panel carries data from the run's metrics (a misspelt metric name draws an empty chart).
    for (const panel of ['episodeReturn', 'entropy', 'klRef', 'valueLoss']) {
      const m = new RegExp(`"${panel}":\\[([^\\]]*)\\]`).exec(html);
      assert.ok(m, `${panel} data embedded`);
      assert.ok(m![1]!.split(',').some((v) => v !== 'null'), `${panel} has values`);
    }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('report.html renders its charts in headless Chromium with no console errors', { skip: needsChromium(), timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'report-'));
  const browser = await launchChromium();
  try {
    writeReport(dir, sampleInput());
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
    await page.goto(pathToFileURL(join(dir, 'report.html')).href);
    await page.waitForFunction('window.__reportCharts !== undefined', null, { timeout: 30_000 });
    const drawn = await page.evaluate('window.__reportCharts');
    assert.equal(drawn, 2 * 3 + 4, 'three charts per asset and four training panels');
    // Every canvas has painted pixels (a chart that failed to draw stays fully transparent).
    // (Evaluated as a string: the project's TypeScript has no DOM types.)
    const painted = await page.evaluate(`Array.from(document.querySelectorAll('canvas')).map((c) => {
      const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      let n = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
      return n;
    })`) as number[];
    assert.equal(painted.length, 10);
    for (const [i, n] of painted.entries()) assert.ok(n > 500, `canvas ${i} has only ${n} painted pixels`);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
