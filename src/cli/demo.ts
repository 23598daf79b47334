import type { Command } from 'commander';

/** Placeholder: filled in by the demo work. */
export function registerDemo(_program: Command): void {}
