/**
 * The agent-environment loop for one episode: reset, then ask the agent for an action on each day and
 * step until done. Records everything a backtest needs, step by step.
 */
import type { Agent } from '../agents/agent.js';
import { ACTIONS, type Action } from '../env/types.js';
import type { TradingEnv } from '../env/trading-env.js';

export interface EpisodeRecord {
  /** Decision dates, one per step. */
  dates: string[];
  /** Date of the price that closes the last step (the episode's final day). */
  endDate: string;
  actions: Action[];
  /** Position held over each step (benchmark: +1/-1/0; account: sign of shares). */
  positions: number[];
  /** Reward of each step (log units, costs included). */
  rewards: number[];
  /** ln(P[t+1]/P[t]) of each step. */
  logReturns: number[];
  /** Cost of each step (log units). */
  costs: number[];
  /** Portfolio value after each step (benchmark: exp(cumulative reward)). */
  values: number[];
  endReason: 'window-end' | 'max-steps' | 'ruined';
}

/**
 * Run one episode. `seed` goes to both env.reset and agent.reset (agents with randomness restart
 * their stream from it). An action outside ACTIONS is an error naming the agent and the date.
 */
export async function runEpisode(env: TradingEnv, agent: Agent, seed?: number): Promise<EpisodeRecord> {
  agent.reset?.(seed);
  let obs = env.reset(seed);
  const rec: EpisodeRecord = {
    dates: [], endDate: obs.date, actions: [], positions: [], rewards: [], logReturns: [], costs: [], values: [], endReason: 'window-end',
  };
  for (;;) {
    const action = await agent.act(obs);
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new Error(`agent ${agent.name} returned ${JSON.stringify(action)} on ${obs.date}; expected one of ${ACTIONS.join(', ')}`);
    }
    const r = env.step(action);
    rec.dates.push(r.info.date);
    rec.actions.push(action);
    rec.positions.push(r.info.position);
    rec.rewards.push(r.reward);
    rec.logReturns.push(r.info.logReturn);
    rec.costs.push(r.info.cost);
    if (r.info.value === undefined) throw new Error(`environment gave no portfolio value on ${r.info.date}`);
    rec.values.push(r.info.value);
    obs = r.observation;
    if (r.done) {
      rec.endDate = obs.date;
      rec.endReason = r.info.endReason ?? 'window-end';
      return rec;
    }
  }
}
