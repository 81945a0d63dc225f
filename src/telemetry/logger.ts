/**
 * The logger seam. Any pino-compatible logger works; the library only calls the four level
 * methods with (object, message) and never passes connection strings or passwords.
 */
import pino from 'pino';

/** The subset of pino's API the library uses. */
export interface LoggerLike {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const SILENT: LoggerLike = { error() {}, warn() {}, info() {}, debug() {} };

/**
 * The logger a pool uses: the caller's, none (`false`), or by default pino at 'warn' on stderr so
 * that idle-client errors and breaker changes are never silent, while stdout stays the app's.
 */
export function createLogger(option: LoggerLike | false | undefined): LoggerLike {
  if (option === false) return SILENT;
  if (option !== undefined) return option;
  return pino(
    { name: 'resilient-pool', level: process.env.RESILIENT_POOL_LOG_LEVEL ?? 'warn' },
    pino.destination({ dest: 2, sync: true }),
  );
}
