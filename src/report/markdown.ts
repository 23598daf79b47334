import type { AssetSummary, Stat } from './summary.js';
import type { ReportInput } from './types.js';

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : String(x));
const pm = (s: Stat, d = 2) => (s.n > 1 ? `${fmt(s.mean, d)} ± ${fmt(s.std, d)}` : fmt(s.mean, d));

/** The report as Markdown: one table per asset (mean ± std over seeds) and the Sharpe-difference CIs. */
export function renderMarkdown(input: ReportInput, summaries: AssetSummary[]): string {
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
  return lines.join('\n');
}
