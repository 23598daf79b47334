/**
 * Trading transcripts: pretraining documents in the exact chat format the LLM policy reads, each
 * ending with the answer that hindsight shows was right. They are how a model made here learns what
 * a real instruction-tuned LLM brings to the paper's agent: that a prompt like ours asks for an action,
 * and that news like "raises its outlook" tends to precede rises.
 *
 * For a market series (the built-in synthetic market of a seed that is never evaluated), episodes of
 * `episodeSteps` days run back to back through the series, with actions drawn uniformly from a seeded
 * stream so that the account section (position, return so far) varies as it does in training. Day t's
 * document is
 *
 *   chat template(system = instructions, user = market + account, generation prompt)
 *   + '{"action": "' + label + '"}'
 *
 * where the label is the answer that hindsight shows was right, one of two kinds:
 *
 *   trend:  R = ln(P[t + horizon] / P[t]);  buy if R > holdBand, sell if R < -holdBand, hold otherwise
 *           (what happened next: noisy, and available for any market);
 *   regime: the synthetic market's regime of day t, which sets the drift from t to t+1: bull -> buy,
 *           bear -> sell, flat -> hold (what a perfect smoother of the prices reveals afterwards).
 *
 * Both look past day t, which is why the source must be a market the agent is never evaluated on
 * (the seeds read are recorded in the model's metadata, and the point-in-time guard refuses them).
 * Days without a label (closer than `horizon` to the series' end, for trend) give no document.
 */
import { ACTIONS, type Action, type Observation } from '../env/types.js';
import { TradingEnv } from '../env/trading-env.js';
import type { MarketSeries } from '../data/series.js';
import type { Regime } from '../data/synthetic.js';
import { renderPrompt, type PromptOptions } from '../prompt/render.js';
import { ACTION_ANSWER_PREFIX, toChatMessages } from '../prompt/chat.js';
import type { ChatRenderer } from '../model/chat-template.js';
import { Rng } from '../util/rng.js';

export interface TranscriptOptions {
  /** The answer of day t, or null when day t has none. */
  labelOf: (t: number) => Action | null;
  /** Days of price history in each prompt (the environment's lookback). */
  lookback: number;
  /** Steps per episode (the account restarts flat at each episode's start). */
  episodeSteps: number;
  /** Seed of the action stream that varies the account. */
  seed: number;
  /** Prompt settings: the same the policy uses (style, mode wording, budgets). */
  prompt: PromptOptions;
}

export interface Transcript {
  /** Day index t in the series. */
  t: number;
  label: Action;
  /** The observation the prompt renders (its account shows the episode's random actions). */
  observation: Observation;
  /** The whole document: the policy's prompt text, then the answer. */
  text: string;
  /** Characters at the end of `text` after the answer prefix: the action word and '"}' (the target). */
  answerChars: number;
}

/** The hindsight trend label of day t, or null when t + horizon is past the series' end. */
export function trendLabel(prices: ArrayLike<number>, t: number, horizon: number, holdBand: number): Action | null {
  if (!(Number.isInteger(horizon) && horizon >= 1)) throw new Error(`transcript horizon must be an integer >= 1, got ${horizon}`);
  if (!(holdBand >= 0)) throw new Error(`transcript hold band must be >= 0, got ${holdBand}`);
  if (t + horizon > prices.length - 1) return null;
  const r = Math.log(prices[t + horizon]! / prices[t]!);
  return r > holdBand ? 'buy' : r < -holdBand ? 'sell' : 'hold';
}

const REGIME_ACTION: Record<Regime, Action> = { bull: 'buy', bear: 'sell', flat: 'hold' };

/** The regime label of day t: the position whose expected return from t to t+1 is best. */
export function regimeLabel(regimes: readonly Regime[], t: number): Action {
  const r = regimes[t];
  if (r === undefined) throw new Error(`no regime for day ${t} (the market has ${regimes.length})`);
  return REGIME_ACTION[r];
}

/** The answer text that follows the prompt for an action (the JSON the instructions ask for). */
export function answerText(action: Action): string {
  return `${ACTION_ANSWER_PREFIX}${action}"}`;
}

/** Every labelled day of the series as a transcript, in day order. */
export function marketTranscripts(series: MarketSeries, chat: ChatRenderer, o: TranscriptOptions): Transcript[] {
  if (!(Number.isInteger(o.episodeSteps) && o.episodeSteps >= 1)) throw new Error(`transcript episode steps must be an integer >= 1, got ${o.episodeSteps}`);
  const n = series.prices.length;
  const rng = new Rng(o.seed);
  const out: Transcript[] = [];
  for (let start = o.lookback; start < n - 1; start += o.episodeSteps) {
    const env = new TradingEnv(series, {
      mode: 'benchmark', lookback: o.lookback, start: 'first', windowStart: start,
      windowEnd: Math.min(start + o.episodeSteps, n - 1), maxEpisodeSteps: o.episodeSteps,
    });
    let obs = env.reset();
    for (;;) {
      const label = o.labelOf(obs.t);
      if (label !== null) {
        const rendered = renderPrompt(obs, o.prompt);
        const text = chat.applyChatTemplate(toChatMessages(rendered), true);
        out.push({ t: obs.t, label, observation: obs, text: text + answerText(label), answerChars: label.length + 2 });
      }
      const r = env.step(ACTIONS[rng.int(ACTIONS.length)]!);
      if (r.done) break;
      obs = r.observation;
    }
  }
  return out;
}
