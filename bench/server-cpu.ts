/**
 * CPU time the PostgreSQL server spent, read from /proc: its postmaster and every process under
 * it (backends, WAL writer, checkpointer, autovacuum), those that have ended included (the kernel
 * adds a reaped child's time to its parent's). On a machine that other work keeps busy a
 * contender's events/s says mostly how much CPU it was given; CPU per event says what each event
 * cost, whatever the load (ADR 001, "CPU per event").
 *
 * Only meaningful when the server serves nothing but the benchmark: the embedded server. A remote
 * server, or one whose /proc entries this process may not read, gives `null`.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';

/** USER_HZ, the unit of /proc CPU times: 100 on every Linux this runs on, asked anyway. */
function clockTicksPerSecond(): number {
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return value > 0 ? value : 100;
  } catch {
    return 100;
  }
}

/** Fields of /proc/<pid>/stat after the command name, which may contain spaces. */
function statFields(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

// Indexes into statFields (stat field n is at n - 3): ppid 4, utime 14, stime 15, cutime 16,
// cstime 17.
const PPID = 1;
const UTIME = 11;

function ticks(fields: string[], withChildren: boolean): number {
  const count = withChildren ? 4 : 2;
  let sum = 0;
  for (let i = 0; i < count; i++) sum += Number(fields[UTIME + i] ?? 0);
  return sum;
}

export interface ServerCpuMeter {
  /** CPU milliseconds the server has used so far. */
  read(): number;
}

/** A meter for the server behind `url`, or null when its processes are not readable here. */
export async function serverCpuMeter(url: string): Promise<ServerCpuMeter | null> {
  if (process.platform !== 'linux') return null;
  // Read while the backend is still there: its parent is the postmaster.
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let postmaster: number;
  try {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    postmaster = Number(statFields(rows[0]?.pid ?? 0)?.[PPID] ?? 0);
  } finally {
    await client.end();
  }
  if (!postmaster || !statFields(postmaster)) return null;
  const msPerTick = 1000 / clockTicksPerSecond();
  return {
    read() {
      let total = ticks(statFields(postmaster) ?? [], true);
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const fields = statFields(Number(entry));
        if (fields && Number(fields[PPID]) === postmaster) total += ticks(fields, true);
      }
      return total * msPerTick;
    },
  };
}
