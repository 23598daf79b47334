import type { Command } from 'commander';

/** Placeholder: filled in by the backtest work. */
export function registerBacktest(_program: Command): void {}
