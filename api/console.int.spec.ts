import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/support/test-server.js';
import { consoleDirectory } from './console.js';

describe('the console files at /console (ADR 023)', () => {
  let api: TestServer;
  beforeAll(async () => {
    api = await startTestServer('console_files');
  });
  afterAll(async () => {
    await api.stop();
  });

  it('redirects /console to /console/ and serves the page without a key', async () => {
    const bare = await fetch(`${api.server.url}/console`, { redirect: 'manual' });
    expect(bare.status).toBe(302);
    expect(bare.headers.get('location')).toBe('/console/');
    const page = await fetch(`${api.server.url}/console/`, { redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await page.text();
    // No inline script: every <script> loads a file.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(attributes).toMatch(/\bsrc="[^"]+"/);
      expect(body?.trim()).toBe('');
    }
    const script = await fetch(`${api.server.url}/console/console.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toMatch(/javascript/);
  });

  it("keeps helmet's strict policy, less upgrade-insecure-requests on the console only", async () => {
    const page = await fetch(`${api.server.url}/console/`);
    const policy = page.headers.get('content-security-policy') ?? '';
    expect(policy).toContain("script-src 'self'");
    expect(policy).toContain("script-src-attr 'none'");
    expect(policy).toContain("object-src 'none'");
    expect(policy).not.toMatch(/script-src[^;]*unsafe/);
    expect(policy).not.toContain('upgrade-insecure-requests');
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    const apiAnswer = await api.request('GET', '/api/v1/session');
    expect(apiAnswer.headers.get('content-security-policy')).toContain('upgrade-insecure-requests');
  });

  it('answers a missing file with problem+json', async () => {
    const missing = await fetch(`${api.server.url}/console/nothing-here.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect(((await missing.json()) as { code: string }).code).toBe('NOT_FOUND');
  });

  it('ships under 250 KB of gzipped JavaScript (issue #20)', () => {
    const bundle = readFileSync(join(consoleDirectory(), 'console.js'));
    const gzipped = gzipSync(bundle).length;
    console.log(`console: ${bundle.length} bytes of JavaScript, ${gzipped} gzipped (limit 250000)`);
    expect(gzipped).toBeLessThan(250_000);
  });
});
