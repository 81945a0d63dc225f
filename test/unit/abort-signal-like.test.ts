/**
 * LightAbortSignal: the abort signal the hedge race gives each side. It must behave as an
 * AbortSignal does for the endpoint pipeline: abort once, listeners once each and in order, none
 * after the abort, removal honoured, a throwing listener reported without stopping the others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LightAbortSignal } from '../../src/endpoint/abort-signal-like.js';

describe('LightAbortSignal', () => {
  const uncaught: unknown[] = [];
  const record = (err: unknown) => uncaught.push(err);
  afterEach(() => {
    process.off('uncaughtException', record);
    uncaught.length = 0;
  });

  it('aborts once: reason kept, listeners called once each, in the order added', () => {
    const signal = new LightAbortSignal();
    const calls: string[] = [];
    signal.addEventListener('abort', () => calls.push(`a:${String(signal.reason)}`));
    signal.addEventListener('abort', () => calls.push('b'), { once: true });
    expect(signal.aborted).toBe(false);
    expect(signal.listenerCount).toBe(2);
    signal.abort('first');
    signal.abort('second');
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe('first');
    expect(calls).toEqual(['a:first', 'b']);
    expect(signal.listenerCount).toBe(0);
  });

  it('never calls a listener added after the abort, nor one removed before it', () => {
    const signal = new LightAbortSignal();
    const calls: string[] = [];
    const removed = () => calls.push('removed');
    const kept = () => calls.push('kept');
    signal.addEventListener('abort', removed);
    signal.addEventListener('abort', kept);
    signal.removeEventListener('abort', removed);
    signal.removeEventListener('abort', () => {}); // never added: nothing happens
    expect(signal.listenerCount).toBe(1);
    signal.abort(new Error('x'));
    signal.addEventListener('abort', () => calls.push('late'));
    expect(calls).toEqual(['kept']);
    expect(signal.listenerCount).toBe(0);
  });

  it('adds a listener at most once, as EventTarget does', () => {
    const signal = new LightAbortSignal();
    const real = new AbortController();
    let light = 0;
    let target = 0;
    const onLight = () => light++;
    const onTarget = () => target++;
    for (const [s, l] of [
      [signal, onLight],
      [real.signal, onTarget],
    ] as const) {
      s.addEventListener('abort', l);
      s.addEventListener('abort', l);
    }
    signal.abort('r');
    real.abort('r');
    expect([light, target]).toEqual([1, 1]);
    const again = new LightAbortSignal();
    again.addEventListener('abort', onLight);
    again.addEventListener('abort', onLight);
    again.removeEventListener('abort', onLight);
    again.abort('r');
    expect(light).toBe(1);
  });

  it('reports a throwing listener as an uncaught exception on the next tick; the others still run', async () => {
    process.on('uncaughtException', record);
    const signal = new LightAbortSignal();
    const calls: string[] = [];
    signal.addEventListener('abort', () => {
      throw new Error('listener bug');
    });
    signal.addEventListener('abort', () => calls.push('after'));
    signal.abort('r');
    expect(calls).toEqual(['after']);
    await new Promise((resolve) => setImmediate(resolve));
    expect(uncaught).toHaveLength(1);
    expect((uncaught[0] as Error).message).toBe('listener bug');
  });
});
