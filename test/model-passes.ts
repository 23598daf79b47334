// Shorthands for the model's own passes that many model tests take (test/model-ref.ts is the
// independent float64 decoder they are compared with).
import type { LlamaModel, TrainableActivations } from '../src/model/llama.js';
import { TokenSegments } from '../src/model/segments.js';

/** The frozen layers' output [T, C] (the boundary) through the model's prefix cache, split at `ends`. */
export function boundaryOf(model: LlamaModel, ids: ArrayLike<number>, ends: number[] = []): Float32Array {
  return model.forward(TokenSegments.of(ids, ends), { to: model.frozenLayers, cache: model.prefixCache, outRows: 'all' });
}

/** LlamaModel.backward, returning the gradient w.r.t. the input rows as a new array. */
export function backwardInput(model: LlamaModel, acts: TrainableActivations, dHidden: Float32Array): Float32Array {
  const dInput = new Float32Array(acts.layers[0]!.T * model.dims.C);
  model.backward(acts, dHidden, { dInput });
  return dInput;
}
