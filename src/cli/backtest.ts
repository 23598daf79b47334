/**
 * `flag-trader backtest`: run one or more agents over a window of a market series and print the metrics.
 *
 * The whole file is loaded and the window [--start, --end] is backtested inside it, so the first
 * decision sees the days before --start as history (see src/eval/backtest.ts). Without --data the
 * built-in synthetic market (seeded by --seed; --synthetic-news-tags false drops its headlines'
 * sentiment tags) is used.
 *
 * Output: a table (human), or with --json exactly one JSON object for one agent and a JSON array of
 * such objects for several agents:
 *   {"agent","asset","start","end","prices": N,"mode","annualization":{"vol","sr"},
 *    "metrics":{"cumulativeReturn","sharpeRatio","annualizedVolatility","maxDrawdown","winRate",
 *               "trades","turnover","daysInMarket"},"positions":[...]}
 * cumulativeReturn, annualizedVolatility, maxDrawdown and winRate are in percent; the others are plain numbers.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import type { MarketSeries } from '../data/series.js';
import { loadSeries } from '../data/load.js';
import { syntheticMarket } from '../data/synthetic.js';
import { agentNames, createAgent, type AgentOptions } from '../agents/registry.js';
import type { Agent } from '../agents/agent.js';
import { backtest, type BacktestOptions, type BacktestResult } from '../eval/backtest.js';
import { parseAnnualization, type Annualization } from '../eval/metrics.js';
import { addApiAgentOptions } from '../agents/api-options.js';
import { ApiAgent } from '../agents/api-agent.js';
import { seedOption } from '../util/seed.js';
import { MAX_COST_BPS } from '../env/config.js';

/** The JSON shape printed per agent (CR, AV, MDD, win rate in percent). */
export interface BacktestRecord {
  agent: string;
  asset: string;
  start: string;
  end: string;
  prices: number;
  mode: string;
  annualization: Annualization;
  metrics: {
    cumulativeReturn: number;
    sharpeRatio: number;
    annualizedVolatility: number;
    maxDrawdown: number;
    winRate: number;
    trades: number;
    turnover: number;
    daysInMarket: number;
  };
  positions: number[];
}

export function toRecord(r: BacktestResult): BacktestRecord {
  const m = r.metrics;
  return {
    agent: r.agent, asset: r.asset, start: r.start, end: r.end, prices: r.prices, mode: r.mode, annualization: r.annualization,
    metrics: {
      cumulativeReturn: m.cumulativeReturn * 100,
      sharpeRatio: m.sharpeRatio,
      annualizedVolatility: m.annualizedVolatility * 100,
      maxDrawdown: m.maxDrawdown * 100,
      winRate: m.winRate * 100,
      trades: m.trades,
      turnover: m.turnover,
      daysInMarket: m.daysInMarket,
    },
    positions: r.positions,
  };
}

/** A header line and an aligned table, one row per result (all results share the window). */
export function formatTable(results: BacktestResult[]): string {
  if (results.length === 0) return '';
  const r0 = results[0]!;
  const ann = r0.annualization;
  const header = `${r0.asset} (${r0.source}): ${r0.start}..${r0.end}, N = ${r0.prices} prices, mode ${r0.mode}, annualization vol ${ann.vol} / sr ${ann.sr}`;
  const cols = ['agent', 'CR %', 'SR', 'AV %', 'MDD %', 'win %', 'trades'];
  const rows = results.map((r) => {
    const m = r.metrics;
    return [r.agent, (m.cumulativeReturn * 100).toFixed(2), m.sharpeRatio.toFixed(3), (m.annualizedVolatility * 100).toFixed(2),
      (m.maxDrawdown * 100).toFixed(2), (m.winRate * 100).toFixed(1), String(m.trades)];
  });
  const widths = cols.map((c, j) => Math.max(c.length, ...rows.map((row) => row[j]!.length)));
  const line = (cells: string[]) => cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]!) : c.padStart(widths[j]!))).join('  ').trimEnd();
  const out = [header, line(cols), ...rows.map(line)];
  for (const r of results) if (r.endReason === 'ruined') out.push(`note: ${r.agent} was ruined on ${r.end}; its row covers the window up to that day`);
  return out.join('\n') + '\n';
}

/** Run several agents over the same series and window, one after another. */
export async function runBacktests(series: MarketSeries, agents: Agent[], options: BacktestOptions): Promise<BacktestResult[]> {
  const results: BacktestResult[] = [];
  for (const a of agents) results.push(await backtest(series, a, options));
  return results;
}

// ---- option parsers: a bad value is a commander error (message on stderr, exit code 1) ----

export function parseInteger(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n)) throw new InvalidArgumentError(`expected an integer, got ${JSON.stringify(v)}`);
  return n;
}

function parseNonNegativeInteger(v: string): number {
  const n = parseInteger(v);
  if (n < 0) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

export function parseNonNegative(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`expected a non-negative number, got ${JSON.stringify(v)}`);
  return n;
}

/** Basis points from 0 to `max` (inclusive, or below it with `below`); the error names the flag. */
function bpsOption(flag: string, max: number, below = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n < 0 || (below ? n >= max : n > max)) {
      throw new InvalidArgumentError(`${flag}: expected basis points from 0 to ${below ? 'below ' : ''}${max} (${max} bps = 100%), got ${JSON.stringify(v)}`);
    }
    return n;
  };
}

function parsePositive(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`expected a positive number, got ${JSON.stringify(v)}`);
  return n;
}

/** A value flag rather than a --no-... switch, so it reads like train's and demo's --synthetic-news-tags. */
function parseBoolean(v: string): boolean {
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw new InvalidArgumentError(`expected true or false, got ${JSON.stringify(v)}`);
}

function parseAnnualizationOption(v: string): Annualization {
  try { return parseAnnualization(v); } catch (e) { throw new InvalidArgumentError((e as Error).message); }
}

/** --agent may be repeated and/or comma-separated. */
function collectAgents(v: string, prev: string[] | undefined): string[] {
  const names = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new InvalidArgumentError(`expected agent names, got ${JSON.stringify(v)}`);
  return [...(prev ?? []), ...names];
}

interface BacktestCliOptions {
  data?: string;
  format: 'auto' | 'yahoo' | 'long' | 'investorbench';
  ticker?: string;
  priceColumn?: string;
  dropInvalidRows?: boolean;
  start?: string;
  end?: string;
  agent?: string[];
  annualization: Annualization;
  costBps: number;
  seed: number;
  json?: boolean;
  mode: 'benchmark' | 'account';
  lookback: number;
  initialCash?: number;
  feeBps?: number;
  allowShort?: boolean;
  momentumLookback?: number;
  smaShort?: number;
  smaLong?: number;
  sentimentLongOnly?: boolean;
  syntheticNewsTags?: boolean;
}

export function registerBacktest(program: Command): void {
  const cmd = program
    .command('backtest')
    .description('backtest agents over a window of a market series and print CR, SR, AV, MDD')
    .option('--data <path>', 'market data file (Yahoo CSV, long CSV[.gz], INVESTOR-BENCH JSON); default: the built-in synthetic market')
    .addOption(new Option('--format <format>', 'data format').choices(['auto', 'yahoo', 'long', 'investorbench']).default('auto'))
    .option('--ticker <ticker>', 'ticker to select from a long-format file')
    .option('--price-column <name>', 'price column of a CSV file (default Adj Close)')
    .option('--drop-invalid-rows', 'drop rows with bad values (null, non-numeric, non-positive prices) instead of failing; each is reported')
    .option('--start <date>', 'first date of the window, YYYY-MM-DD (earlier dates are history only)')
    .option('--end <date>', 'last date of the window, YYYY-MM-DD')
    .option('--agent <names>', `agent(s), repeatable or comma-separated: ${agentNames().join(', ')} (default buy-and-hold)`, collectAgents)
    .addOption(new Option('--annualization <spec>', 'stock (252/252), crypto (vol 365, sr 252) or VOL,SR').argParser(parseAnnualizationOption).default(parseAnnualization('stock'), 'stock'))
    .option('--cost-bps <bps>', `benchmark mode: cost per unit of position change, in basis points (0 to ${MAX_COST_BPS})`, bpsOption('--cost-bps', MAX_COST_BPS), 0)
    .option('--seed <n>', 'seed for the synthetic market and for random agents', seedOption('--seed'), 0)
    .option('--json', 'print JSON (one object for one agent, an array for several)')
    .addOption(new Option('--mode <mode>', 'environment semantics').choices(['benchmark', 'account']).default('benchmark'))
    .option('--lookback <days>', 'days of history in each observation', parseNonNegativeInteger, 20)
    .option('--initial-cash <amount>', 'account mode: starting cash (default 100000)', parsePositive)
    .option('--fee-bps <bps>', 'account mode: fee per trade, in basis points of notional, below 10000 (default 0)', bpsOption('--fee-bps', 10_000, true))
    .option('--allow-short', 'account mode: let sell open a short position')
    .option('--momentum-lookback <days>', 'momentum agent: lookback in days (default 20)', parseInteger)
    .option('--sma-short <days>', 'sma-crossover agent: short window (default 5)', parseInteger)
    .option('--sma-long <days>', 'sma-crossover agent: long window (default 20)', parseInteger)
    .option('--sentiment-long-only', 'sentiment agent: negative news gives hold instead of sell')
    .option('--synthetic-news-tags <bool>', 'synthetic market: true (default) or false = headlines without their "(Sentiment: ...)" tag', parseBoolean);
  addApiAgentOptions(cmd)
    .action(async (opts: BacktestCliOptions) => {
      // Settings of the other mode would be silently ignored: refuse them instead.
      if (opts.mode === 'benchmark') {
        const accountOnly = [opts.initialCash !== undefined && '--initial-cash', opts.feeBps !== undefined && '--fee-bps', opts.allowShort && '--allow-short'].filter(Boolean);
        if (accountOnly.length) throw new Error(`${accountOnly.join(', ')} ${accountOnly.length > 1 ? 'apply' : 'applies'} only to --mode account (costs in benchmark mode: --cost-bps)`);
      } else if (opts.costBps !== 0) {
        throw new Error('--cost-bps only applies to --mode benchmark (fees in account mode: --fee-bps)');
      }
      if (opts.data !== undefined && opts.syntheticNewsTags !== undefined) {
        throw new Error('--synthetic-news-tags applies only to the built-in synthetic market (without --data)');
      }
      const names = opts.agent ?? ['buy-and-hold'];
      // Every flag goes to the factories: the API agent reads its --base-url/--api-* flags from here.
      const agentOptions: AgentOptions = { ...(opts as unknown as Record<string, unknown>), seed: opts.seed };
      if (opts.momentumLookback !== undefined) agentOptions.momentumLookback = opts.momentumLookback;
      if (opts.smaShort !== undefined) agentOptions.smaShort = opts.smaShort;
      if (opts.smaLong !== undefined) agentOptions.smaLong = opts.smaLong;
      if (opts.sentimentLongOnly) agentOptions.sentimentLongOnly = true;
      // Agents first: a misspelt name fails before any data is read.
      const agents = names.map((n) => createAgent(n, agentOptions));
      const series = opts.data
        ? await loadSeries({
          path: opts.data, format: opts.format,
          ...(opts.ticker !== undefined && { ticker: opts.ticker }),
          ...(opts.priceColumn !== undefined && { priceColumn: opts.priceColumn }),
          ...(opts.dropInvalidRows && { dropInvalidRows: true }),
        })
        : syntheticMarket({ seed: opts.seed, ...(opts.syntheticNewsTags !== undefined && { newsTags: opts.syntheticNewsTags }) });
      // Nothing is dropped or narrowed silently: say what the loader dropped and where the window was cut by the data.
      for (const w of series.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
      const first = series.dates[0]!, last = series.dates[series.dates.length - 1]!;
      if (opts.start !== undefined && opts.start < first) process.stderr.write(`warning: --start ${opts.start} is before the data's first date ${first}; the window starts at ${first}\n`);
      if (opts.end !== undefined && opts.end > last) process.stderr.write(`warning: --end ${opts.end} is after the data's last date ${last}; the window ends at ${last}\n`);
      const results = await runBacktests(series, agents, {
        annualization: opts.annualization, mode: opts.mode, costBps: opts.costBps, seed: opts.seed, lookback: opts.lookback,
        ...(opts.start !== undefined && { start: opts.start }),
        ...(opts.end !== undefined && { end: opts.end }),
        ...(opts.initialCash !== undefined && { initialCash: opts.initialCash }),
        ...(opts.feeBps !== undefined && { feeBps: opts.feeBps }),
        ...(opts.allowShort !== undefined && { allowShort: opts.allowShort }),
      });
      // API agents: save their per-day log when asked, and say how many replies could not be read.
      for (const a of agents) {
        if (!(a instanceof ApiAgent)) continue;
        if ((opts as unknown as { apiLog?: string }).apiLog) a.writeLog();
        const st = a.stats;
        process.stderr.write(`${a.name}: ${st.decisions} decisions, ${st.requests} requests, ${st.cacheHits} cache hits, ${st.unparseable} unparseable replies, ${st.fallbacks} fallbacks\n`);
      }
      if (opts.json) {
        const records = results.map(toRecord);
        process.stdout.write(JSON.stringify(records.length === 1 ? records[0] : records) + '\n');
      } else {
        process.stdout.write(formatTable(results));
      }
    });
}
