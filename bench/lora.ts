/**
 * Top-K training against LoRA on the same budget: the demo's settings (src/cli/reproduce.ts DEMO_CONFIG:
 * the shipped flag-news-small, its top 2 layers, the built-in synthetic market with 85% informative
 * news), trained once with `adapter none` (the top layers' weights and the final norm train) and once
 * with `adapter lora` (adapters on the same top layers, every base weight frozen), each for the same
 * number of environment steps and seeds. Reported per mode: training steps/s, the peak RSS of the
 * process that trained it, the trainable parameter count, and the held-out Sharpe ratio and cumulative
 * return of the greedy trained policy (flag-trader evaluate) next to Buy & Hold on the same days.
 *
 *   node --import tsx bench/lora.ts [--json] [--steps 3000] [--seeds 1] [--modes topk,lora] [KEY=VALUE ...]
 *
 * Each (mode, seed) runs in its own child process, so that its peak RSS is its own. KEY=VALUE
 * arguments are training-config fields for both modes (e.g. lora_r=16 frozen_dtype=bfloat16); the
 * LoRA mode adapts all seven linear maps with r 8, alpha 16 unless told otherwise. The default budget
 * is the demo's 3,000 steps, far below the paper's 13,860: a single short run says little about what
 * either mode can learn (docs/learning.md shows how far apart single runs are).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { parseTrainConfig } from '../src/rl/config.js';
import { runTraining } from '../src/rl/run.js';
import { evaluateRun } from '../src/eval/evaluate.js';
import { DEMO_CONFIG } from '../src/cli/reproduce.js';
import { positiveInt } from '../src/util/options.js';
import { seedListOption } from '../src/util/seed.js';
import { configField } from './config-field.js';
import { MODES, type Mode } from './train-modes.js';


export interface LoraBenchRow {
  mode: Mode;
  seed: number;
  steps: number;
  trainableParameters: number;
  trainSeconds: number;
  stepsPerSecond: number;
  peakRssBytes: number;
  heldOut: { start: string; end: string; sharpe: number; cumulativeReturn: number; buyAndHoldSharpe: number; buyAndHoldReturn: number };
}

/** One (mode, seed): train, evaluate, report. Runs in the child process. */
async function child(mode: Mode, seed: number, steps: number, fields: Record<string, unknown>): Promise<LoraBenchRow> {
  const overrides = mode === 'topk' ? Object.fromEntries(Object.entries(fields).filter(([k]) => !k.startsWith('lora_'))) : fields;
  const config = parseTrainConfig({ ...DEMO_CONFIG, total_timesteps: steps, ...MODES[mode], ...overrides, seed }, `bench/lora (${mode})`);
  const dir = mkdtempSync(join(tmpdir(), `flag-lora-bench-${mode}-`));
  try {
    const t0 = performance.now();
    const r = await runTraining({ out: join(dir, 'run'), config });
    const trainSeconds = (performance.now() - t0) / 1000;
    const [policy, bh] = await evaluateRun({ run: join(dir, 'run'), baselines: ['buy-and-hold'] });
    return {
      mode, seed, steps: r.updatesDone * r.record.derived.batch_size, trainableParameters: r.record.policy.parameters, trainSeconds,
      stepsPerSecond: (r.updatesDone * r.record.derived.batch_size) / trainSeconds,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      heldOut: {
        start: policy!.start, end: policy!.end, sharpe: policy!.metrics.sharpeRatio, cumulativeReturn: policy!.metrics.cumulativeReturn,
        buyAndHoldSharpe: bh!.metrics.sharpeRatio, buyAndHoldReturn: bh!.metrics.cumulativeReturn,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Options { json?: boolean; steps: number; seeds: number[]; modes: Mode[]; child?: string }

async function main(fields: Record<string, unknown>, o: Options): Promise<void> {
  if (o.child !== undefined) {
    const [mode, seed] = o.child.split(':');
    process.stdout.write(`${JSON.stringify(await child(mode as Mode, Number(seed), o.steps, fields))}\n`);
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const kv = Object.entries(fields).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`);
  const rows: LoraBenchRow[] = [];
  for (const seed of o.seeds) {
    for (const mode of o.modes) {
      // The same loader this process runs under (tsx, or none for the compiled file).
      const r = spawnSync(process.execPath, [...process.execArgv, self, '--child', `${mode}:${seed}`, '--steps', String(o.steps), ...kv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26 });
      if (r.status !== 0) throw new Error(`bench/lora: the ${mode} run of seed ${seed} failed (exit ${r.status})`);
      const row = JSON.parse(r.stdout.trim().split('\n').pop()!) as LoraBenchRow;
      rows.push(row);
      if (!o.json) {
        const h = row.heldOut;
        process.stdout.write(`${mode.padEnd(4)} seed ${seed}: ${row.trainableParameters} trainable parameters, ${row.steps} steps in ${row.trainSeconds.toFixed(0)} s = ${row.stepsPerSecond.toFixed(2)} steps/s, peak RSS ${(row.peakRssBytes / 2 ** 20).toFixed(0)} MiB; held-out ${h.start}..${h.end}: SR ${h.sharpe.toFixed(2)}, CR ${(100 * h.cumulativeReturn).toFixed(1)}% (Buy & Hold SR ${h.buyAndHoldSharpe.toFixed(2)}, CR ${(100 * h.buyAndHoldReturn).toFixed(1)}%)\n`);
      }
    }
  }
  const config = { ...DEMO_CONFIG, total_timesteps: o.steps, ...fields };
  if (o.json) process.stdout.write(`${JSON.stringify({ config, modes: MODES, rows })}\n`);
}

await new Command('bench/lora.ts')
  .description('top-K training against LoRA on the same budget: steps/s, peak RSS, held-out Sharpe ratio on the synthetic demo market')
  .argument('[fields...]', 'training-config fields for both modes, KEY=VALUE', configField, {})
  .option('--json', 'print one JSON object')
  .option('--steps <n>', 'environment steps per run (total_timesteps)', positiveInt('--steps'), DEMO_CONFIG.total_timesteps)
  .option('--seeds <list>', 'training seeds, comma-separated', seedListOption('--seeds'), [1])
  .option('--modes <list>', 'topk and/or lora, comma-separated', (v: string) => v.split(',').map((s) => {
    if (s !== 'topk' && s !== 'lora') throw new Error(`--modes: expected topk or lora, got ${JSON.stringify(s)}`);
    return s as Mode;
  }), ['topk', 'lora'] as Mode[])
  .addOption(new Option('--child <mode:seed>', 'internal: run one mode and seed, print its JSON row').hideHelp())
  .action((fields: Record<string, unknown>, o: Options) => main(fields, o))
  .parseAsync();
