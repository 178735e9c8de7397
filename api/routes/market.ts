import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MarketDataStore } from '../../core/adapters/postgres/market-data-store.js';
import { TIMEFRAMES } from '../../core/strategies/kinds.js';
import type { ApiServices } from '../services.js';
import { HttpProblem } from '../problem.js';
import { cursorPage, instant, instantOf, pageLimit } from './conventions.js';

const symbol = z.string().regex(/^[A-Z0-9]{2,20}$/, 'expected a symbol such as BTCUSDT');

const instrument = z.object({
  symbol: z.string(),
  base: z.string(),
  quote: z.string(),
  tickSize: z.number(),
  lotSize: z.number(),
  minNotional: z.number().describe('smallest price × quantity of an order, in the quote currency'),
});

const candle = z.object({
  openTime: z.string().describe('UTC start of the bar'),
  open: z.number(),
  high: z.number(),
  low: z.number(),
  close: z.number(),
  volume: z.number().describe('traded quantity in the base currency'),
});

const candleQuery = z
  .object({
    symbol,
    timeframe: z.enum(TIMEFRAMES).default('1m'),
    from: instant.optional().describe('bars opening at or after this instant'),
    to: instant.optional().describe('bars opening before this instant (exclusive)'),
    after: instant.optional().describe('cursor: the nextCursor of the previous page'),
    limit: pageLimit(5000, 1000),
    latest: z
      .enum(['true', 'false'])
      .optional()
      .describe('true: the newest `limit` bars of the range, still oldest first, with no cursor'),
  })
  .strict()
  .refine((q) => !(q.latest === 'true' && q.after !== undefined), {
    message: 'latest=true answers the newest bars in one page: it takes no cursor',
    path: ['after'],
  });

/** Market data (ADR 007): instruments and candles, straight from the `qcat_market` tables. */
export const marketRoutes: FastifyPluginAsyncZod<{ runtime: Pick<ApiServices, 'pool'> }> = async (
  fastify,
  { runtime },
) => {
  const store = new MarketDataStore(runtime.pool);

  fastify.get(
    '/instruments',
    {
      config: { permission: 'market:read' },
      schema: {
        tags: ['market'],
        summary: 'Every instrument: base and quote currency, tick size, lot size, minimum notional',
        response: { 200: z.object({ instruments: z.array(instrument) }) },
      },
    },
    async () => ({ instruments: await store.listInstruments() }),
  );

  fastify.get(
    '/candles',
    {
      config: { permission: 'market:read' },
      schema: {
        tags: ['market'],
        summary: 'Candles of one symbol and timeframe, oldest first; cursor-paginated by open time',
        querystring: candleQuery,
        response: {
          200: z.object({
            symbol: z.string(),
            timeframe: z.enum(TIMEFRAMES),
            candles: z.array(candle),
            nextCursor: z.string().nullable(),
          }),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const from = instantOf('from', q.from)?.getTime();
      const to = instantOf('to', q.to)?.getTime();
      const after = instantOf('after', q.after)?.getTime();
      if (from !== undefined && to !== undefined && from >= to)
        throw new HttpProblem(400, 'VALIDATION_FAILED', 'from must be before to');
      const rows = await store.candlePage({
        symbol: q.symbol,
        timeframe: q.timeframe,
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
        ...(after === undefined ? {} : { after }),
        limit: q.latest === 'true' ? q.limit : q.limit + 1,
        newest: q.latest === 'true',
      });
      // An empty answer for a symbol nobody ever stored is more likely a typo than a quiet market.
      if (rows.length === 0 && !(await store.getInstrument(q.symbol)))
        throw new HttpProblem(404, 'INSTRUMENT_NOT_FOUND', `no instrument ${q.symbol}`);
      const { page, nextCursor } = cursorPage(rows, q.limit, (c) =>
        new Date(c.openTime).toISOString(),
      );
      return {
        symbol: q.symbol,
        timeframe: q.timeframe,
        candles: page.map((c) => ({
          openTime: new Date(c.openTime).toISOString(),
          open: c.open,
          high: c.high,
          low: c.low,
          close: c.close,
          volume: c.volume,
        })),
        nextCursor,
      };
    },
  );
};
