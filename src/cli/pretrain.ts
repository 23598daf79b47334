/**
 * `flag-trader pretrain`: causal language-model pretraining (src/pretrain/) on a dated corpus with a
 * text cutoff, ending in a Hugging Face model folder that `train --model DIR` uses.
 *
 * Settings: the defaults of src/pretrain/config.ts, then `--config FILE` (JSON/YAML), then one flag per
 * field (`--steps 2000`, `--learning-rate 1e-3`). Corpus sources are repeatable options. Progress goes
 * to stderr (a bar with tokens/s and ETA on a terminal, a line per held-out evaluation otherwise).
 */
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { readConfigFile } from '../rl/config.js';
import { parsePretrainConfig, parsePretrainFlag, pretrainFieldDocs, PRETRAIN_KEYS } from '../pretrain/config.js';
import { parseTextSource, type CorpusSource } from '../pretrain/corpus.js';
import { pretrain, type HeldOutLoss } from '../pretrain/pretrain.js';
import { camel } from './train.js';
import { parseSeedValue, seedListOption } from '../util/seed.js';
import { parsePositiveInt } from './reproduce.js';
import { parseNonNegative } from './backtest.js';
import { isIsoDate } from '../data/dates.js';
import type { PromptStyle } from '../prompt/render.js';

/** Settings that are seeds: their flags go through the one seed parser (src/util/seed.ts) first. */
const PRETRAIN_SEED_KEYS: readonly string[] = ['seed', 'model_seed'];

function collect(v: string, prev: string[] = []): string[] {
  return [...prev, v];
}

function parseDate(v: string): string {
  if (!isIsoDate(v)) throw new InvalidArgumentError(`expected a date YYYY-MM-DD, got ${JSON.stringify(v)}`);
  return v;
}

function parseProbability(v: string): number {
  const x = Number(v);
  if (v.trim() === '' || !(x >= 0 && x <= 1)) throw new InvalidArgumentError(`expected a probability in [0, 1], got ${JSON.stringify(v)}`);
  return x;
}

export function formatHeldOut(h: readonly HeldOutLoss[]): string {
  return h.map((x) => `${x.group} ${x.nats_per_token.toFixed(3)} nats/token, ${x.nats_per_byte.toFixed(3)} nats/byte (${x.tokens} tokens)`).join('; ');
}

export function registerPretrain(program: Command): void {
  const cmd = program
    .command('pretrain')
    .description('pretrain a small Llama language model on dated financial text with a point-in-time cutoff; writes a Hugging Face model folder')
    .requiredOption('--out <dir>', 'output model folder (config.json, model.safetensors, tokenizer.json, flag_trader.json; train/ holds the checkpoint and log)')
    .option('--investorbench <file>', 'INVESTOR-BENCH JSON file: its news and 10-K/10-Q items, dated (repeatable)', collect, [])
    .option('--synthetic-seeds <list>', 'built-in synthetic market seeds whose generated headlines join the corpus (undated)', seedListOption('--synthetic-seeds'))
    .option('--synthetic-days <n>', 'days of each synthetic market', parsePositiveInt, 2000)
    .option('--transcript-seeds <list>', 'synthetic market seeds whose days become trading transcripts: the policy\'s prompt in the model\'s chat template, answered with the hindsight label of --transcript-label (undated)', seedListOption('--transcript-seeds'))
    .addOption(new Option('--transcript-news <variant>', 'transcripts\' headlines: tags (with "(Sentiment: ...)"), words (without), or both (each day twice)').choices(['tags', 'words', 'both']).default('both'))
    .addOption(new Option('--transcript-label <kind>', 'the answer of a transcript: regime (the synthetic regime of the day: bull buy, bear sell, flat hold) or trend (the sign of the next --transcript-horizon days\' log return outside the hold band)').choices(['regime', 'trend']).default('regime'))
    .option('--transcript-horizon <days>', 'trend labels: days ahead whose log return labels a transcript: buy above the hold band, sell below minus it, hold inside', parsePositiveInt, 10)
    .option('--transcript-hold-band <r>', 'trend labels: log-return band labelled hold', parseNonNegative, 0.02)
    .option('--transcript-news-accuracy <p>', 'news accuracy of the transcripts\' markets (the demo market\'s)', parseProbability, 0.85)
    .addOption(new Option('--transcript-prompt-style <style>', 'prompt style of the transcripts (the policy\'s prompt_style)').choices(['compact', 'full']).default('compact'))
    .option('--text <file[@date]>', 'plain text file, one document per paragraph; undated unless @YYYY-MM-DD (repeatable)', collect, [])
    .option('--jsonl <file>', 'JSONL file, one {"text": ..., "date": "YYYY-MM-DD" | null} per line (repeatable)', collect, [])
    .option('--text-cutoff <date>', 'keep only text dated on or before this day (recorded in the model; evaluation windows must start after it)', parseDate)
    .option('--no-text-cutoff', 'no cutoff (the model then carries no point-in-time guarantee)')
    .option('--resume', 'continue the run in --out from its last checkpoint (same settings and corpus)')
    .option('--config <file>', 'settings file (JSON/YAML) with the fields below')
    .option('--quiet', 'no progress output');
  for (const d of pretrainFieldDocs()) {
    cmd.addOption(new Option(`${d.flag} <value>`, `${d.doc} (default: ${JSON.stringify(d.default)})`).argParser((raw: string) => {
      try { return parsePretrainFlag(d.key, PRETRAIN_SEED_KEYS.includes(d.key) ? String(parseSeedValue(d.flag, raw)) : raw); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
    }));
  }
  cmd.action(async (opts: Record<string, unknown>) => {
    const fields: Record<string, unknown> = opts.config ? readConfigFile(opts.config as string) : {};
    for (const key of PRETRAIN_KEYS) {
      const v = opts[camel(key.replace(/_/g, '-'))];
      if (v !== undefined) fields[key] = v;
    }
    // commander: --text-cutoff DATE gives the string, --no-text-cutoff gives false, neither gives undefined.
    const cutoffOpt = opts.textCutoff as string | boolean | undefined;
    if (cutoffOpt === undefined || cutoffOpt === true) throw new Error('pretrain needs --text-cutoff YYYY-MM-DD (the last day of text the model may read), or --no-text-cutoff to record that it has none');
    const config = parsePretrainConfig(fields, opts.config ? `${String(opts.config)} + command line` : 'command line');
    const sources: CorpusSource[] = [
      ...(opts.investorbench as string[]).map((path) => ({ kind: 'investorbench' as const, path: resolve(path) })),
      ...((opts.syntheticSeeds as number[] | undefined) ?? []).map((seed) => ({ kind: 'synthetic' as const, seed, days: opts.syntheticDays as number, newsTags: true })),
      ...((opts.transcriptSeeds as number[] | undefined) ?? []).flatMap((seed) => (opts.transcriptNews === 'both' ? [true, false] : [opts.transcriptNews === 'tags']).map((newsTags) => ({
        kind: 'transcripts' as const, seed, days: opts.syntheticDays as number, newsTags, newsAccuracy: opts.transcriptNewsAccuracy as number,
        label: opts.transcriptLabel as 'regime' | 'trend', horizon: opts.transcriptHorizon as number, holdBand: opts.transcriptHoldBand as number, promptStyle: opts.transcriptPromptStyle as PromptStyle,
      }))),
      ...(opts.text as string[]).map((a) => parseTextSource(a)),
      ...(opts.jsonl as string[]).map((path) => ({ kind: 'jsonl' as const, path })),
    ];
    // The transcript settings shape transcripts only: given without --transcript-seeds they would do nothing.
    const stray = ['news', 'label', 'horizon', 'hold-band', 'news-accuracy', 'prompt-style'].map((f) => `transcript-${f}`).filter((f) => cmd.getOptionValueSource(camel(f)) === 'cli');
    if (stray.length > 0 && opts.transcriptSeeds === undefined) throw new Error(`${stray.map((f) => `--${f}`).join(', ')} without --transcript-seeds: there are no transcripts to apply ${stray.length > 1 ? 'them' : 'it'} to`);
    const textCutoff = cutoffOpt === false ? null : cutoffOpt;
    const quiet = Boolean(opts.quiet);
    const log = (m: string) => { if (!quiet) process.stderr.write(`${m}\n`); };
    let bar: cliProgress.SingleBar | null = null;
    const lines = !quiet && !process.stderr.isTTY;
    const result = await pretrain({
      out: opts.out as string, config, sources, textCutoff, resume: Boolean(opts.resume),
      command: ['flag-trader', ...process.argv.slice(2)].join(' '),
      log,
      onStart: ({ startStep, steps }) => {
        if (!quiet && process.stderr.isTTY) {
          bar = new cliProgress.SingleBar({
            format: 'pretrain |{bar}| {value}/{total} steps | loss {loss} | {tps} tokens/s | ETA {eta_formatted}',
            stream: process.stderr, hideCursor: true, etaBuffer: 50,
          }, cliProgress.Presets.shades_classic);
          bar.start(steps, startStep, { loss: '-', tps: '-' });
        }
      },
      onStep: (m) => {
        (bar as cliProgress.SingleBar | null)?.update(m.step, { loss: m.loss.toFixed(3), tps: m.tokens_per_sec.toFixed(0) });
        if (m.heldout && lines) process.stderr.write(`step ${m.step}/${config.steps}: train loss ${m.loss.toFixed(3)}, held-out ${formatHeldOut(m.heldout)}, ${m.tokens_per_sec.toFixed(0)} tokens/s\n`);
      },
    });
    (bar as cliProgress.SingleBar | null)?.stop();
    if (!quiet) {
      process.stdout.write(`pretrained ${result.steps} steps; corpus ${result.corpus.documents} documents (${result.corpus.dated} dated up to ${result.corpus.lastDate ?? '-'}, ${result.corpus.undated} undated), cutoff ${result.corpus.cutoff ?? 'none'}, hash ${result.corpus.hash.slice(0, 16)}\n`);
      process.stdout.write(`final train loss ${result.final.loss.toFixed(4)}; held-out ${formatHeldOut(result.final.heldout ?? [])}\n`);
      process.stdout.write(`model folder: ${result.out}\n`);
    }
  });
}
