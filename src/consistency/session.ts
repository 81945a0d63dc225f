/**
 * `db.session(fn)`: an AsyncLocalStorage scope that remembers the latest consistency token of
 * the writes made in it, so that its reads see them without passing tokens around.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type ConsistencyToken, laterToken } from './token.js';

export interface SessionState {
  /** The latest token of a write or committed transaction made in this session. */
  token: ConsistencyToken | undefined;
}

export class Sessions {
  private readonly storage = new AsyncLocalStorage<SessionState>();
  /** False until the first session: calls outside sessions then skip the lookup entirely. */
  private used = false;

  run<T>(fn: () => Promise<T>): Promise<T> {
    this.used = true;
    // A session inside a session shares its state: the inner writes count for the outer reads.
    const state = this.storage.getStore() ?? { token: undefined };
    return this.storage.run(state, fn);
  }

  /** The session of the current async context, if any. */
  current(): SessionState | undefined {
    return this.used ? this.storage.getStore() : undefined;
  }

  record(token: ConsistencyToken | undefined): void {
    const state = this.current();
    if (state !== undefined) state.token = laterToken(state.token, token);
  }
}
