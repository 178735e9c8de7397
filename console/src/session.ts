import { allows, type Permission, type Role } from '../../core/access/roles.js';
import { call, useToken } from './api.js';

/**
 * The signed-in key. Its token lives in sessionStorage only: it ends with the tab, is never
 * written to localStorage or a cookie, and never goes into a URL. What the role may do comes
 * from the same permission table the server enforces (core/access/roles.ts, bundled), so the
 * console hides what would be refused; the server still decides every call.
 */
export interface Session {
  token: string;
  keyId: string;
  name: string;
  role: Role;
}

const STORAGE_KEY = 'qcat.console.session';

export const may = (session: Session, permission: Permission): boolean =>
  allows(session.role, permission);

/** The party id the server records for this key (approval requesters and approvers). */
export const partyOf = (session: Session): string => `apikey:${session.keyId}`;

/** Checks the key with GET /session, then keeps it for this tab. */
export async function signIn(token: string): Promise<Session> {
  const answer = (await call('/session', { token })) as Omit<Session, 'token'>;
  const session: Session = { token, keyId: answer.keyId, name: answer.name, role: answer.role };
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  useToken(token);
  return session;
}

export function signOut(): void {
  sessionStorage.removeItem(STORAGE_KEY);
  useToken('');
}

/** The session kept by this tab, if any. */
export function restoredSession(): Session | undefined {
  const kept = sessionStorage.getItem(STORAGE_KEY);
  if (kept === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(kept);
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const session = parsed as Partial<Session>;
    if (typeof session.token !== 'string' || typeof session.keyId !== 'string') return undefined;
    useToken(session.token);
    return session as Session;
  } catch {
    return undefined;
  }
}
