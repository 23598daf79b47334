/**
 * Scorers by name, for `flag-trader serve`: a map of factories, so a trained-policy scorer (a run
 * folder or a model) is one `registerScorer` call.
 *
 * Built in:
 *   agent  - a rule baseline from src/agents/registry.ts (options.agent = its name), probability 1 on
 *            its action. A baseline scorer, honestly labelled: id `baseline-NAME`.
 */
import { createAgent, type AgentOptions } from '../agents/registry.js';
import { agentScorer, type ActionScorer } from './scorer.js';

export interface ScorerOptions {
  /** Seed for scorers with randomness (default 0). */
  seed?: number;
  /** Model id to report instead of the scorer's default. */
  id?: string;
  /** Further scorer-specific options (agent name and its settings, run folder, model path, ...). */
  [option: string]: unknown;
}

export type ScorerFactory = (options: ScorerOptions) => ActionScorer | Promise<ActionScorer>;

interface Entry { description: string; create: ScorerFactory }

const factories = new Map<string, Entry>([
  ['agent', {
    description: 'a rule baseline agent (options.agent, e.g. momentum) with probability 1 on its action',
    create: (o) => {
      if (typeof o.agent !== 'string' || o.agent === '') throw new Error('scorer "agent" needs options.agent, the baseline agent name (e.g. momentum)');
      const agent = createAgent(o.agent, o as AgentOptions);
      agent.reset?.(o.seed ?? 0);
      return agentScorer(agent, o.id ?? `baseline-${o.agent}`);
    },
  }],
]);

/** Add (or replace) a scorer name. */
export function registerScorer(name: string, description: string, create: ScorerFactory): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`scorer name ${JSON.stringify(name)} must be lower-case letters, digits and dashes`);
  factories.set(name, { description, create });
}

export function scorerNames(): string[] {
  return [...factories.keys()];
}

export function scorerDescriptions(): Array<{ name: string; description: string }> {
  return [...factories].map(([name, e]) => ({ name, description: e.description }));
}

export async function createScorer(name: string, options: ScorerOptions = {}): Promise<ActionScorer> {
  const entry = factories.get(name);
  if (!entry) throw new Error(`unknown scorer ${JSON.stringify(name)}; known scorers: ${scorerNames().join(', ')}`);
  const scorer = await entry.create(options);
  if (typeof scorer.id !== 'string' || scorer.id === '') throw new Error(`scorer ${JSON.stringify(name)} has no id`);
  return scorer;
}
