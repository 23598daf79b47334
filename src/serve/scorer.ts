/**
 * What `flag-trader serve` serves: an ActionScorer gives a probability for each legal action, from
 * chat messages (an LLM policy reading the prompt) and/or from an observation. The server picks the
 * action from those probabilities: argmax when greedy, a tempered sample from a seeded Rng otherwise.
 */
import { ACTIONS, type Action, type Observation } from '../env/types.js';
import type { Agent } from '../agents/agent.js';
import type { Rng } from '../util/rng.js';

export type ActionProbabilities = Record<Action, number>;

export interface ScorerMessage {
  role: string;
  content: string;
}

export interface ActionScorer {
  /** Model id shown by GET /v1/models and expected in the `model` field of requests. */
  id: string;
  /** Probabilities over ['buy','sell','hold'] from chat messages; absent when the scorer needs an observation. */
  scorePrompt?(messages: ScorerMessage[]): Promise<ActionProbabilities> | ActionProbabilities;
  /** Probabilities over ['buy','sell','hold'] for the observation of one day. */
  scoreObservation(obs: Observation): Promise<ActionProbabilities> | ActionProbabilities;
}

/** Largest accepted |sum - 1| of a scorer's probabilities (float32 softmax outputs sum to 1 +- ~1e-7). */
export const PROBABILITY_SUM_TOLERANCE = 1e-4;

/**
 * Check a scorer's output: exactly the keys buy, sell, hold, each finite and in [0, 1], summing to 1
 * within PROBABILITY_SUM_TOLERANCE. Returns a clean copy; throws with a message naming the problem.
 */
export function checkProbabilities(p: unknown): ActionProbabilities {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new Error(`expected an object {buy, sell, hold}, got ${describe(p)}`);
  const rec = p as Record<string, unknown>;
  const extra = Object.keys(rec).filter((k) => !(ACTIONS as readonly string[]).includes(k));
  if (extra.length > 0) throw new Error(`unexpected key(s) ${extra.join(', ')}; expected exactly buy, sell, hold`);
  const out = {} as ActionProbabilities;
  let sum = 0;
  for (const a of ACTIONS) {
    const v = rec[a];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) throw new Error(`probability of ${a} must be a finite number in [0, 1], got ${describe(v)}`);
    out[a] = v;
    sum += v;
  }
  if (Math.abs(sum - 1) > PROBABILITY_SUM_TOLERANCE) throw new Error(`probabilities sum to ${sum}, expected 1`);
  return out;
}

/** The most probable action; ties go to the first in ACTIONS order (buy, sell, hold). */
export function greedyAction(p: ActionProbabilities): Action {
  let best: Action = ACTIONS[0];
  for (const a of ACTIONS) if (p[a] > p[best]) best = a;
  return best;
}

/**
 * Sample from p tempered by T > 0: weights w_a = p_a^(1/T), i.e. softmax(log p / T). Computed as
 * exp((log p_a - max log p) / T) so that small T does not underflow every weight to 0; a zero
 * probability stays impossible at every temperature.
 */
export function sampleAction(p: ActionProbabilities, temperature: number, rng: Rng): Action {
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new Error(`sampleAction needs a finite temperature > 0, got ${temperature}`);
  const logs = ACTIONS.map((a) => (p[a] > 0 ? Math.log(p[a]) : -Infinity));
  const top = Math.max(...logs);
  const w = logs.map((l) => (l === -Infinity ? 0 : Math.exp((l - top) / temperature)));
  return ACTIONS[rng.categorical(w)]!;
}

/**
 * A baseline scorer: probability 1 on the rule agent's action, 0 on the others. It is not a model
 * and has no view of a prompt (it needs the prices in the observation), so it has no scorePrompt:
 * chat requests must carry the observation (see server.ts). It exists so the server can be run and
 * tested end to end before a trained policy exists.
 */
export function agentScorer(agent: Agent, id: string): ActionScorer {
  return {
    id,
    async scoreObservation(obs: Observation): Promise<ActionProbabilities> {
      const action = await agent.act(obs);
      const p = { buy: 0, sell: 0, hold: 0 };
      p[action] = 1;
      return p;
    },
  };
}

function describe(v: unknown): string {
  if (typeof v === 'number') return String(v);
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 80)}...` : s;
}
