import { buildConsole } from '../../console/build.js';

/**
 * The web console's bundle (dist/console), built before the integration tier so the browser
 * specs and every server the tests start serve the current sources (ADR 023). esbuild takes
 * well under a second.
 */
export default async function setup(): Promise<void> {
  await buildConsole({ quiet: true });
}
