import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.js';

/** What a page loaded: the data, or the error in words, and a way to load again. */
export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/** Loads with `load` when `key` changes, and again on `reload()`. */
export function useLoad<T>(load: () => Promise<T>, key: readonly unknown[] = []): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (value) => {
        if (!current) return;
        setData(value);
        setError(undefined);
      },
      (failure: unknown) => {
        if (current) setError(messageOf(failure));
      },
    );
    return () => {
      current = false;
    };
  }, [...key, round]);
  const reload = useCallback(() => {
    setRound((n) => n + 1);
  }, []);
  return { data, error, reload };
}

export const messageOf = (failure: unknown): string =>
  failure instanceof ApiError || failure instanceof Error ? failure.message : String(failure);

export function ErrorNote({ error }: { error: string | undefined }) {
  if (error === undefined) return null;
  return (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** A section with a heading; `busy` until its data arrived. */
export function Panel(props: { title: string; children: ComponentChildren; id?: string }) {
  const heading = `${props.id ?? props.title.toLowerCase().replace(/\W+/g, '-')}-heading`;
  return (
    <section class="panel" aria-labelledby={heading}>
      <h2 id={heading}>{props.title}</h2>
      {props.children}
    </section>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A table of rows; `empty` says what none means. */
export function Table<Row>(props: {
  caption: string;
  columns: readonly { title: string; cell: (row: Row) => ComponentChildren; numeric?: boolean }[];
  rows: readonly Row[] | undefined;
  empty: string;
  rowKey: (row: Row) => string;
}) {
  if (props.rows === undefined) return <Loading what={props.caption.toLowerCase()} />;
  if (props.rows.length === 0) return <p class="muted">{props.empty}</p>;
  return (
    <div class="table-wrap">
      <table>
        <caption class="visually-hidden">{props.caption}</caption>
        <thead>
          <tr>
            {props.columns.map((column) => (
              <th scope="col" class={column.numeric ? 'num' : ''} key={column.title}>
                {column.title}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.rows.map((row) => (
            <tr key={props.rowKey(row)}>
              {props.columns.map((column) => (
                <td class={column.numeric ? 'num' : ''} key={column.title}>
                  {column.cell(row)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The state badge of a scope: ACTIVE, REDUCING or HALTED. */
export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${state.toLowerCase()}`}>{state}</span>;
}

/**
 * A modal confirmation (a native <dialog>): the action runs only after the user confirms and
 * gives the reason the server records.
 */
export function ConfirmDialog(props: {
  open: boolean;
  title: string;
  body: ComponentChildren;
  confirmLabel: string;
  /** Without it the dialog asks no reason (the command records none). */
  reasonLabel?: string;
  onConfirm: (reason: string) => Promise<void>;
  onClose: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const element = dialog.current;
    if (element === null) return;
    if (props.open && !element.open) element.showModal();
    if (!props.open && element.open) element.close();
  }, [props.open]);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    try {
      await props.onConfirm(reason.trim());
      setReason('');
      setError(undefined);
      props.onClose();
    } catch (failure) {
      setError(messageOf(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <dialog ref={dialog} aria-labelledby="confirm-title" onClose={props.onClose}>
      <form onSubmit={(event) => void submit(event)}>
        <h2 id="confirm-title">{props.title}</h2>
        {props.body}
        {props.reasonLabel !== undefined && (
          <label>
            {props.reasonLabel}
            <textarea
              required
              maxLength={500}
              value={reason}
              onInput={(event) => {
                setReason(event.currentTarget.value);
              }}
            />
          </label>
        )}
        <ErrorNote error={error} />
        <div class="actions">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button
            type="submit"
            class="danger"
            disabled={busy || (props.reasonLabel !== undefined && reason.trim() === '')}
          >
            {props.confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}
