/**
 * Primary discovery: with `primary: [candidates]`, which candidate is writable, found at start and
 * found again when the primary's circuit opens, it answers read-only, it is declared down, or its
 * probes keep failing. Writes that arrive meanwhile wait (call-path.ts) and are sent once.
 */
import type { Endpoint } from '../endpoint/endpoint.js';
import type { ResolvedEndpointConfig } from '../options/resolved.js';
import { CandidatePrimary } from '../routing/primary-candidates.js';
import { describeError } from '../telemetry/describe-error.js';
import type { LoggerLike } from '../telemetry/logger.js';

export class PrimaryDiscovery {
  /** The pool the primary endpoint wraps: it forwards to the writable candidate. */
  readonly candidates: CandidatePrimary;
  private primary: Endpoint | undefined;

  constructor(
    candidates: readonly ResolvedEndpointConfig[],
    probeTimeoutMs: number,
    private readonly logger: LoggerLike,
    onFailover: (from: string, to: string) => void,
  ) {
    this.candidates = new CandidatePrimary(
      candidates.map((c) => ({ name: c.name, pool: c.pool })),
      probeTimeoutMs,
      (from, to) => {
        logger.warn({ from, to }, `resilient-pool: writes moved from "${from}" to "${to}"`);
        onFailover(from, to);
      },
    );
  }

  /** The endpoint that wraps the candidates; set once it exists. */
  attach(primary: Endpoint): void {
    this.primary = primary;
  }

  /**
   * Asks the candidates which is writable and moves writes there. When one answered, the primary
   * endpoint takes calls again (it may lead to another server now): it is marked up and its
   * circuit closed.
   */
  rediscover(): void {
    const { candidates } = this;
    if (candidates.isDiscovering) return;
    candidates.discover().then(
      () => {
        const primary = this.primary;
        if (primary === undefined) return;
        primary.markUp();
        if (primary.breaker.state !== 'closed') primary.breaker.reset();
      },
      (err: unknown) =>
        this.logger.warn(
          { err: describeError(err) },
          'resilient-pool: no writable primary among the candidates (yet)',
        ),
    );
  }
}
