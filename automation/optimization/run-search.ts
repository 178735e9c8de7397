import type { PendingTrial, Search, TrialRecord } from '../../core/optimization/search.js';
import type { TrialRun } from '../../core/optimization/walk-forward.js';

/**
 * The loop of one search, shared by the executor and `bench:optimize` (so the benchmark times the
 * code that runs in production): propose a batch, run it, score and record it, until the search is
 * done or a hook stops it.
 *
 * Grid and random points depend only on the trial's index (`Search.proposesAhead`), so the batch
 * after the current one goes to the runner as soon as the current one has: a thread that finishes
 * its last trial of a batch early starts on the next batch instead of idling until the slowest
 * trial is back and the batch is recorded. At most one batch runs ahead. Batches are still scored
 * and recorded one at a time, in order, so the records, the events and the outcome are the same
 * as batch by batch. A batch started ahead and then not needed (cancelled, stopped, interrupted,
 * failed) is aborted and awaited, never recorded. Bayesian search waits for each batch's results
 * before it proposes the next.
 */

/**
 * Runs a batch's trials; the answers in the batch's order (null: not run), or 'interrupted'.
 * `signal` aborts when the batch is no longer wanted: the runner may then stop early, and whatever
 * it answers is dropped.
 */
export type BatchRunner = (
  batch: readonly PendingTrial[],
  signal: AbortSignal,
) => Promise<(TrialRun | null)[] | 'interrupted'>;

export interface BatchDone {
  batch: number;
  records: TrialRecord[];
  /** Since the batch before was recorded (or the loop started). */
  seconds: number;
  /** Main-thread time spent proposing and scoring this batch. */
  serialMs: number;
}

export interface SearchHooks {
  /** Asked before each batch is taken up: why to stop now, or null to go on. */
  stop?: () => 'interrupted' | 'wallTime' | null;
  /** Keeps a scored batch (the executor appends its `OptimizationProgressed`); false: cancelled. */
  record?: (batch: number, records: TrialRecord[]) => Promise<boolean>;
  /** After a batch is kept. */
  onBatch?: (done: BatchDone) => void;
}

export type SearchEnd = 'done' | 'wallTime' | 'interrupted' | 'cancelled';

type Answer = { runs: (TrialRun | null)[] | 'interrupted' } | { error: unknown };

interface Started {
  batch: readonly PendingTrial[];
  abort: AbortController;
  /** Never rejects: a failure is kept until the batch is taken up, so a batch run ahead that fails
   * is reported in its turn, and one discarded fails nobody. */
  answer: Promise<Answer>;
}

async function settle(run: () => Promise<(TrialRun | null)[] | 'interrupted'>): Promise<Answer> {
  try {
    return { runs: await run() };
  } catch (error) {
    return { error };
  }
}

function start(runBatch: BatchRunner, batch: readonly PendingTrial[]): Started {
  const abort = new AbortController();
  return { batch, abort, answer: settle(() => runBatch(batch, abort.signal)) };
}

/** Drops a batch started ahead: aborted, then awaited so that the runner is idle when closed. */
async function discard(started: Started): Promise<void> {
  started.abort.abort();
  await started.answer;
}

export async function runSearch(
  search: Search,
  runBatch: BatchRunner,
  hooks: SearchHooks = {},
): Promise<SearchEnd> {
  let ahead: Started | null = null;
  let lastRecorded = performance.now();
  try {
    for (let batch = 0; !search.done; batch++) {
      const stop = hooks.stop?.() ?? null;
      if (stop) return stop;
      let at = performance.now();
      const current: Started = ahead ?? start(runBatch, search.nextBatch());
      ahead = null;
      if (search.proposesAhead) {
        const next = search.nextBatchAfter(current.batch);
        if (next.length > 0) ahead = start(runBatch, next);
      }
      let serialMs = performance.now() - at;
      const answer = await current.answer;
      if ('error' in answer) throw answer.error;
      if (answer.runs === 'interrupted') return 'interrupted';
      at = performance.now();
      const records = search.record(current.batch, answer.runs);
      serialMs += performance.now() - at;
      if (hooks.record && !(await hooks.record(batch, records))) return 'cancelled';
      const now = performance.now();
      hooks.onBatch?.({ batch, records, seconds: (now - lastRecorded) / 1000, serialMs });
      lastRecorded = now;
    }
    return 'done';
  } finally {
    if (ahead) await discard(ahead);
  }
}
