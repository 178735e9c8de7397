import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { toolPath } from './tools.js';

/**
 * Debian's chromium driven by playwright-core (no browser download). `launch` gives every
 * browser a fresh, throw-away profile (its own --user-data-dir), so nothing of a user's or an
 * earlier run's state is seen; the flags keep it from reaching the network on its own.
 */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: toolPath('chromium'),
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const axeSource = readFileSync(
  createRequire(import.meta.url).resolve('axe-core/axe.min.js'),
  'utf8',
);

export interface Violation {
  id: string;
  impact: string | null;
  help: string;
  nodes: number;
}

/**
 * axe-core run in the page: the serious and critical violations of WCAG 2 A/AA rules. Evaluated
 * through the DevTools protocol, not as a <script> tag, which the console's CSP would refuse.
 */
export async function seriousViolations(page: Page): Promise<Violation[]> {
  await page.evaluate(axeSource);
  // A string, run in the page: this project's type checking knows no DOM.
  const violations = await page.evaluate<Violation[]>(`
    axe
      .run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
      .then((result) => result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length })))
  `);
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** Signs in to the console at `url` with `token`; resolves once the role is shown. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('API key').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('role').waitFor();
}

/** Collects what the page reports: script errors and Content-Security-Policy refusals. */
export function watchPage(page: Page): { problems: string[] } {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text()))
      problems.push(`CSP: ${message.text()}`);
  });
  return { problems };
}

/**
 * Screenshots of the console's pages, for people to look at (not compared). Each run writes them
 * to `test-results/screenshots/`; with `QCAT_UPDATE_SCREENSHOTS=1` it refreshes the committed ones
 * in `docs/screenshots/` that the README and the user guide show, so a plain run leaves the tree
 * as it found it.
 */
const ROOT = new URL('../..', import.meta.url).pathname;
export const SCREENSHOTS =
  process.env['QCAT_UPDATE_SCREENSHOTS'] === '1'
    ? join(ROOT, 'docs', 'screenshots')
    : join(ROOT, 'test-results', 'screenshots');

/** The visible 1400×1000 of the page as `<SCREENSHOTS>/<name>.png` (a reasonable size). */
export async function shoot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), animations: 'disabled' });
}
