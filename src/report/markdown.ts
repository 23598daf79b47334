import type { AssetSummary, Stat } from './summary.js';
import type { ReportInput } from './types.js';
import { BUY_AND_HOLD } from './summary.js';
import { featuredAgent, schemeLabel, type WalkForwardSummary } from './walk-forward.js';

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const pm = (s: Stat, d = 2) => (s.n > 1 ? `${fmt(s.mean, d)} ± ${fmt(s.std, d)}` : fmt(s.mean, d));

/**
 * The report as Markdown: one table per asset (mean ± std over seeds) and the Sharpe-difference CIs,
 * then one walk-forward section per walk-forward asset.
 */
export function renderMarkdown(input: ReportInput, summaries: AssetSummary[], walkForward: WalkForwardSummary[] = []): string {
  const lines: string[] = [`# ${input.title}`, ''];
  for (const w of input.warnings ?? []) lines.push(`> **Warning:** ${w}`, '');
  for (const n of input.notes) lines.push(`- ${n}`);
  lines.push('', 'CR, AV and MDD in percent; SR annualised with a zero risk-free rate; mean ± sample std over seeds where an agent has several runs.', '');
  for (const s of summaries) {
    lines.push(`## ${s.asset}: ${s.start} .. ${s.end} (${s.prices} prices)`, '');
    lines.push('| agent | runs | CR % | SR | AV % | MDD % | SR − B&H [95% CI] |');
    lines.push('|---|---:|---:|---:|---:|---:|---|');
    for (const a of s.agents) {
      const ci = a.vsBuyAndHold
        ? `${fmt(a.vsBuyAndHold.observed)} [${fmt(a.vsBuyAndHold.lower)}, ${fmt(a.vsBuyAndHold.upper)}]`
        : '—';
      lines.push(`| ${a.name} | ${a.cumulativeReturn.n} | ${pm(a.cumulativeReturn)} | ${pm(a.sharpeRatio, 3)} | ${pm(a.annualizedVolatility)} | ${pm(a.maxDrawdown)} | ${ci} |`);
    }
    lines.push('');
  }
  const any = summaries.flatMap((s) => s.agents).find((a) => a.vsBuyAndHold);
  if (any?.vsBuyAndHold) {
    lines.push(`The interval is a paired circular block bootstrap over test days (block ${any.vsBuyAndHold.block} days, ${any.vsBuyAndHold.resamples} resamples), averaging the difference over seeds on each resample.`, '');
  }
  for (const w of walkForward) lines.push(...walkForwardMarkdown(w));
  return lines.join('\n');
}

/** A walk-forward section: aggregates over windows, then the Sharpe ratio of every agent per window. */
export function walkForwardMarkdown(w: WalkForwardSummary): string[] {
  const lines: string[] = [];
  const n = w.windows.length;
  lines.push(`## ${w.asset} walk-forward: ${n} window${n === 1 ? '' : 's'}, ${schemeLabel(w.scheme)} (${w.start} .. ${w.end})`, '');
  lines.push(`Over windows: mean ± sample std of each window's value (itself the mean over seeds); "beats B&H" counts windows whose SR is above Buy & Hold's.`, '');
  lines.push('| agent | windows | CR % | SR | AV % | MDD % | beats B&H | mean SR − B&H [95% CI] |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---|');
  for (const a of w.agents) {
    const beats = a.beatsBuyAndHold ? `${a.beatsBuyAndHold.windows}/${a.beatsBuyAndHold.of} (${fmt(100 * a.beatsBuyAndHold.share, 0)}%)` : '—';
    const ci = a.vsBuyAndHold
      ? `${fmt(a.vsBuyAndHold.observed)} [${fmt(a.vsBuyAndHold.lower)}, ${fmt(a.vsBuyAndHold.upper)}]`
      : a.srMinusBuyAndHold ? fmt(a.srMinusBuyAndHold.mean) : '—';
    lines.push(`| ${a.name} | ${a.windows} | ${pm(a.cumulativeReturn)} | ${pm(a.sharpeRatio, 3)} | ${pm(a.annualizedVolatility)} | ${pm(a.maxDrawdown)} | ${beats} | ${ci} |`);
  }
  lines.push('');
  const ci = w.agents.find((a) => a.vsBuyAndHold)?.vsBuyAndHold;
  if (ci) lines.push(`The interval is a percentile bootstrap of the mean over windows (${ci.n} windows resampled with replacement, ${ci.resamples} resamples, seeded).`, '');
  const f = featuredAgent(w);
  const bh = w.agents.findIndex((a) => a.name === BUY_AND_HOLD);
  const diff = f >= 0 && bh >= 0 ? ` | ${w.agents[f]!.name} − B&H` : '';
  lines.push('Sharpe ratio per window (mean over seeds):', '');
  lines.push(`| # | train | test | ${w.agents.map((a) => a.name).join(' | ')}${diff} |`);
  lines.push(`|---:|---|---|${w.agents.map(() => '---:|').join('')}${diff ? '---:|' : ''}`);
  for (const win of w.windows) {
    const d = diff ? ` | ${fmt(win.agents[f]!.sharpeRatio - win.agents[bh]!.sharpeRatio, 3)}` : '';
    lines.push(`| ${win.index + 1} | ${win.train.start} .. ${win.train.end} | ${win.test.start} .. ${win.test.end} | ${win.agents.map((a) => fmt(a.sharpeRatio, 3)).join(' | ')}${d} |`);
  }
  lines.push('');
  return lines;
}
