/**
 * LightAbortSignal: the abort signal the hedge race gives each side. It must behave as an
 * AbortSignal does for the endpoint pipeline: abort once, listeners once each and in order, none
 * after the abort, removal honoured, a throwing listener reported without stopping the others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LightAbortSignal } from '../../src/endpoint/abort-signal-like.js';
import { Gate } from '../../src/endpoint/gate.js';
import { AbortedError } from '../../src/errors.js';

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

  it('ends a wait in the gate as an AbortSignal does: AbortedError with its reason, place freed, no listener left', async () => {
    const gate = new Gate({ name: 'ep', maxConcurrent: 1, maxWaiting: 1, acquireTimeout: 60_000 });
    expect(gate.tryAcquire()).toBe(true);
    const signal = new LightAbortSignal();
    const waiting = gate.acquire(signal);
    expect(gate.waiting).toBe(1);
    expect(signal.listenerCount).toBe(1);
    const reason = new Error('lost the race');
    signal.abort(reason);
    await expect(waiting).rejects.toBeInstanceOf(AbortedError);
    await expect(waiting).rejects.toMatchObject({ cause: reason });
    expect(gate.waiting).toBe(0);
    expect(signal.listenerCount).toBe(0);
    // Already aborted: refused at once, without a place in the queue.
    await expect(gate.acquire(signal)).rejects.toBeInstanceOf(AbortedError);
    expect(gate.waiting).toBe(0);
    gate.release();
  });

  it('a wait that got its permit leaves no listener behind', async () => {
    const gate = new Gate({ name: 'ep', maxConcurrent: 1, maxWaiting: 1, acquireTimeout: 60_000 });
    gate.tryAcquire();
    const signal = new LightAbortSignal();
    const waiting = gate.acquire(signal);
    gate.release();
    await waiting;
    expect(signal.listenerCount).toBe(0);
    gate.release();
  });
});
