import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { summarizeAsset, type AssetSummary } from './summary.js';
import type { ReportInput } from './types.js';
import { summarizeWalkForward, type WalkForwardSummary } from './walk-forward.js';

/**
 * Write report.md, report.html and report.json (the summaries) into `dir`; returns the summaries
 * (per asset, and per walk-forward when the input has any).
 */
export function writeReport(dir: string, input: ReportInput): { summaries: AssetSummary[]; walkForward: WalkForwardSummary[]; files: string[] } {
  const summaries = input.assets.map((a) => summarizeAsset(a, input));
  const walkForward = (input.walkForward ?? []).map((w) => summarizeWalkForward(w, input));
  const md = renderMarkdown(input, summaries, walkForward);
  const files = [join(dir, 'report.md'), join(dir, 'report.html'), join(dir, 'report.json')];
  writeFileAtomic(files[0]!, md);
  writeFileAtomic(files[1]!, renderHtml(input, summaries, md, walkForward));
  writeFileAtomic(files[2]!, JSON.stringify({
    title: input.title, notes: input.notes, ...(input.warnings?.length ? { warnings: input.warnings } : {}), summaries,
    ...(walkForward.length ? { walkForward } : {}),
  }, null, 2));
  return { summaries, walkForward, files };
}
