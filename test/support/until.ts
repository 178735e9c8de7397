/**
 * Reads with `read` until `done` holds, every 50 ms for at most `ms`; answers the last value read,
 * so the caller's own expectation says what was wrong when time ran out.
 */
export async function until<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  ms = 5000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
