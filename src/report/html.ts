import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { drawdownCurve, equityCurve, meanCurve, type AssetSummary } from './summary.js';
import type { ReportInput } from './types.js';
import { featuredAgent, schemeLabel, type WalkForwardSummary } from './walk-forward.js';
import { BUY_AND_HOLD } from './summary.js';

/**
 * A self-contained HTML report: Chart.js is inlined (no network needed to view it), the data travel as
 * JSON inside the page, and a small script draws, per asset, equity curves, drawdowns and positions,
 * plus the training curves of every trained run; per walk-forward, the Sharpe ratio of every agent per
 * window with the tables over and per window.
 */
export function renderHtml(input: ReportInput, summaries: AssetSummary[], markdownTables: string, walkForward: WalkForwardSummary[] = []): string {
  // The UMD build is not in the package's exports map: find it beside the CommonJS entry.
  const chartDist = dirname(createRequire(import.meta.url).resolve('chart.js'));
  const chartJs = readFileSync(join(chartDist, 'chart.umd.min.js'), 'utf8');
  const data = {
    assets: input.assets.map((a) => ({
      asset: a.asset,
      dates: a.dates,
      agents: a.agents.map((g) => ({
        name: g.name,
        kind: g.kind,
        // Several seeds: the mean equity and drawdown curve over seeds; positions of the first seed.
        equity: meanCurve(g.runs.map((r) => equityCurve(r.returns))),
        drawdown: meanCurve(g.runs.map((r) => drawdownCurve(r.returns))),
        positions: g.runs[0]!.positions,
        seeds: g.runs.length,
      })),
    })),
    walkForward: walkForward.map((w) => ({
      asset: w.asset,
      id: chartId(w.asset),
      labels: w.windows.map((win) => win.test.start),
      agents: w.agents.map((a, j) => ({ name: a.name, kind: a.kind, sr: w.windows.map((win) => win.agents[j]!.sharpeRatio) })),
    })),
    training: input.training.map((t) => ({
      label: `${t.asset} seed ${t.seed}`,
      update: t.points.map((p) => Number(p.update ?? 0)),
      episodeReturn: t.points.map((p) => numOrNull(p.episode_return)),
      entropy: t.points.map((p) => numOrNull(p.entropy)),
      klRef: t.points.map((p) => numOrNull(p.kl_ref)),
      valueLoss: t.points.map((p) => numOrNull(p.value_loss)),
    })),
  };
  const tables = summaries.map((s) => tableHtml(s)).join('\n') + walkForward.map((w) => walkForwardHtml(w)).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>${esc(input.title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1d2433; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #dde; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; } td, th { padding: .25rem .6rem; border-bottom: 1px solid #eef; text-align: right; }
td:first-child, th:first-child { text-align: left; } .trained { font-weight: 600; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; } .chart { position: relative; height: 280px; }
.wf td { white-space: nowrap; } .notes { color: #556; } .warning { background: #fff3cd; border: 1px solid #e0b100; padding: .5rem .8rem; font-weight: 600; } details { margin-top: 2rem; } pre { white-space: pre-wrap; font-size: 12px; }
</style></head><body>
<h1>${esc(input.title)}</h1>
${(input.warnings ?? []).map((w) => `<p class="warning">Warning: ${esc(w)}</p>\n`).join('')}<ul class="notes">${input.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>
<p class="notes">CR, AV and MDD in percent; SR annualised, zero risk-free rate${summaries.length > 0 ? `; mean ± std over seeds; the last column is a
95% paired block-bootstrap interval of the Sharpe difference against Buy &amp; Hold` : ''}.</p>
<div id="assets">${tables}</div>
<h2>Training</h2>
<div class="grid" id="training"></div>
<details><summary>Markdown tables</summary><pre>${esc(markdownTables)}</pre></details>
<script>${chartJs.replace(/<\/script/gi, '<\\/script')}</script>
<script type="application/json" id="report-data">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>
<script>${PAGE_SCRIPT}</script>
</body></html>
`;
}

function numOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function tableHtml(s: AssetSummary): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const pm = (st: { mean: number; std: number; n: number }, d = 2) => (st.n > 1 ? `${f(st.mean, d)} ± ${f(st.std, d)}` : f(st.mean, d));
  const rows = s.agents.map((a) => `<tr class="${a.kind}"><td>${esc(a.name)}</td><td>${a.cumulativeReturn.n}</td>`
    + `<td>${pm(a.cumulativeReturn)}</td><td>${pm(a.sharpeRatio, 3)}</td><td>${pm(a.annualizedVolatility)}</td><td>${pm(a.maxDrawdown)}</td>`
    + `<td>${a.vsBuyAndHold ? `${f(a.vsBuyAndHold.observed)} [${f(a.vsBuyAndHold.lower)}, ${f(a.vsBuyAndHold.upper)}]` : '—'}</td></tr>`).join('');
  const id = s.asset.replace(/[^A-Za-z0-9_-]/g, '_');
  return `<section data-asset="${esc(s.asset)}"><h2>${esc(s.asset)}: ${s.start} .. ${s.end} (${s.prices} prices)</h2>
<table><thead><tr><th>agent</th><th>runs</th><th>CR %</th><th>SR</th><th>AV %</th><th>MDD %</th><th>SR − B&amp;H [95% CI]</th></tr></thead><tbody>${rows}</tbody></table>
<div class="grid"><div class="chart"><canvas id="equity-${id}"></canvas></div><div class="chart"><canvas id="drawdown-${id}"></canvas></div>
<div class="chart"><canvas id="positions-${id}"></canvas></div></div></section>`;
}

function chartId(asset: string): string {
  return asset.replace(/[^A-Za-z0-9_-]/g, '_');
}

function walkForwardHtml(w: WalkForwardSummary): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const pm = (st: { mean: number; std: number; n: number }, d = 2) => (st.n > 1 ? `${f(st.mean, d)} ± ${f(st.std, d)}` : f(st.mean, d));
  const agg = w.agents.map((a) => `<tr class="${a.kind}"><td>${esc(a.name)}</td><td>${a.windows}</td>`
    + `<td>${pm(a.cumulativeReturn)}</td><td>${pm(a.sharpeRatio, 3)}</td><td>${pm(a.annualizedVolatility)}</td><td>${pm(a.maxDrawdown)}</td>`
    + `<td>${a.beatsBuyAndHold ? `${a.beatsBuyAndHold.windows}/${a.beatsBuyAndHold.of} (${f(100 * a.beatsBuyAndHold.share, 0)}%)` : '—'}</td>`
    + `<td>${a.vsBuyAndHold ? `${f(a.vsBuyAndHold.observed)} [${f(a.vsBuyAndHold.lower)}, ${f(a.vsBuyAndHold.upper)}]` : a.srMinusBuyAndHold ? f(a.srMinusBuyAndHold.mean) : '—'}</td></tr>`).join('');
  const fa = featuredAgent(w);
  const bh = w.agents.findIndex((a) => a.name === BUY_AND_HOLD);
  const showDiff = fa >= 0 && bh >= 0;
  const rows = w.windows.map((win) => `<tr><td>${win.index + 1}</td><td>${win.train.start} .. ${win.train.end}</td><td>${win.test.start} .. ${win.test.end}</td>`
    + win.agents.map((a) => `<td>${f(a.sharpeRatio, 3)}</td>`).join('')
    + (showDiff ? `<td>${f(win.agents[fa]!.sharpeRatio - win.agents[bh]!.sharpeRatio, 3)}</td>` : '') + '</tr>').join('');
  const n = w.windows.length;
  return `<section data-walk-forward="${esc(w.asset)}"><h2>${esc(w.asset)} walk-forward: ${n} window${n === 1 ? '' : 's'}, ${schemeLabel(w.scheme)} (${w.start} .. ${w.end})</h2>
<p class="notes">Over windows: mean ± std of each window's value (itself the mean over seeds); the last column is a bootstrap interval of the mean SR − B&amp;H over windows.</p>
<table><thead><tr><th>agent</th><th>windows</th><th>CR %</th><th>SR</th><th>AV %</th><th>MDD %</th><th>beats B&amp;H</th><th>mean SR − B&amp;H [95% CI]</th></tr></thead><tbody>${agg}</tbody></table>
<div class="chart"><canvas id="wf-sr-${chartId(w.asset)}"></canvas></div>
<details><summary>Sharpe ratio per window</summary><table class="wf"><thead><tr><th>#</th><th>train</th><th>test</th>${w.agents.map((a) => `<th>${esc(a.name)}</th>`).join('')}${showDiff ? `<th>${esc(w.agents[fa]!.name)} − B&amp;H</th>` : ''}</tr></thead><tbody>${rows}</tbody></table></details></section>`;
}

// Runs in the browser: draws every chart from the embedded JSON and records how many it drew.
const PAGE_SCRIPT = `
(function () {
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
  const charts = [];
  const line = (canvas, labels, datasets, title, extra) => charts.push(new Chart(canvas, {
    type: 'line',
    data: { labels, datasets: datasets.map((d, i) => Object.assign({ borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], pointRadius: 0, borderWidth: 1.5, spanGaps: true }, d)) },
    options: Object.assign({ animation: false, responsive: true, maintainAspectRatio: false, interaction: { mode: 'index', intersect: false },
      plugins: { title: { display: true, text: title } }, scales: { x: { ticks: { maxTicksLimit: 8 } } } }, extra || {}),
  }));
  for (const a of data.assets) {
    const id = a.asset.replace(/[^A-Za-z0-9_-]/g, '_');
    line(document.getElementById('equity-' + id), a.dates, a.agents.map((g) => ({ label: g.name + (g.seeds > 1 ? ' (mean of ' + g.seeds + ')' : ''), data: g.equity })), a.asset + ': equity (growth of 1)');
    line(document.getElementById('drawdown-' + id), a.dates, a.agents.map((g) => ({ label: g.name, data: g.drawdown })), a.asset + ': drawdown %');
    const trained = a.agents.filter((g) => g.kind !== 'baseline');
    const shown = trained.length ? trained : a.agents.slice(0, 1);
    line(document.getElementById('positions-' + id), a.dates.slice(0, -1), shown.map((g) => ({ label: g.name, data: g.positions, stepped: true })), a.asset + ': positions (+1 long, -1 short, 0 flat)', { scales: { x: { ticks: { maxTicksLimit: 8 } }, y: { min: -1.2, max: 1.2 } } });
  }
  for (const w of data.walkForward) {
    line(document.getElementById('wf-sr-' + w.id), w.labels, w.agents.map((g) => ({ label: g.name, data: g.sr, pointRadius: 3 })), w.asset + ': Sharpe ratio per walk-forward window (x: first test date)');
  }
  const grid = document.getElementById('training');
  const panels = [['episodeReturn', 'mean episode return'], ['entropy', 'policy entropy'], ['klRef', 'KL to reference'], ['valueLoss', 'value loss']];
  if (data.training.length) for (const [key, title] of panels) {
    const div = document.createElement('div'); div.className = 'chart';
    const canvas = document.createElement('canvas'); canvas.id = 'training-' + key; div.appendChild(canvas); grid.appendChild(div);
    line(canvas, data.training[0].update, data.training.map((t) => ({ label: t.label, data: t[key] })), title, { scales: { x: { title: { display: true, text: 'update' } } } });
  }
  else grid.textContent = 'No trained runs in this report.';
  window.__reportCharts = charts.length;
})();
`;
