/**
 * Entries are data from outside the process: decoding checks the whole shape, never follows a
 * path into a prototype, and refuses (as corrupt, never by throwing) anything the encoder would
 * not have written.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEntry, isDecoded } from '../../../src/cache/codec.js';
import { baseResult, MALFORMED, POLLUTION, validEntry } from './adversarial-entries.js';

const KEY = 'rp:@AAAAAAAAAAAAAAAAAAAAAA:~:hash';

function prototypesUntouched(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
  expect(Object.getOwnPropertyNames(Array.prototype)).not.toContain('polluted');
}

afterEach(() => {
  // Should a case ever succeed, do not let it poison the cases after it.
  delete (Object.prototype as Record<string, unknown>).polluted;
});

describe('entry validation', () => {
  it('accepts the valid entry the corpus starts from', () => {
    const entry = decodeEntry(validEntry(KEY), KEY);
    expect(isDecoded(entry)).toBe(true);
    if (isDecoded(entry)) expect(entry.result).toEqual(baseResult());
  });

  for (const [name, tamper] of POLLUTION) {
    it(`refuses ${name}, and no prototype changes`, () => {
      const entry = decodeEntry(tamper(KEY), KEY);
      expect(isDecoded(entry) ? 'decoded' : entry.rejected).toBe('corrupt');
      prototypesUntouched();
    });
  }

  for (const [name, tamper] of MALFORMED) {
    it(`refuses ${name} as corrupt`, () => {
      const entry = decodeEntry(tamper(KEY), KEY);
      expect(isDecoded(entry) ? 'decoded' : entry.rejected).toBe('corrupt');
      prototypesUntouched();
    });
  }

  it('refuses every truncation of a valid entry, without throwing', () => {
    const text = validEntry(KEY);
    for (let end = 0; end < text.length; end++) {
      const entry = decodeEntry(text.slice(0, end), KEY);
      expect(isDecoded(entry), `truncated at ${end}`).toBe(false);
    }
  });

  it('ignores properties inherited from a tampered Object.prototype', () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.s = [['U', null, 'rows', 0, 'id']];
    proto.c = [['id', 'D']];
    try {
      const entry = decodeEntry(validEntry(KEY), KEY);
      expect(isDecoded(entry)).toBe(true);
      if (isDecoded(entry)) expect(entry.result.rows[0]!.id).toBe(1);
    } finally {
      delete proto.s;
      delete proto.c;
    }
  });

  it('tells the entry of another key (foreign) and another format apart from corruption', () => {
    expect(decodeEntry(validEntry('rp:other'), KEY)).toMatchObject({ rejected: 'foreign' });
    const future = JSON.stringify({ ...JSON.parse(validEntry(KEY)), v: 2 });
    expect(decodeEntry(future, KEY)).toMatchObject({ rejected: 'format' });
  });
});
