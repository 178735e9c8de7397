import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { launchChromium, seriousViolations, signIn, watchPage } from './support/browser.js';
import { startTestServer, type TestServer } from './support/test-server.js';
import { describeNeeding } from './support/tools.js';

type Json = Record<string, unknown>;

describeNeeding(['chromium'], "a trader's and a risk officer's work in the console", () => {
  let api: TestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const call = async (
    role: keyof TestServer['tokens'],
    method: string,
    path: string,
    body?: unknown,
  ) => {
    const response = await api.request(method, `/api/v1${path}`, {
      token: api.tokens[role],
      ...(body === undefined ? {} : { body }),
    });
    const json = (await response.json()) as Json;
    expect(response.status, `${method} ${path}: ${JSON.stringify(json)}`).toBeLessThan(300);
    return json;
  };
  const pageAs = async (role: keyof TestServer['tokens']): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    contexts.push(context);
    const page = await context.newPage();
    await signIn(page, api.server.url, api.tokens[role]);
    return page;
  };
  /** A strategy trading on paper: created, approved by the risk officer, started. */
  const paper = async (name: string): Promise<string> => {
    const created = await call('trader', 'POST', '/strategies', {
      name,
      kind: 'sma_crossover',
      symbols: ['BTCUSDT'],
      timeframe: '1m',
      parameters: { fastPeriod: 10, slowPeriod: 30 },
      capitalRequest: 10_000,
    });
    const strategyId = created['strategyId'] as string;
    const submitted = await call('trader', 'POST', `/strategies/${strategyId}/submit`, {});
    await call(
      'risk_officer',
      'POST',
      `/approvals/${submitted['approvalRequestId'] as string}/approve`,
      {},
    );
    await call('trader', 'POST', `/strategies/${strategyId}/start-paper`, {});
    return strategyId;
  };

  beforeAll(async () => {
    // Paper trading on a synthetic market: a placed order reaches the paper exchange and rests.
    api = await startTestServer('console_trading', {
      PAPER_TRADING: 'on',
      MARKET_FEED: 'synthetic',
      MARKET_FEED_SPEED: '60',
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    for (const context of contexts) await context.close();
    await browser.close();
    await api.stop();
  });

  it('places a manual order from the overview, once for a double click, with one Idempotency-Key', async () => {
    await paper('Console manual orders');
    const trader = await pageAs('trader');
    const watch = watchPage(trader);
    const keys: string[] = [];
    trader.on('request', (request) => {
      if (request.method() === 'POST' && request.url().endsWith('/api/v1/orders'))
        keys.push(request.headers()['idempotency-key'] ?? 'none');
    });
    await trader.goto(`${api.server.url}/console/#/overview`);
    const form = trader.getByRole('region', { name: 'Place a manual order' });
    await form
      .getByLabel('Strategy')
      .getByRole('option', { name: /Console manual orders/ })
      .waitFor({ state: 'attached' });
    await form.getByLabel('Side').selectOption('buy');
    await form.getByLabel('Type').selectOption('limit');
    await form.getByLabel('Quantity').fill('0.01');
    await form.getByLabel('Limit price').fill('20000');
    expect(await seriousViolations(trader)).toEqual([]);
    await form.getByRole('button', { name: 'Place order' }).dblclick();
    const placed = trader.getByTestId('order-placed');
    await placed.waitFor();
    const clientOrderId = (await placed.locator('code').textContent()) ?? '';
    expect(clientOrderId).toMatch(/^m-/);
    // However many sends the double click made, they all carried the same key: one order.
    expect(keys.length).toBeGreaterThanOrEqual(1);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    // The next order is another submission: another key.
    await form.getByLabel('Quantity').fill('0.02');
    await form.getByRole('button', { name: 'Place order' }).click();
    await trader.getByTestId('order-placed').filter({ hasNotText: clientOrderId }).waitFor();
    expect(new Set(keys).size).toBe(2);
    expect(watch.problems).toEqual([]);
  });

  it('sends the same form again after a lost answer: one order', async () => {
    const strategyId = await paper('Console lost answer');
    const trader = await pageAs('trader');
    // The first order reaches the server, but its answer is lost on the way back.
    let lost = false;
    await trader.route('**/api/v1/orders', async (route) => {
      if (lost || route.request().method() !== 'POST') return route.continue();
      lost = true;
      await route.fetch();
      return route.abort();
    });
    await trader.goto(`${api.server.url}/console/#/overview`);
    const form = trader.getByRole('region', { name: 'Place a manual order' });
    const option = form.getByLabel('Strategy').getByRole('option', { name: /Console lost answer/ });
    await option.waitFor({ state: 'attached' });
    await form.getByLabel('Strategy').selectOption({ label: (await option.textContent()) ?? '' });
    await form.getByLabel('Type').selectOption('limit');
    await form.getByLabel('Quantity').fill('0.01');
    await form.getByLabel('Limit price').fill('1000');
    await form.getByRole('button', { name: 'Place order' }).click();
    await trader.getByRole('alert').filter({ hasText: 'QCAT does not answer' }).waitFor();
    await form.getByRole('button', { name: 'Place order' }).click();
    await trader.getByTestId('order-placed').waitFor();
    const orders = await vi.waitFor(
      async () => {
        const found = (await call('trader', 'GET', `/orders?strategyId=${strategyId}`))[
          'orders'
        ] as Json[];
        if (found.length === 0) throw new Error('the placed order is not listed');
        return found;
      },
      { timeout: 60_000, interval: 500 },
    );
    expect(orders.map((o) => o['clientOrderId'])).toEqual([
      await trader.getByTestId('order-placed').locator('code').textContent(),
    ]);
  });

  it("says the server's refusal in words: the strategy was paused while the form was open", async () => {
    const strategyId = await paper('Console paused');
    const trader = await pageAs('trader');
    await trader.goto(`${api.server.url}/console/#/overview`);
    const form = trader.getByRole('region', { name: 'Place a manual order' });
    const option = form.getByLabel('Strategy').getByRole('option', { name: /Console paused/ });
    await option.waitFor({ state: 'attached' });
    await form.getByLabel('Strategy').selectOption({ label: (await option.textContent()) ?? '' });
    await form.getByLabel('Type').selectOption('market');
    await form.getByLabel('Quantity').fill('0.01');
    await call('trader', 'POST', `/strategies/${strategyId}/pause`, { reason: 'console test' });
    await form.getByRole('button', { name: 'Place order' }).click();
    const said = trader.getByRole('alert').filter({ hasText: 'STRATEGY_NOT_TRADING' });
    await said.waitFor();
    expect(await said.textContent()).toMatch(
      /^This conflicts with the current state: strategy .* is paused: only paper and live strategies trade \(STRATEGY_NOT_TRADING\)$/,
    );
  });

  it('cancels an open order from the overview', async () => {
    await paper('Console cancel');
    const trader = await pageAs('trader');
    await trader.goto(`${api.server.url}/console/#/overview`);
    const form = trader.getByRole('region', { name: 'Place a manual order' });
    const option = form.getByLabel('Strategy').getByRole('option', { name: /Console cancel/ });
    await option.waitFor({ state: 'attached' });
    await form.getByLabel('Strategy').selectOption({ label: (await option.textContent()) ?? '' });
    await form.getByLabel('Type').selectOption('limit');
    await form.getByLabel('Quantity').fill('0.01');
    // Far below the market (and above the minimum notional): it rests on the paper exchange.
    await form.getByLabel('Limit price').fill('1000');
    await form.getByRole('button', { name: 'Place order' }).click();
    const clientOrderId = (await trader.getByTestId('order-placed').locator('code').textContent())!;
    // The engine takes it in at its next cycle; the paper exchange accepts it.
    let order: Json = {};
    for (let waited = 0; waited < 60_000 && order['status'] !== 'accepted'; waited += 500) {
      const response = await api.request('GET', `/api/v1/orders/${clientOrderId}`, {
        token: api.tokens.trader,
      });
      if (response.status === 200) order = (await response.json()) as Json;
      if (order['status'] !== undefined && order['status'] !== 'accepted') break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(order, JSON.stringify(order)).toMatchObject({ status: 'accepted' });
    // The overview hears of the accepted order over the live feed and offers to cancel it.
    const cancel = trader.getByRole('button', { name: `Cancel order ${clientOrderId}` });
    await cancel.waitFor({ timeout: 60_000 });
    expect(await seriousViolations(trader)).toEqual([]);
    await cancel.click();
    await trader
      .getByRole('row')
      .filter({ hasText: clientOrderId.slice(0, 12) })
      .waitFor({
        state: 'detached',
        timeout: 60_000,
      });
    expect((await call('trader', 'GET', `/orders/${clientOrderId}`))['status']).toBe('cancelled');
  });

  it('offers order entry and cancelling only to roles that may', async () => {
    const viewer = await pageAs('viewer');
    await viewer.goto(`${api.server.url}/console/#/overview`);
    await viewer.getByRole('heading', { name: 'Open orders' }).waitFor();
    expect(await viewer.getByRole('heading', { name: 'Place a manual order' }).count()).toBe(0);
    expect(await viewer.getByRole('button', { name: /^Cancel order/ }).count()).toBe(0);
    // A forged order from the viewer's key is refused by the server.
    const forged = await api.request('POST', '/api/v1/orders', {
      token: api.tokens.viewer,
      body: { strategyId: 'x', symbol: 'BTCUSDT', side: 'buy', type: 'market', quantity: 1 },
    });
    expect(forged.status).toBe(403);
  });

  it('switches an automation capability off and on again after a confirmation', async () => {
    const before = (await call('admin', 'GET', '/automation'))['capabilities'] as Json[];
    const capability = before.find((c) => (c['requires'] as string[]).length === 0)!;
    const title = capability['title'] as string;
    const was = capability['enabled'] as boolean;
    const officer = await pageAs('risk_officer');
    await officer.goto(`${api.server.url}/console/#/automation`);
    const turn = was ? 'off' : 'on';
    const button = officer.getByRole('button', { name: `Switch ${title} ${turn}…` });
    await button.click();
    const dialog = officer.getByRole('dialog', { name: `Switch ${title} ${turn}?` });
    await dialog.waitFor();
    expect(await seriousViolations(officer)).toEqual([]);
    // Cancelled: nothing changes.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    const enabledOf = async () =>
      ((await call('admin', 'GET', '/automation'))['capabilities'] as Json[]).find(
        (c) => c['name'] === capability['name'],
      )?.['enabled'];
    expect(await enabledOf()).toBe(was);
    await button.click();
    await dialog.getByRole('button', { name: `Switch ${turn}` }).click();
    await officer.getByRole('button', { name: `Switch ${title} ${was ? 'on' : 'off'}…` }).waitFor();
    expect(await enabledOf()).toBe(!was);
    // A role without automation:configure sees no switch.
    const trader = await pageAs('trader');
    await trader.goto(`${api.server.url}/console/#/automation`);
    await trader.getByRole('heading', { name: title }).waitFor();
    expect(await trader.getByRole('button', { name: /^Switch / }).count()).toBe(0);
  });
});
