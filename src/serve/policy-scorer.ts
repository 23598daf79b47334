/**
 * Scorers over real policies, for `flag-trader serve`:
 *   - a trained run (`--run DIR`): the policy its config builds, with the run's trained weights;
 *   - a model (`--model M`): the LLM read zero-shot through the LM head's action-word logits (no training).
 * An LLM policy reads chat messages directly (the client's prompt, ChatML, then the answer prefix
 * `{"action": "`); every policy also scores an observation, rendered exactly as in training.
 */
import { basename, resolve } from 'node:path';
import { ACTIONS, type Observation } from '../env/types.js';
import { getBackend } from '../kernels/index.js';
import { ACTION_ANSWER_PREFIX } from '../model/heads.js';
import { loadModel } from '../model/load.js';
import { loadParamsInto, readPolicyTensors } from '../rl/checkpoint.js';
import { trainedWeightsPath } from '../rl/evaluate.js';
import { LlmPolicy } from '../rl/llm-policy.js';
import { createPolicy } from '../rl/policies.js';
import { savedTensors, type ActorCritic } from '../rl/policy.js';
import { readRunRecord } from '../rl/run.js';
import { HttpError } from './http-errors.js';
import type { ActionProbabilities, ActionScorer, ScorerMessage } from './scorer.js';

function probabilities(logProbs: Float64Array): ActionProbabilities {
  const p = {} as ActionProbabilities;
  ACTIONS.forEach((a, i) => { p[a] = Math.exp(logProbs[i]!); });
  return p;
}

/** A scorer over any trained ActorCritic; prompts are read only by LLM policies. */
export function policyScorer(policy: ActorCritic, id: string): ActionScorer {
  const scorer: ActionScorer = {
    id,
    scoreObservation(obs: Observation): ActionProbabilities {
      return probabilities(policy.forward(policy.encode(obs), false).logProbs);
    },
  };
  if (policy instanceof LlmPolicy) {
    const llm = policy;
    scorer.scorePrompt = (messages: ScorerMessage[]): ActionProbabilities => {
      let text: string;
      try {
        text = llm.tokenizer.applyChatTemplate(messages, true) + ACTION_ANSWER_PREFIX;
      } catch (err) {
        throw new HttpError(400, `messages cannot be rendered for this model: ${(err as Error).message}`, 'invalid_request_error', 'messages');
      }
      const limit = llm.model.config.max_position_embeddings;
      const ids = llm.tokenizer.encode(text).length;
      if (ids > limit) throw new HttpError(400, `the prompt is ${ids} tokens; this model takes at most ${limit}`, 'invalid_request_error', 'messages', 'context_length_exceeded');
      // The system turn is usually the same across requests: cache its frozen-layer output.
      const marks = messages[0]?.role === 'system' ? [llm.tokenizer.applyChatTemplate(messages.slice(0, 1), false).length] : [];
      return probabilities(llm.forward(llm.encodeText(text, marks)).logProbs);
    };
  }
  return scorer;
}

/** The trained policy of a run directory (flag-trader train --out DIR). */
export async function runScorer(run: string, id?: string): Promise<ActionScorer> {
  const record = readRunRecord(run);
  const policy = await createPolicy(record.config);
  if (policy.fingerprint !== record.hashes.model) {
    throw new Error(`${run}: the policy built from its config has fingerprint ${policy.fingerprint}, but the run recorded ${record.hashes.model}`);
  }
  const path = trainedWeightsPath(run);
  loadParamsInto(savedTensors(policy), readPolicyTensors(path).params, path);
  return policyScorer(policy, id ?? `flag-trader-${basename(resolve(run))}`);
}

export interface ModelScorerOptions {
  id?: string;
  tokenizer?: string;
  /** Seed of random:<config> weights. */
  seed?: number;
  /** Prompt style used when rendering observations (/v1/act). */
  promptStyle?: 'full' | 'compact';
}

/** An untrained LLM read zero-shot through its LM head's action-word logits. */
export async function modelScorer(spec: string, o: ModelScorerOptions = {}): Promise<ActionScorer> {
  const model = await loadModel(spec, { ...(o.seed !== undefined && { seed: o.seed }), ...(o.tokenizer !== undefined && { tokenizerPath: o.tokenizer }) });
  const policy = new LlmPolicy({
    model, backend: getBackend(), trainableLayers: 1, head: 'lm', seed: 0,
    prompt: { ...(o.promptStyle !== undefined && { style: o.promptStyle }) },
  });
  return policyScorer(policy, o.id ?? spec);
}
