import { apiKeyStream, apiKeys } from '../../core/access/api-key.js';
import type { Role } from '../../core/access/roles.js';
import type { CommandContext, CommandHandler } from '../../core/commands/command-handler.js';
import type { CommandResult } from '../../core/commands/idempotency.js';
import { newApiKey, rotatedApiKey } from './api-key-secrets.js';

export interface IssuedKey {
  keyId: string;
  name: string;
  role: Role;
  /** Shown once. */
  token: string;
  result: CommandResult;
}

/** A retry with the idempotency key of an earlier issue or rotation: its token was shown then. */
export type Replayed<T extends { token: string }> = Omit<T, 'token'> & { token: string | null };

const contextOf = (actor: string | CommandContext): CommandContext =>
  typeof actor === 'string' ? { actor } : actor;

/** Issue, rotate and revoke API keys through the command handler, so each change is an event. */
export class ApiKeyService {
  constructor(private readonly commands: CommandHandler) {}

  /** `keyId`: given when derived from an idempotency key, so a retry names the same key. */
  async issue(name: string, role: Role, actor: string): Promise<IssuedKey>;
  async issue(
    name: string,
    role: Role,
    context: CommandContext,
    keyId?: string,
  ): Promise<Replayed<IssuedKey>>;
  async issue(
    name: string,
    role: Role,
    actor: string | CommandContext,
    keyId?: string,
  ): Promise<Replayed<IssuedKey>> {
    const key = await newApiKey(keyId);
    const result = await this.commands.handle(
      apiKeys,
      apiKeyStream(key.keyId),
      { type: 'IssueApiKey', keyId: key.keyId, name, role, secretHash: key.secretHash },
      contextOf(actor),
    );
    return { keyId: key.keyId, name, role, token: result.replayed ? null : key.token, result };
  }

  async rotate(keyId: string, actor: string): Promise<{ token: string; result: CommandResult }>;
  async rotate(
    keyId: string,
    context: CommandContext,
  ): Promise<Replayed<{ token: string; result: CommandResult }>>;
  async rotate(
    keyId: string,
    actor: string | CommandContext,
  ): Promise<Replayed<{ token: string; result: CommandResult }>> {
    const key = await rotatedApiKey(keyId);
    const result = await this.commands.handle(
      apiKeys,
      apiKeyStream(keyId),
      { type: 'RotateApiKey', keyId, secretHash: key.secretHash },
      contextOf(actor),
    );
    return { token: result.replayed ? null : key.token, result };
  }

  revoke(keyId: string, reason: string, actor: string | CommandContext): Promise<CommandResult> {
    return this.commands.handle(
      apiKeys,
      apiKeyStream(keyId),
      { type: 'RevokeApiKey', keyId, reason },
      contextOf(actor),
    );
  }
}
