import type { Command } from 'commander';

/** Placeholder: filled in by the train work. */
export function registerTrain(_program: Command): void {}
