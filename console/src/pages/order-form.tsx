import { useState } from 'preact/hooks';
import { call, get, query } from '../api.js';
import { ErrorNote, messageOf, Panel, useLoad } from '../components.js';

interface TradingStrategy {
  strategyId: string;
  name: string;
  symbols: string[];
  status: string;
}
interface Placed {
  clientOrderId: string;
  portfolioId: string;
  position: string;
}

const TYPES = ['market', 'limit', 'stop'] as const;
type OrderType = (typeof TYPES)[number];

/**
 * A manual order for a paper or live strategy (POST /orders). One Idempotency-Key per
 * submission: a double click or a resend of the same form places one order (ADR 018); the key
 * changes once the order is placed or the form is edited.
 */
export function OrderForm({ onPlaced }: { onPlaced: (position: string) => void }) {
  const strategies = useLoad(async () =>
    (
      await get<{ strategies: TradingStrategy[] }>(`/strategies${query({ limit: 200 })}`)
    ).strategies.filter((s) => s.status === 'paper' || s.status === 'live'),
  );
  const [strategyId, setStrategyId] = useState('');
  const [symbol, setSymbol] = useState('');
  const [side, setSide] = useState<'buy' | 'sell'>('buy');
  const [type, setType] = useState<OrderType>('limit');
  const [quantity, setQuantity] = useState('');
  const [price, setPrice] = useState('');
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [placed, setPlaced] = useState<Placed | undefined>(undefined);

  const list = strategies.data ?? [];
  const strategy = list.find((s) => s.strategyId === strategyId) ?? list[0];
  const symbols = strategy?.symbols ?? [];
  const chosenSymbol = symbols.includes(symbol) ? symbol : (symbols[0] ?? '');
  /** Any edit makes it another order: a new key. */
  const edit =
    <T,>(set: (value: T) => void) =>
    (value: T) => {
      set(value);
      setKey(crypto.randomUUID());
    };

  const submit = async (event: Event) => {
    event.preventDefault();
    if (strategy === undefined) return;
    setBusy(true);
    setError(undefined);
    try {
      const answer = (await call('/orders', {
        method: 'POST',
        idempotencyKey: key,
        body: {
          strategyId: strategy.strategyId,
          symbol: chosenSymbol,
          side,
          type,
          quantity: Number(quantity),
          ...(type === 'limit' ? { limitPrice: Number(price) } : {}),
          ...(type === 'stop' ? { stopPrice: Number(price) } : {}),
        },
      })) as Placed;
      setPlaced(answer);
      setKey(crypto.randomUUID());
      onPlaced(answer.position);
    } catch (failure) {
      setPlaced(undefined);
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title="Place a manual order">
      <ErrorNote error={strategies.error} />
      {strategies.data !== undefined && list.length === 0 ? (
        <p class="muted">No strategy trades (paper or live): a manual order needs one.</p>
      ) : (
        <form class="controls" onSubmit={(event) => void submit(event)}>
          <label>
            Strategy{' '}
            <select
              value={strategy?.strategyId ?? ''}
              onChange={(e) => {
                edit(setStrategyId)(e.currentTarget.value);
              }}
            >
              {list.map((s) => (
                <option key={s.strategyId} value={s.strategyId}>
                  {s.name} ({s.status})
                </option>
              ))}
            </select>
          </label>
          <label>
            Symbol{' '}
            <select
              value={chosenSymbol}
              onChange={(e) => {
                edit(setSymbol)(e.currentTarget.value);
              }}
            >
              {symbols.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
          <label>
            Side{' '}
            <select
              value={side}
              onChange={(e) => {
                edit(setSide)(e.currentTarget.value === 'sell' ? 'sell' : 'buy');
              }}
            >
              <option value="buy">buy</option>
              <option value="sell">sell</option>
            </select>
          </label>
          <label>
            Type{' '}
            <select
              value={type}
              onChange={(e) => {
                edit(setType)(TYPES.find((t) => t === e.currentTarget.value) ?? 'market');
              }}
            >
              {TYPES.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <label>
            Quantity{' '}
            <input
              type="number"
              step="any"
              min="0"
              required
              value={quantity}
              onInput={(e) => {
                edit(setQuantity)(e.currentTarget.value);
              }}
            />
          </label>
          {type !== 'market' && (
            <label>
              {type === 'limit' ? 'Limit price' : 'Stop price'}{' '}
              <input
                type="number"
                step="any"
                min="0"
                required
                value={price}
                onInput={(e) => {
                  edit(setPrice)(e.currentTarget.value);
                }}
              />
            </label>
          )}
          <button type="submit" disabled={busy || strategy === undefined}>
            Place order
          </button>
        </form>
      )}
      <ErrorNote error={error} />
      {placed && (
        <p role="status" data-testid="order-placed">
          Order <code>{placed.clientOrderId}</code> requested for {placed.portfolioId}; the engine
          takes it in at its next cycle.
        </p>
      )}
    </Panel>
  );
}

/** Asks to cancel an open order (DELETE /orders/:id); the server's refusal is said in words. */
export function CancelOrder(props: {
  clientOrderId: string;
  onCancelled: (position: string) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [asked, setAsked] = useState(false);
  const cancel = async () => {
    setBusy(true);
    try {
      const answer = (await call(`/orders/${encodeURIComponent(props.clientOrderId)}`, {
        method: 'DELETE',
        body: { reason: 'cancelled in the console' },
      })) as Placed;
      setAsked(true);
      setError(undefined);
      props.onCancelled(answer.position);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  if (asked) return <span data-testid="cancel-requested">cancel requested</span>;
  return (
    <>
      <button
        type="button"
        disabled={busy}
        aria-label={`Cancel order ${props.clientOrderId}`}
        onClick={() => void cancel()}
      >
        Cancel
      </button>
      <ErrorNote error={error} />
    </>
  );
}
