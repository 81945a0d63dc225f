import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { HealthWindow } from '../../../src/breaker/health-window.js';
import type { HealthWindowSettings } from '../../../src/breaker/types.js';

const settings: HealthWindowSettings = {
  errorThresholdPercentage: 50,
  volumeThreshold: 4,
  consecutiveFailures: 0,
  rollingCountTimeout: 1_000,
  rollingCountBuckets: 4,
};

describe('HealthWindow', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('counts successes and failures of every live bucket', async () => {
    const window = new HealthWindow(settings);
    window.success();
    await vi.advanceTimersByTimeAsync(250);
    window.success();
    expect(window.failure()).toBe(false);
    expect(window.calls()).toBe(3);
    window.stop();
  });

  it('drops a bucket once it is older than the window', async () => {
    const window = new HealthWindow(settings);
    window.success();
    window.failure();
    await vi.advanceTimersByTimeAsync(750);
    expect(window.calls()).toBe(2);
    await vi.advanceTimersByTimeAsync(250);
    expect(window.calls()).toBe(0);
    window.stop();
  });

  it('opens above the percentage only once the volume is reached', () => {
    const window = new HealthWindow(settings);
    expect(window.failure()).toBe(false);
    expect(window.failure()).toBe(false);
    expect(window.failure()).toBe(false);
    expect(window.failure()).toBe(true); // 4 of 4
    window.stop();
  });

  it('a streak opens whatever the volume; a success ends it', () => {
    const window = new HealthWindow({ ...settings, consecutiveFailures: 2, volumeThreshold: 100 });
    expect(window.failure()).toBe(false);
    window.success();
    expect(window.failure()).toBe(false);
    expect(window.failure()).toBe(true);
    window.stop();
  });

  it('reset forgets everything, streak included', () => {
    const window = new HealthWindow({ ...settings, consecutiveFailures: 2 });
    window.success();
    window.failure();
    window.reset();
    expect(window.calls()).toBe(0);
    expect(window.failure()).toBe(false);
    window.stop();
  });

  it('stop clears its timer', () => {
    const window = new HealthWindow(settings);
    expect(vi.getTimerCount()).toBe(1);
    window.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
