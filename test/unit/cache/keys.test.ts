import { describe, expect, it } from 'vitest';
import { jitteredTtl } from '../../../src/cache/expiry.js';
import {
  entryHash,
  entryKey,
  identitySegment,
  lockKey,
  normalizeTags,
  scopeSegment,
  statementParts,
  tagKey,
  tagSegment,
  versionFloor,
} from '../../../src/cache/keys.js';

const SQL = 'SELECT * FROM users WHERE email = $1 AND tenant = $2';

function keyOf(values: unknown[], opts: { rowMode?: string; tags?: string[]; key?: string } = {}) {
  const hash = entryHash(SQL, values, opts.rowMode ?? '', normalizeTags(opts.tags), opts.key);
  if (hash === undefined) throw new Error('no key: pg would refuse these values');
  return entryKey('rp:', scopeSegment(undefined), hash, undefined);
}

describe('cache keys', () => {
  it('never show a parameter, the statement or a caller key in clear', () => {
    const secret = 'alice@example.com';
    const key = keyOf([secret, 'p4ssw0rd-tenant']);
    expect(key).not.toContain('alice');
    expect(key).not.toContain('p4ssw0rd');
    expect(key).not.toContain('users');
    expect(key).toMatch(/^rp:~:[A-Za-z0-9_-]{43}$/);
    const own = keyOf([], { key: `user:${secret}` });
    expect(own).not.toContain('alice');
  });

  it('differ when the parameters, the rowMode, the tags or the caller key differ', () => {
    const keys = [
      keyOf(['a', 'b']),
      keyOf(['a', 'c']),
      keyOf(['a', 'b'], { rowMode: 'array' }),
      keyOf(['a', 'b'], { tags: ['users'] }),
      keyOf(['a', 'b'], { tags: ['orders'] }),
      keyOf([], { key: 'k1' }),
      keyOf([], { key: 'k2' }),
      keyOf([], { key: 'k1', tags: ['users'] }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('do not depend on the order tags are listed in', () => {
    expect(keyOf([1], { tags: ['b', 'a', 'b'] })).toBe(keyOf([1], { tags: ['a', 'b'] }));
  });

  it('keep text and values apart (no concatenation ambiguity)', () => {
    const a = entryHash('SELECT $1', ['1'], '', [], undefined);
    const b = entryHash('SELECT $1"', [], '', [], undefined);
    expect(a).not.toBe(b);
  });

  it('show a plain scope as given and hash anything else', () => {
    expect(scopeSegment('tenant-42')).toBe('tenant-42');
    expect(scopeSegment(undefined)).toBe('~');
    for (const odd of ['', 'a:b', '{tags}', 'has space', 'x'.repeat(65), 'alice@example.com']) {
      const segment = scopeSegment(odd);
      expect(segment).toMatch(/^#[A-Za-z0-9_-]{22}$/);
    }
    expect(scopeSegment('a:b')).not.toBe(scopeSegment('a;b'));
  });

  it('put every tag version in one cluster slot, and hash tags that are not plain', () => {
    expect(tagKey('rp:', 'users')).toBe('rp:{tags}:users');
    expect(tagKey('rp:', 'user:42')).toBe('rp:{tags}:user:42');
    expect(tagKey('rp:', 'user:alice@example.com')).toMatch(/^rp:\{tags\}:#[A-Za-z0-9_-]{22}$/);
    expect(tagSegment('x y')).not.toBe(tagSegment('x  y'));
  });

  it('append tag versions and name locks after their entry', () => {
    const key = entryKey('rp:', 'acme', 'HASH', ['17', '42']);
    expect(key).toBe('rp:acme:HASH:17.42');
    expect(lockKey(key)).toBe('rp:acme:HASH:17.42:lock');
  });

  it('take values given apart over a QueryConfig’s own, as pg does', () => {
    const config = { text: 'SELECT $1', values: [1], rowMode: 'array' as const };
    expect(statementParts(config, undefined)).toEqual({
      sql: 'SELECT $1',
      values: [1],
      rowMode: 'array',
    });
    expect(statementParts(config, [2]).values).toEqual([2]);
    expect(statementParts('SELECT 1', undefined)).toEqual({
      sql: 'SELECT 1',
      values: undefined,
      rowMode: '',
    });
  });

  it('tell results in binary format apart, and treat a rowMode pg ignores as none', () => {
    expect(statementParts({ text: 'SELECT 1', binary: true } as never, undefined).rowMode).toBe(
      '+binary',
    );
    expect(
      statementParts({ text: 'SELECT 1', rowMode: 'objects' } as never, undefined).rowMode,
    ).toBe('');
  });

  it('start versions from the clock in microseconds', () => {
    expect(versionFloor(1_700_000_000_000)).toBe(1_700_000_000_000_000);
    expect(Number.isSafeInteger(versionFloor())).toBe(true);
  });
});

describe('cache keys follow what pg sends', () => {
  const same = (a: unknown[], b: unknown[]) => expect(keyOf(a)).toBe(keyOf(b));
  const apart = (a: unknown[], b: unknown[]) => expect(keyOf(a)).not.toBe(keyOf(b));

  it('tell apart values whose toPostgres() differ, however alike their fields', () => {
    class Money {
      constructor(
        readonly amount: number,
        private readonly currency: string,
      ) {}
      toPostgres() {
        return `${this.amount} ${this.currency}`;
      }
    }
    // Enumerable fields alike (JSON.stringify gives {"amount":5} for both): sent differently.
    const eur = new Money(5, 'EUR');
    const usd = new Money(5, 'USD');
    Object.defineProperty(eur, 'currency', { enumerable: false });
    Object.defineProperty(usd, 'currency', { enumerable: false });
    expect(JSON.stringify(eur)).toBe(JSON.stringify(usd));
    apart([eur], [usd]);
    same([eur], ['5 EUR']);
  });

  it('share a key between values pg sends alike', () => {
    same([1], ['1']);
    same([null], [undefined]);
    same([true], ['true']);
    same([10n], ['10']);
    same([-0], [0]);
    same([[1, 'a', null]], ['{"1","a",NULL}']);
    same([{ a: 1 }], ['{"a":1}']);
    same([new Uint8Array([1, 2])], [Buffer.from([1, 2])]);
  });

  it('keep apart values pg sends differently', () => {
    apart([null], ['']);
    apart([null], ['null']);
    // A Buffer is a binary-format parameter; a string with the same bytes is text.
    apart([Buffer.from('ab')], ['ab']);
    apart([new Date(0)], [new Date(1)]);
    apart([[1, 2]], ['1,2']);
    apart(['a', 'b'], ['ab']);
    apart(['a', ''], ['a']);
    apart([], ['']);
  });

  it('give no key for values pg cannot send, so the read goes to the database', () => {
    const circular: { toPostgres?: () => unknown } = {};
    circular.toPostgres = () => circular;
    const selfish: Record<string, unknown> = {};
    selfish.self = selfish;
    const cases: unknown[][] = [
      [selfish],
      [{ big: 1n }],
      [circular],
      [
        {
          toPostgres() {
            throw new Error('nope');
          },
        },
      ],
      [[{ toPostgres: () => Buffer.from('x') }]],
    ];
    for (const values of cases) {
      expect(entryHash(SQL, values, '', [], undefined)).toBeUndefined();
      // With a caller's key too: a hit must not answer a call pg would fail.
      expect(entryHash(SQL, values, '', [], 'mine')).toBeUndefined();
    }
    expect(entryHash(SQL, { 0: 'a' } as never, '', [], undefined)).toBeUndefined();
  });

  it('treat no values and an empty array alike', () => {
    expect(entryHash(SQL, undefined, '', [], undefined)).toBe(
      entryHash(SQL, [], '', [], undefined),
    );
  });
});

describe('identity segment', () => {
  it('shows a plain namespace as given, hashes any other, and prefers it to the identity', () => {
    expect(identitySegment('orders-db', '@AAAAAAAAAAAAAAAAAAAAAA')).toBe('orders-db');
    expect(identitySegment('a:b{x}', undefined)).toMatch(/^#[A-Za-z0-9_-]{22}$/);
    expect(identitySegment(undefined, '@AAAAAAAAAAAAAAAAAAAAAA')).toBe('@AAAAAAAAAAAAAAAAAAAAAA');
    expect(identitySegment(undefined, 'postgres://u:secret@h/db')).toMatch(/^@[A-Za-z0-9_-]{22}$/);
    expect(identitySegment(undefined, undefined)).toBe('~');
  });
});

describe('ttl jitter', () => {
  it('stays within ±jitter of the ttl, and spreads', () => {
    expect(jitteredTtl(30_000, 0.1, () => 0)).toBe(27_000);
    expect(jitteredTtl(30_000, 0.1, () => 0.999_999_9)).toBe(33_000);
    expect(jitteredTtl(30_000, 0.1, () => 0.5)).toBe(30_000);
    const seen = new Set<number>();
    for (let i = 0; i < 1_000; i++) {
      const ttl = jitteredTtl(30_000, 0.1);
      expect(ttl).toBeGreaterThanOrEqual(27_000);
      expect(ttl).toBeLessThanOrEqual(33_000);
      seen.add(ttl);
    }
    expect(seen.size).toBeGreaterThan(100);
  });

  it('is exact without jitter and never below 1 ms', () => {
    expect(jitteredTtl(1_234, 0)).toBe(1_234);
    expect(jitteredTtl(1, 1, () => 0)).toBe(1);
  });
});
