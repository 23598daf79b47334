import type { Action, Observation } from '../env/types.js';

/**
 * One interface for every trader: rule baselines, the trained LLM policy, API-backed LLMs.
 * `act` may be async (API agents); backtests await it.
 */
export interface Agent {
  readonly name: string;
  /** Called at the start of each episode. */
  reset?(seed?: number): void;
  act(observation: Observation): Action | Promise<Action>;
}
