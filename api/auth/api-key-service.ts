import { apiKeyStream, apiKeys } from '../../core/access/api-key.js';
import type { Role } from '../../core/access/roles.js';
import type { CommandHandler } from '../../core/commands/command-handler.js';
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

/** Issue, rotate and revoke API keys through the command handler, so each change is an event. */
export class ApiKeyService {
  constructor(private readonly commands: CommandHandler) {}

  async issue(name: string, role: Role, actor: string): Promise<IssuedKey> {
    const key = await newApiKey();
    const result = await this.commands.handle(
      apiKeys,
      apiKeyStream(key.keyId),
      { type: 'IssueApiKey', keyId: key.keyId, name, role, secretHash: key.secretHash },
      { actor },
    );
    return { keyId: key.keyId, name, role, token: key.token, result };
  }

  async rotate(keyId: string, actor: string): Promise<{ token: string; result: CommandResult }> {
    const key = await rotatedApiKey(keyId);
    const result = await this.commands.handle(
      apiKeys,
      apiKeyStream(keyId),
      { type: 'RotateApiKey', keyId, secretHash: key.secretHash },
      { actor },
    );
    return { token: key.token, result };
  }

  revoke(
    keyId: string,
    reason: string,
    actor: string,
    options: { expectedRevision?: bigint; idempotencyKey?: string } = {},
  ): Promise<CommandResult> {
    return this.commands.handle(
      apiKeys,
      apiKeyStream(keyId),
      { type: 'RevokeApiKey', keyId, reason },
      { actor, ...options },
    );
  }
}
