/**
 * Preloaded (`node --require`) into the packed drill by pack.test.ts: reports every 'error'
 * event emitted with no listener, naming the emitter's class and where it was emitted, before
 * Node turns it into a crash. CI once saw the drill die of such an event (a 57P01 during
 * primary-restart) with a trace that named neither; this makes a repeat say which object it was.
 * It changes nothing else: the event is then emitted as before.
 */
const { EventEmitter } = require('node:events');

const emit = EventEmitter.prototype.emit;
EventEmitter.prototype.emit = function watchedEmit(event, ...args) {
  if (event === 'error' && this.listenerCount('error') === 0) {
    const err = args[0];
    process._rawDebug(
      `[unhandled-error-watch] 'error' with no listener on ${this?.constructor?.name}: ` +
        `${err?.code ?? ''} ${err?.message ?? err}\n${new Error('emitted at').stack}`,
    );
  }
  return emit.call(this, event, ...args);
};
