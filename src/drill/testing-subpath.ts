/**
 * The entry of the `resilient-pool/testing` subpath: the testing kit and, built on it, the drill
 * engine. It lives with the drill because the drill is the layer that may see both; the kit
 * itself never imports the drill.
 */

export * from '../testing/index.js';
export type {
  CallSummary,
  DrillReport,
  DrillSample,
  EndpointState,
  FaultSummary,
  FaultWindow,
  InvariantResult,
  LagFigures,
  OverloadFigures,
  RoutingBand,
  TargetCheck,
} from './report-model.js';
export type { DrillOptions } from './run-drill.js';
export { runDrill } from './run-drill.js';
export type { ScenarioInfo, ScenarioName, ScenarioNeeds } from './scenario-names.js';
export { SCENARIO_INFO, SCENARIOS } from './scenario-names.js';
export type { DrillPoolOptions } from './targets.js';
