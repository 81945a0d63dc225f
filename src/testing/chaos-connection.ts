/**
 * One client connection through the ChaosProxy: the accepted socket, the socket to the target
 * and the two lanes between them.
 */
import net from 'node:net';
import { type ChaosFaultState, ChaosLane, type LaneCounters } from './chaos-lane.js';
import type { HostPort } from './loopback.js';

export class ChaosConnection {
  readonly #client: net.Socket;
  readonly #upstream: net.Socket;
  readonly #lanes: readonly [ChaosLane, ChaosLane];
  #openSockets = 2;

  constructor(
    client: net.Socket,
    target: HostPort,
    faults: ChaosFaultState,
    counters: { toTarget: LaneCounters; fromTarget: LaneCounters },
    onClosed: (connection: ChaosConnection) => void,
  ) {
    this.#client = client;
    // Connected even inside a black hole, so that a connection accepted there can flow after
    // heal(); on loopback that costs nothing and tells the target nothing until bytes arrive.
    // allowHalfOpen on both ends: each lane passes its own FIN on when its bytes are out.
    this.#upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    // Nagle's algorithm would add its own delays to small writes and blur injected latency.
    client.setNoDelay(true);
    this.#upstream.setNoDelay(true);
    this.#lanes = [
      new ChaosLane(client, this.#upstream, faults, counters.toTarget),
      new ChaosLane(this.#upstream, client, faults, counters.fromTarget),
    ];
    const onSocketClosed = () => {
      this.#openSockets--;
      if (this.#openSockets === 0) {
        for (const lane of this.#lanes) lane.dispose();
        onClosed(this);
      }
    };
    client.once('close', onSocketClosed);
    this.#upstream.once('close', onSocketClosed);
  }

  /** Aborts both sides with an RST, as a middlebox that drops the connection's state would. */
  reset(): void {
    for (const socket of [this.#client, this.#upstream]) {
      if (!socket.destroyed) socket.resetAndDestroy();
    }
  }

  /** Closes both sides at once; for close(), where nothing is owed to anyone. */
  destroy(): void {
    for (const lane of this.#lanes) lane.dispose();
    this.#client.destroy();
    this.#upstream.destroy();
  }

  dropQueued(): void {
    for (const lane of this.#lanes) lane.dropQueued();
  }

  flushAll(): void {
    for (const lane of this.#lanes) lane.flushAll();
  }
}
