import type { Command } from 'commander';

/** Placeholder: filled in by the serve work. */
export function registerServe(_program: Command): void {}
