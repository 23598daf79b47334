// Headless Chromium for tests: Debian's `chromium` package driven by playwright-core (no browser download).
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.FLAG_TRADER_CHROMIUM ?? '/usr/bin/chromium';

/** Skip reason when no Chromium is installed (the test set-up installs it), else false. */
export function needsChromium(): string | false {
  return existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (Debian package chromium)`;
}

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The machine has no network: keep Chromium from trying to reach anything.
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}
