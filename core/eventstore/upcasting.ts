import type { JsonValue, RecordedEvent } from './event-store.js';

/**
 * Turns an event stored at `fromVersion` into the shape of `fromVersion + 1`. Stored events never
 * change; readers see the current shape. A missing `schemaVersion` means 1.
 */
export interface Upcaster {
  type: string;
  fromVersion: number;
  upcast(data: JsonValue): JsonValue;
}

export class Upcasters {
  private readonly byKey = new Map<string, Upcaster>();

  constructor(upcasters: readonly Upcaster[] = []) {
    for (const upcaster of upcasters) {
      const key = `${upcaster.type}@${upcaster.fromVersion}`;
      if (this.byKey.has(key)) throw new Error(`two upcasters for ${key}`);
      this.byKey.set(key, upcaster);
    }
  }

  /** The schema version new events of this type are written at. */
  currentVersion(type: string): number {
    let version = 1;
    while (this.byKey.has(`${type}@${version}`)) version++;
    return version;
  }

  /** The event in its newest known shape, with `metadata.schemaVersion` saying which that is. */
  apply(event: RecordedEvent): RecordedEvent {
    let version = event.metadata.schemaVersion ?? 1;
    let data = event.data;
    let upcaster = this.byKey.get(`${event.type}@${version}`);
    if (!upcaster) return event;
    while (upcaster) {
      data = upcaster.upcast(data);
      version++;
      upcaster = this.byKey.get(`${event.type}@${version}`);
    }
    return { ...event, data, metadata: { ...event.metadata, schemaVersion: version } };
  }
}
