import { useEffect, useRef } from 'preact/hooks';
import { useApp } from './main.js';

/**
 * Calls `reload(position)` when an event arrives on one of `channels`, at most every 250 ms;
 * `position` is the newest event's, for `minPosition` (read your feed's write).
 */
export function useLiveReload(
  channels: readonly string[],
  reload: (position: string) => void,
): void {
  const { live } = useApp();
  const latest = useRef(reload);
  latest.current = reload;
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let newest = '0';
    const stops = channels.map((channel) =>
      live.on(channel, (event) => {
        if (BigInt(event.position) > BigInt(newest)) newest = event.position;
        timer ??= setTimeout(() => {
          timer = undefined;
          latest.current(newest);
        }, 250);
      }),
    );
    return () => {
      clearTimeout(timer);
      for (const stop of stops) stop();
    };
  }, [live, channels.join(',')]);
}
