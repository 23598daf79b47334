import type { Command } from 'commander';

/** Placeholder: filled in by the model work. */
export function registerModel(_program: Command): void {}
