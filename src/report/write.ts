import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { summarizeAsset, type AssetSummary } from './summary.js';
import type { ReportInput } from './types.js';

/** Write report.md, report.html and report.json (the summaries) into `dir`; returns the summaries. */
export function writeReport(dir: string, input: ReportInput): { summaries: AssetSummary[]; files: string[] } {
  const summaries = input.assets.map((a) => summarizeAsset(a, input));
  const md = renderMarkdown(input, summaries);
  const files = [join(dir, 'report.md'), join(dir, 'report.html'), join(dir, 'report.json')];
  writeFileAtomic(files[0]!, md);
  writeFileAtomic(files[1]!, renderHtml(input, summaries, md));
  writeFileAtomic(files[2]!, JSON.stringify({ title: input.title, notes: input.notes, ...(input.warnings?.length ? { warnings: input.warnings } : {}), summaries }, null, 2));
  return { summaries, files };
}
