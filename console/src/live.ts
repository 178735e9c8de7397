/**
 * The live feed over /ws (docs/websocket.md): authenticates by first message (a browser cannot
 * set headers on a WebSocket), subscribes to the channels pages ask for, and reconnects with a
 * growing delay when the server goes away. Pages learn the connection's state to say so.
 */

export type LiveState = 'connecting' | 'live' | 'away' | 'refused';

export interface LiveEvent {
  channel: string;
  type: string;
  streamId: string;
  position: string;
  data: unknown;
}

type Listener = (event: LiveEvent) => void;

export class LiveFeed {
  private socket: WebSocket | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly stateListeners = new Set<(state: LiveState) => void>();
  private retryMs = 500;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  state: LiveState = 'connecting';

  constructor(
    private readonly token: string,
    /** Told when the server closes with 4401: the key is no longer valid. */
    private readonly onRefused: () => void,
  ) {
    this.connect();
  }

  /** Follows a channel; answers the function that stops following it. */
  on(channel: string, listener: Listener): () => void {
    let set = this.listeners.get(channel);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(channel, set);
      this.send({ type: 'subscribe', channel });
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) {
        this.listeners.delete(channel);
        this.send({ type: 'unsubscribe', channel });
      }
    };
  }

  onState(listener: (state: LiveState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.socket?.close(1000);
  }

  private setState(state: LiveState): void {
    this.state = state;
    for (const listener of this.stateListeners) listener(state);
  }

  private send(message: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  private connect(): void {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const socket = new WebSocket(`${scheme}://${location.host}/ws`);
    this.socket = socket;
    this.setState('connecting');
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'auth', token: this.token }));
      for (const channel of this.listeners.keys())
        socket.send(JSON.stringify({ type: 'subscribe', channel }));
    });
    socket.addEventListener('message', (message: MessageEvent<unknown>) => {
      if (typeof message.data !== 'string') return;
      const frame = JSON.parse(message.data) as {
        type: string;
        channel?: string;
        event?: Omit<LiveEvent, 'channel'>;
      };
      if (frame.type === 'authenticated') {
        this.retryMs = 500;
        this.setState('live');
      } else if (frame.type === 'event' && frame.channel && frame.event) {
        const event = { ...frame.event, channel: frame.channel };
        for (const listener of this.listeners.get(frame.channel) ?? []) listener(event);
      }
    });
    socket.addEventListener('close', (close) => {
      if (this.closed) return;
      if (close.code === 4401 || close.code === 4403) {
        this.setState('refused');
        this.onRefused();
        return;
      }
      this.setState('away');
      this.timer = setTimeout(() => {
        this.connect();
      }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5_000);
    });
  }
}
