import { useState } from 'preact/hooks';
import { get, query } from '../api.js';
import { ErrorNote, Loading, messageOf, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';
import { useApp } from '../main.js';
import { may } from '../session.js';

interface StreamEvent {
  position: string;
  revision: string;
  type: string;
  recordedAt: string;
  metadata: unknown;
}
interface StateAt {
  position: string;
  revision: string | null;
  recordedAt: string | null;
  eventCount: number;
  state: unknown;
}
interface Verification {
  ok: boolean;
  eventsChecked: number;
  streams: number;
  verifiedTo: string;
  firstBroken: { reason: string; position: string; detail: string } | null;
}
interface LogEvent {
  position: string;
  recordedAt: string;
  streamId: string;
  type: string;
  actor: string;
}

const actorOf = (metadata: unknown): string =>
  typeof metadata === 'object' && metadata !== null && 'actor' in metadata
    ? String(metadata.actor)
    : '—';

/** One stream's events and, with the "as of" slider, its state after any of them. */
function Timeline({ streamId }: { streamId: string }) {
  const events = useLoad(
    async () =>
      (
        await get<{ events: StreamEvent[] }>(
          `/audit/streams/${encodeURIComponent(streamId)}/events?limit=1000`,
        )
      ).events,
    [streamId],
  );
  const [index, setIndex] = useState<number | undefined>(undefined);
  const list = events.data ?? [];
  const at = index ?? list.length - 1;
  const chosen = list[at];
  const state = useLoad(
    async () =>
      chosen === undefined
        ? undefined
        : get<StateAt>(
            `/audit/streams/${encodeURIComponent(streamId)}/state${query({ atPosition: chosen.position })}`,
          ),
    [streamId, chosen?.position],
  );
  if (events.error !== undefined) return <ErrorNote error={events.error} />;
  if (events.data === undefined) return <Loading what="the stream" />;
  if (list.length === 0) return <p class="muted">No event in {streamId}.</p>;
  return (
    <>
      <label for="as-of">
        As of event {at + 1} of {list.length}:{' '}
        <strong data-testid="as-of">
          {chosen ? `${chosen.type} at ${fmtTime(chosen.recordedAt)}` : ''}
        </strong>
      </label>
      <input
        id="as-of"
        type="range"
        min={0}
        max={list.length - 1}
        value={at}
        onInput={(e) => {
          setIndex(Number(e.currentTarget.value));
        }}
      />
      <ErrorNote error={state.error} />
      <pre
        class="state"
        data-testid="state-as-of"
        tabIndex={0}
        aria-label="State as of the chosen event"
      >
        {state.data ? JSON.stringify(state.data.state, null, 2) : '…'}
      </pre>
      <Table
        caption="Stream events"
        rows={list}
        empty="No event."
        rowKey={(e) => e.position}
        columns={[
          { title: '#', numeric: true, cell: (e) => e.revision },
          { title: 'When', cell: (e) => fmtTime(e.recordedAt) },
          { title: 'What', cell: (e) => e.type },
          { title: 'Who', cell: (e) => actorOf(e.metadata) },
          { title: 'Position', numeric: true, cell: (e) => e.position },
        ]}
      />
    </>
  );
}

function Verify() {
  const [result, setResult] = useState<Verification | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    try {
      setResult(await get<Verification>('/audit/verify'));
      setError(undefined);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Panel title="Log verification">
      <button type="button" disabled={busy} onClick={() => void run()}>
        Verify the hash chain now
      </button>
      <ErrorNote error={error} />
      {result && (
        <p data-testid="verification" class={result.ok ? 'ok' : 'alert'}>
          {result.ok
            ? `Intact: ${result.eventsChecked} events in ${result.streams} streams verified to position ${result.verifiedTo}.`
            : `BROKEN at position ${result.firstBroken?.position ?? '?'} (${result.firstBroken?.reason ?? ''}): ${result.firstBroken?.detail ?? ''}`}
        </p>
      )}
    </Panel>
  );
}

/** The audit trail: recent activity, an entity's timeline with "as of", the log's verification. */
export function Audit({ rest }: { rest: string }) {
  const { session } = useApp();
  const [typed, setTyped] = useState(decodeURIComponent(rest));
  const streamId = decodeURIComponent(rest);
  const recent = useLoad(() => get<{ events: LogEvent[] }>('/audit/events?limit=100'));
  return (
    <>
      {may(session, 'audit:history') && (
        <Panel title="Timeline">
          <form
            onSubmit={(e) => {
              e.preventDefault();
              location.hash = `#/audit/${encodeURIComponent(typed.trim())}`;
            }}
          >
            <label for="stream-id">Stream (e.g. strategy-…, risk-…, approval-…)</label>
            <input
              id="stream-id"
              value={typed}
              onInput={(e) => {
                setTyped(e.currentTarget.value);
              }}
            />
            <button type="submit">Show</button>
          </form>
          {streamId !== '' && <Timeline streamId={streamId} />}
        </Panel>
      )}
      {may(session, 'audit:verify') && <Verify />}
      <Panel title="Recent activity">
        <ErrorNote error={recent.error} />
        <Table
          caption="Recent activity"
          rows={recent.data?.events}
          empty="The log is empty."
          rowKey={(e) => e.position}
          columns={[
            { title: 'When', cell: (e) => fmtTime(e.recordedAt) },
            {
              title: 'Stream',
              cell: (e) =>
                may(session, 'audit:history') ? (
                  <a href={`#/audit/${encodeURIComponent(e.streamId)}`}>{e.streamId}</a>
                ) : (
                  e.streamId
                ),
            },
            { title: 'What', cell: (e) => e.type },
            { title: 'Who', cell: (e) => e.actor },
          ]}
        />
      </Panel>
    </>
  );
}
