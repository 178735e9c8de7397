import { useState } from 'preact/hooks';
import { call, get, query } from '../api.js';
import { ErrorNote, messageOf, Panel, useLoad } from '../components.js';
import { fmtTime } from '../format.js';

type ScopeType = 'portfolio' | 'strategy' | 'symbol';
interface ScopeLimits {
  scopeType: ScopeType;
  scopeId: string;
  isDefault: boolean;
  version: number;
  changedBy: string | null;
  changedAt: string | null;
  limits: Record<string, unknown>;
}

/** The limits the form edits (docs/risk.md): plain numbers, each with the scopes that have it. */
const FIELDS: readonly { name: string; label: string; scopes: readonly ScopeType[] }[] = [
  {
    name: 'maxOrderNotional',
    label: 'Max order notional',
    scopes: ['portfolio', 'strategy', 'symbol'],
  },
  {
    name: 'maxPositionNotional',
    label: 'Max position notional',
    scopes: ['portfolio', 'strategy', 'symbol'],
  },
  {
    name: 'maxGrossExposure',
    label: 'Max gross exposure',
    scopes: ['portfolio', 'strategy', 'symbol'],
  },
  {
    name: 'maxLeverage',
    label: 'Max leverage (times equity)',
    scopes: ['portfolio', 'strategy', 'symbol'],
  },
  {
    name: 'dailyLossLimit',
    label: 'Daily loss limit (fraction of equity)',
    scopes: ['portfolio', 'strategy'],
  },
  { name: 'maxDrawdown', label: 'Max drawdown (fraction)', scopes: ['portfolio', 'strategy'] },
];

const shown = (value: unknown): string => (typeof value === 'number' ? String(value) : '');

/**
 * Changing a scope's limits as the API allows (docs/risk.md): the first setting of a scope is
 * PUT /risk/limits/{type}/{id}, each limit at most as loose as its default; once set, a change is
 * a risk_limit_change request (POST …/change-requests) that another risk officer approves (four
 * eyes), and the limits change when they do. Refusals come back in words. No If-Match: the first
 * setting has no revision to name (the scope's stream does not exist yet), and the server's
 * LIMITS_ALREADY_SET refuses it when someone set the limits since the form read them.
 */
export function LimitsForm({ onWritten }: { onWritten: (position: string) => void }) {
  const [scopeType, setScopeType] = useState<ScopeType>('strategy');
  const [scopeId, setScopeId] = useState('');
  const [current, setCurrent] = useState<ScopeLimits | undefined>(undefined);
  const [values, setValues] = useState<Record<string, string>>({});
  const [reason, setReason] = useState('');
  const [key, setKey] = useState(() => crypto.randomUUID());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const [done, setDone] = useState<preact.ComponentChildren>(undefined);
  // Strategies to pick from by name (their ids are what the scope needs).
  const strategies = useLoad(() =>
    get<{ strategies: { strategyId: string; name: string }[] }>('/strategies?limit=200'),
  );

  const read = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setDone(undefined);
    try {
      const answer = await get<{ limits: ScopeLimits[] }>(
        `/risk/limits${query({ scopeType, scopeId: scopeId.trim() })}`,
      );
      const scope = answer.limits[0];
      setCurrent(scope);
      setValues(Object.fromEntries(FIELDS.map((f) => [f.name, shown(scope?.limits[f.name])])));
      setKey(crypto.randomUUID());
    } catch (failure) {
      setCurrent(undefined);
      setError(messageOf(failure));
    }
  };

  const fields = current ? FIELDS.filter((f) => f.scopes.includes(current.scopeType)) : [];
  /** What differs from the limits read: '' is no limit (null). */
  const changes = Object.fromEntries(
    fields
      .map((f) => [f.name, values[f.name]?.trim() === '' ? null : Number(values[f.name])] as const)
      .filter(([name, value]) => value !== (current?.limits[name] ?? null)),
  );
  const first = current?.isDefault === true;

  const submit = async (event: Event) => {
    event.preventDefault();
    if (current === undefined) return;
    const path = `/risk/limits/${encodeURIComponent(current.scopeType)}/${encodeURIComponent(current.scopeId)}`;
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    try {
      if (first) {
        const answer = (await call(path, {
          method: 'PUT',
          idempotencyKey: key,
          body: Object.keys(changes).length > 0 ? { limits: changes } : {},
        })) as { position: string };
        setDone(`Limits of ${current.scopeType} ${current.scopeId} set.`);
        // Read again for a change: from now on a change is a request (four eyes).
        setCurrent(undefined);
        onWritten(answer.position);
      } else {
        const answer = (await call(`${path}/change-requests`, {
          method: 'POST',
          idempotencyKey: key,
          body: { changes, reason: reason.trim() },
        })) as { approvalRequestId: string; position: string };
        setDone(
          <>
            Change request <code>{answer.approvalRequestId.slice(0, 8)}</code> opened: another risk
            officer approves it on the <a href="#/approvals">Approvals</a> page (four eyes), and the
            limits change then.
          </>,
        );
        setReason('');
        onWritten(answer.position);
      }
      setKey(crypto.randomUUID());
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Panel title="Change limits">
      <form class="controls" onSubmit={(event) => void read(event)}>
        <label>
          Scope type{' '}
          <select
            value={scopeType}
            onChange={(e) => {
              setScopeType(e.currentTarget.value as ScopeType);
              setCurrent(undefined);
            }}
          >
            <option value="portfolio">portfolio</option>
            <option value="strategy">strategy</option>
            <option value="symbol">symbol</option>
          </select>
        </label>
        <label>
          Scope id{' '}
          <input
            required
            list={scopeType === 'strategy' ? 'limit-strategies' : undefined}
            value={scopeId}
            onInput={(e) => {
              setScopeId(e.currentTarget.value);
              setCurrent(undefined);
            }}
          />
        </label>
        <datalist id="limit-strategies">
          {strategies.data?.strategies.map((s) => (
            <option key={s.strategyId} value={s.strategyId} label={s.name} />
          ))}
        </datalist>
        <button type="submit" class="primary">
          Read its limits
        </button>
      </form>
      {current && (
        <form onSubmit={(event) => void submit(event)} aria-label="New limits">
          <p data-testid="limits-basis">
            {first
              ? `${current.scopeType} ${current.scopeId} has never had limits of its own: the defaults apply. Setting them the first time takes effect at once, each limit at most as loose as its default.`
              : `${current.scopeType} ${current.scopeId}: version ${current.version}, last changed by ${current.changedBy ?? '?'} ${fmtTime(current.changedAt)}. A change is a request another risk officer must approve (four eyes).`}{' '}
            An empty field means no limit.
          </p>
          <div class="controls">
            {fields.map((f) => (
              <label key={f.name}>
                {f.label}{' '}
                <input
                  type="number"
                  step="any"
                  min="0"
                  value={values[f.name] ?? ''}
                  onInput={(e) => {
                    setValues({ ...values, [f.name]: e.currentTarget.value });
                    setKey(crypto.randomUUID());
                  }}
                />
              </label>
            ))}
          </div>
          {!first && (
            <label>
              Reason for the change (the approver reads it)
              <textarea
                required
                maxLength={500}
                value={reason}
                onInput={(e) => {
                  setReason(e.currentTarget.value);
                  setKey(crypto.randomUUID());
                }}
              />
            </label>
          )}
          <div class="actions">
            <button
              type="submit"
              disabled={
                busy || (!first && (Object.keys(changes).length === 0 || reason.trim() === ''))
              }
            >
              {first ? 'Set limits' : 'Request the change'}
            </button>
          </div>
        </form>
      )}
      <ErrorNote error={error} />
      {done !== undefined && (
        <p role="status" data-testid="limits-done">
          {done}
        </p>
      )}
    </Panel>
  );
}
