import { describe, expect, it } from 'vitest';
import { contentText } from './event-hash.js';
import { ValidationError } from '../errors.js';
import { MAX_EVENT_BYTES, categoryOf, prepareAppend } from './append-validation.js';

const refusal = (run: () => unknown): ValidationError => {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return error as ValidationError;
  }
  throw new Error('expected a ValidationError');
};

describe('append validation', () => {
  it('serializes data and metadata once, canonically, and lower-cases event ids', () => {
    const [prepared] = prepareAppend(
      'order-1',
      [
        {
          eventId: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
          type: 'OrderSubmitted',
          data: { qty: 2, at: 'x' },
          metadata: { actor: 'u1' },
        },
      ],
      'any',
    );
    expect(prepared).toEqual({
      eventId: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      type: 'OrderSubmitted',
      dataJson: '{"at":"x","qty":2}',
      metadataJson: '{"actor":"u1"}',
      content:
        '["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11","order-1","OrderSubmitted",{"at":"x","qty":2},{"actor":"u1"}]',
    });
    // The content the hash covers is the canonical text of the whole event (ADR 005).
    expect(prepared?.content).toBe(
      contentText({
        eventId: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
        streamId: 'order-1',
        type: 'OrderSubmitted',
        data: { qty: 2, at: 'x' },
        metadata: { actor: 'u1' },
      }),
    );
  });

  it('names the path of the first value that is not JSON', () => {
    const error = refusal(() =>
      prepareAppend(
        'order-1',
        [
          {
            type: 'A',
            data: { legs: [{ price: 1 }, { price: 2 }, { price: Number.NaN }] },
            metadata: { actor: 'u' },
          },
        ],
        'any',
      ),
    );
    expect(error.code).toBe('EVENT_NOT_SERIALIZABLE');
    expect(error.message).toContain('data.legs[2].price is NaN');
  });

  it('names the class of a non-plain object', () => {
    const error = refusal(() =>
      prepareAppend(
        'order-1',
        [{ type: 'A', data: { m: new Map() } as never, metadata: { actor: 'u' } }],
        'any',
      ),
    );
    expect(error.message).toContain('data.m is a Map, not a plain object');
  });

  it('accepts a shared (non-cyclic) object referenced twice', () => {
    const shared = { a: 1 };
    expect(() =>
      prepareAppend(
        'order-1',
        [{ type: 'A', data: { x: shared, y: shared }, metadata: { actor: 'u' } }],
        'any',
      ),
    ).not.toThrow();
  });

  it('counts the size in UTF-8 bytes, not characters', () => {
    // 'é' is 2 bytes: 600 Ki of them is 1.2 MiB although only 600 Ki characters.
    const error = refusal(() =>
      prepareAppend(
        'order-1',
        [{ type: 'A', data: 'é'.repeat(600 * 1024), metadata: { actor: 'u' } }],
        'any',
      ),
    );
    expect(error.code).toBe('EVENT_TOO_LARGE');
    expect(error.details).toMatchObject({ limit: MAX_EVENT_BYTES });
    expect(() =>
      prepareAppend(
        'order-1',
        [{ type: 'A', data: 'x'.repeat(600 * 1024), metadata: { actor: 'u' } }],
        'any',
      ),
    ).not.toThrow();
  });

  it('refuses a stream id over 200 characters', () => {
    expect(
      refusal(() =>
        prepareAppend(
          `a-${'x'.repeat(199)}`,
          [{ type: 'A', data: 1, metadata: { actor: 'u' } }],
          'any',
        ),
      ).code,
    ).toBe('INVALID_STREAM_ID');
  });

  it('takes the category from the stream id', () => {
    expect(categoryOf('strategy-7f3c-1')).toBe('strategy');
  });
});
