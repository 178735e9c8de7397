import { useState } from 'preact/hooks';
import type { Role } from '../../../core/access/roles.js';
import { call, get, query } from '../api.js';
import { ErrorNote, messageOf, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';
import { useLiveReload } from '../live-reload.js';
import { useApp } from '../main.js';
import { may, partyOf, type Session } from '../session.js';

interface Party {
  id: string;
  role: Role;
}
export interface Approval {
  requestId: string;
  kind: string;
  subject: { type: string; id: string };
  status: string;
  requester: Party;
  reason: string;
  rule: { approvals: number; eligibleRoles: Role[]; mustInclude: Role[] };
  approvers: Party[];
  requestedAt?: string;
  expiresAt?: string;
}

/** Why this key may not decide a request it can see, or undefined when it may. */
export function blocker(
  approval: Approval,
  session: Session,
  actionable: boolean,
): string | undefined {
  if (!may(session, 'approvals:decide'))
    return `your role (${session.role}) does not decide approvals`;
  if (approval.requester.id === partyOf(session))
    return 'you made this request: someone else must decide it (four eyes); you may withdraw it';
  if (approval.approvers.some((a) => a.id === partyOf(session))) return 'you approved it already';
  if (!approval.rule.eligibleRoles.includes(session.role))
    return `needs ${approval.rule.eligibleRoles.join(' or ')}`;
  if (!actionable) return `the approvals left need ${approval.rule.mustInclude.join(', ')}`;
  return undefined;
}

function Decide({
  approval,
  reason,
  done,
}: {
  approval: Approval;
  reason: string | undefined;
  done: (position: string) => void;
}) {
  const [comment, setComment] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const act = async (verb: 'approve' | 'reject' | 'withdraw') => {
    setBusy(true);
    try {
      const body = verb === 'approve' ? { comment } : { reason: comment };
      const answer = (await call(`/approvals/${approval.requestId}/${verb}`, {
        method: 'POST',
        body,
      })) as { position: string };
      setError(undefined);
      done(answer.position);
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  const id = `comment-${approval.requestId}`;
  const { session } = useApp();
  const own = approval.requester.id === partyOf(session);
  return (
    <div class="decide">
      <label for={id}>Comment</label>
      <input
        id={id}
        value={comment}
        maxLength={1000}
        onInput={(e) => {
          setComment(e.currentTarget.value);
        }}
      />
      <button
        type="button"
        disabled={busy || reason !== undefined}
        onClick={() => void act('approve')}
      >
        Approve
      </button>
      <button
        type="button"
        class="danger"
        disabled={busy || reason !== undefined || comment.trim() === ''}
        onClick={() => void act('reject')}
        title="A rejection needs a comment"
      >
        Reject
      </button>
      {own && may(session, 'approvals:withdraw') && (
        <button
          type="button"
          disabled={busy || comment.trim() === ''}
          onClick={() => void act('withdraw')}
          title="Withdrawing needs a comment"
        >
          Withdraw
        </button>
      )}
      {reason !== undefined && (
        <p class="muted reason" data-testid="blocked-reason">
          Not for you: {reason}.
        </p>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

/** The approvals inbox: what waits, what this key may decide, and why not when it may not. */
export function Approvals() {
  const { session } = useApp();
  const [minPosition, setMinPosition] = useState<string | undefined>(undefined);
  const pending = useLoad(
    () =>
      get<{ approvals: Approval[] }>(
        `/approvals${query({ status: 'pending', limit: 200, minPosition })}`,
      ),
    [minPosition],
  );
  const queue = useLoad(
    () => get<{ approvals: Approval[] }>(`/approvals/queue${query({ limit: 200, minPosition })}`),
    [minPosition],
  );
  const recent = useLoad(
    () => get<{ approvals: Approval[] }>(`/approvals${query({ limit: 50, minPosition })}`),
    [minPosition],
  );
  useLiveReload(['category:approval'], setMinPosition);
  const mine = new Set(queue.data?.approvals.map((a) => a.requestId));
  const rows = pending.data?.approvals.map((a) => ({ ...a, mine: mine.has(a.requestId) }));
  const canDecide = may(session, 'approvals:decide') || may(session, 'approvals:withdraw');
  return (
    <>
      <Panel title="Waiting for a decision">
        <p>
          {queue.data ? (
            <strong data-testid="queue-count">{queue.data.approvals.length}</strong>
          ) : (
            '…'
          )}{' '}
          of them wait for you.
        </p>
        <ErrorNote error={pending.error ?? queue.error} />
        <Table
          caption="Pending approval requests"
          rows={rows}
          empty="Nothing waits for a decision."
          rowKey={(a) => a.requestId}
          columns={[
            { title: 'Kind', cell: (a) => a.kind.replace(/_/g, ' ') },
            { title: 'Subject', cell: (a) => `${a.subject.type} ${a.subject.id.slice(0, 12)}` },
            { title: 'Requested by', cell: (a) => `${a.requester.id} (${a.requester.role})` },
            { title: 'Reason', cell: (a) => a.reason },
            { title: 'Approvals', cell: (a) => `${a.approvers.length} of ${a.rule.approvals}` },
            ...(canDecide
              ? [
                  {
                    title: 'Decision',
                    cell: (a: Approval & { mine: boolean }) => (
                      <Decide
                        approval={a}
                        reason={blocker(a, session, a.mine)}
                        done={setMinPosition}
                      />
                    ),
                  },
                ]
              : []),
          ]}
        />
      </Panel>
      <Panel title="Recent requests">
        <ErrorNote error={recent.error} />
        <Table
          caption="Recent approval requests"
          rows={recent.data?.approvals}
          empty="No approval request yet."
          rowKey={(a) => a.requestId}
          columns={[
            { title: 'Kind', cell: (a) => a.kind.replace(/_/g, ' ') },
            { title: 'Subject', cell: (a) => `${a.subject.type} ${a.subject.id.slice(0, 12)}` },
            {
              title: 'Status',
              cell: (a) => <span data-testid={`status-${a.requestId}`}>{a.status}</span>,
            },
            { title: 'Requested by', cell: (a) => a.requester.id },
            { title: 'Approved by', cell: (a) => a.approvers.map((p) => p.id).join(', ') || '—' },
            { title: 'Expires', cell: (a) => fmtTime(a.expiresAt) },
          ]}
        />
      </Panel>
    </>
  );
}
