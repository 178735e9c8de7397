import { get } from '../api.js';
import { ErrorNote, Loading, Panel, Table, useLoad } from '../components.js';
import { fmtTime } from '../format.js';

interface Outcome {
  lastSuccess: string | null;
  lastFailure: string | null;
  lastProblem: string | null;
  outcome: 'succeeded' | 'failed' | 'never';
  at: string | null;
}
interface Backup {
  backupId: string;
  kind: 'full' | 'incremental' | null;
  completedAt: string | null;
  positions: { after: string; first: string | null; last: string } | null;
  eventCount: number | null;
  bytes: number | null;
  logProblem: string | null;
  verification: { status: 'verified' | 'failed' | 'unverified' | 'unreadable'; at: string | null };
  problem: string | null;
}
interface Backups {
  backups: Backup[];
  partials: number;
  verify: Outcome;
  market: Outcome;
  config: Outcome;
  copy: Outcome;
}
type Drill = Outcome & { schedule: string; configured: boolean };

const VERIFICATION: Record<Backup['verification']['status'], string> = {
  verified: 'verified',
  failed: 'FAILED verification',
  unverified: 'not verified yet',
  unreadable: 'UNREADABLE',
};

const bytesText = (bytes: number | null): string =>
  bytes === null
    ? '—'
    : bytes >= 1_048_576
      ? `${(bytes / 1_048_576).toFixed(1)} MB`
      : `${(bytes / 1024).toFixed(1)} kB`;

/** One job's last outcome in a sentence. */
function outcomeText(what: string, job: Outcome): string {
  if (job.outcome === 'never') return `${what}: never run.`;
  if (job.outcome === 'succeeded') return `${what}: succeeded ${fmtTime(job.at)}.`;
  return `${what}: FAILED ${fmtTime(job.at)}: ${job.lastProblem ?? 'no reason recorded'}${
    job.lastSuccess ? ` (last success ${fmtTime(job.lastSuccess)})` : ''
  }.`;
}

/** The backups with their verification status, the scheduled jobs, and the last restore drill. */
export function BackupPanels() {
  const backups = useLoad(() => get<Backups>('/backups?limit=50'));
  const drill = useLoad(() => get<Drill>('/backups/drills'));
  const d = drill.data;
  return (
    <>
      <Panel title="Last restore drill">
        <ErrorNote error={drill.error} />
        {d === undefined ? (
          drill.error === undefined && <Loading what="the last restore drill" />
        ) : (
          <p data-testid="restore-drill" class={d.outcome === 'failed' ? 'alert' : ''}>
            {d.configured
              ? outcomeText('The restore drill into the scratch database', d)
              : 'No restore drill runs: QCAT_RESTORE_DRILL_URL is not set.'}{' '}
            <span class="muted">Schedule (UTC): {d.schedule}</span>
          </p>
        )}
      </Panel>
      <Panel title="Backups">
        <ErrorNote error={backups.error} />
        {backups.data && (
          <ul class="plain" data-testid="backup-jobs">
            <li class={backups.data.verify.outcome === 'failed' ? 'alert' : ''}>
              {outcomeText('Scheduled verify of every backup', backups.data.verify)}
            </li>
            <li>{outcomeText('Market-data snapshot', backups.data.market)}</li>
            <li>{outcomeText('Configuration backup', backups.data.config)}</li>
            <li>{outcomeText('Copy to the second location', backups.data.copy)}</li>
            {backups.data.partials > 0 && (
              <li>
                {backups.data.partials} unfinished backup folder(s) (being written or left by a
                crash).
              </li>
            )}
          </ul>
        )}
        <Table
          caption="Backups, newest first"
          rows={backups.data?.backups}
          empty="No backup yet: see qcat backup full and QCAT_BACKUP_SCHEDULE."
          rowKey={(b) => b.backupId}
          columns={[
            { title: 'Backup', cell: (b) => <code>{b.backupId}</code> },
            { title: 'Kind', cell: (b) => b.kind ?? '—' },
            { title: 'Finished', cell: (b) => fmtTime(b.completedAt) },
            {
              title: 'Positions',
              cell: (b) =>
                b.positions === null
                  ? '—'
                  : b.positions.first === null
                    ? `none after ${b.positions.after}`
                    : `${b.positions.first}–${b.positions.last}`,
            },
            { title: 'Events', numeric: true, cell: (b) => b.eventCount ?? '—' },
            { title: 'Size', numeric: true, cell: (b) => bytesText(b.bytes) },
            {
              title: 'Verification',
              cell: (b) => (
                <span
                  data-testid={`verification-${b.backupId}`}
                  class={`badge verification-${b.verification.status}`}
                >
                  {VERIFICATION[b.verification.status]}
                  {b.verification.at ? ` ${fmtTime(b.verification.at)}` : ''}
                </span>
              ),
            },
            {
              title: 'Problem',
              cell: (b) =>
                [b.problem, b.logProblem && `log chain: ${b.logProblem}`]
                  .filter(Boolean)
                  .join('; ') || '—',
            },
          ]}
        />
      </Panel>
    </>
  );
}
