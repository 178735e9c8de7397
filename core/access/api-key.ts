import { z } from 'zod';
import type { Decider, DomainEvent } from '../decider.js';
import { QcatError } from '../errors.js';
import { ROLES, type Role } from './roles.js';

/** Stream of one API key: `apikey-<keyId>`. */
export const apiKeyStream = (keyId: string): string => `apikey-${keyId}`;

export type ApiKeyEvent =
  | DomainEvent<'ApiKeyIssued', { keyId: string; name: string; role: Role; secretHash: string }>
  | DomainEvent<'ApiKeyRotated', { keyId: string; secretHash: string }>
  | DomainEvent<'ApiKeyRevoked', { keyId: string; reason: string }>;

export type ApiKeyCommand =
  | { type: 'IssueApiKey'; keyId: string; name: string; role: Role; secretHash: string }
  | { type: 'RotateApiKey'; keyId: string; secretHash: string }
  | { type: 'RevokeApiKey'; keyId: string; reason: string };

export type ApiKeyState =
  | { status: 'none' }
  | { status: 'active'; name: string; role: Role }
  | { status: 'revoked'; name: string; role: Role };

const apiKeyEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('ApiKeyIssued'),
    data: z.object({
      keyId: z.string(),
      name: z.string(),
      role: z.enum(ROLES),
      secretHash: z.string(),
    }),
  }),
  z.object({
    type: z.literal('ApiKeyRotated'),
    data: z.object({ keyId: z.string(), secretHash: z.string() }),
  }),
  z.object({
    type: z.literal('ApiKeyRevoked'),
    data: z.object({ keyId: z.string(), reason: z.string() }),
  }),
]);

const refuse = (code: string, message: string): never => {
  throw new QcatError(code, message);
};

/** Issuing, rotating and revoking keys are events, so every change of access is audited. */
export const apiKeys: Decider<ApiKeyState, ApiKeyCommand, ApiKeyEvent> = {
  initialState: () => ({ status: 'none' }),

  evolve: (state, event) => {
    switch (event.type) {
      case 'ApiKeyIssued':
        return { status: 'active', name: event.data.name, role: event.data.role };
      case 'ApiKeyRotated':
        return state;
      case 'ApiKeyRevoked':
        return state.status === 'none' ? state : { ...state, status: 'revoked' };
    }
  },

  decide: (command, state) => {
    switch (command.type) {
      case 'IssueApiKey':
        if (state.status !== 'none')
          refuse('API_KEY_EXISTS', `API key ${command.keyId} already exists`);
        return [
          {
            type: 'ApiKeyIssued',
            data: {
              keyId: command.keyId,
              name: command.name,
              role: command.role,
              secretHash: command.secretHash,
            },
          },
        ];
      case 'RotateApiKey':
        if (state.status !== 'active')
          refuse('API_KEY_NOT_ACTIVE', `API key ${command.keyId} is not active`);
        return [
          { type: 'ApiKeyRotated', data: { keyId: command.keyId, secretHash: command.secretHash } },
        ];
      case 'RevokeApiKey':
        if (state.status === 'none')
          refuse('API_KEY_NOT_FOUND', `API key ${command.keyId} does not exist`);
        if (state.status === 'revoked') return [];
        return [{ type: 'ApiKeyRevoked', data: { keyId: command.keyId, reason: command.reason } }];
    }
  },

  parseEvent: (event) => apiKeyEvent.parse(event),
};
