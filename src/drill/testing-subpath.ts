/**
 * The entry of the `resilient-pool/testing` subpath: the testing kit and, built on it, the drill
 * engine. It lives with the drill because the drill is the layer that may see both; the kit
 * itself never imports the drill.
 */

export * from '../testing/index.js';
export type {
  DrillReport,
  DrillSample,
  FaultSummary,
  FaultWindow,
  InvariantResult,
} from './report-model.js';
export type { DrillOptions } from './run-drill.js';
export { runDrill } from './run-drill.js';
export type { ScenarioName } from './scenario-names.js';
export { SCENARIOS } from './scenario-names.js';
