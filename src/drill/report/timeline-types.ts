/**
 * Types of the page script (timeline-script.ts): what it uses of the browser, the report data as
 * it reads it back, and its own state. The library is compiled without the DOM lib (it runs on
 * Node), so the few DOM shapes the script touches are declared here. Types only: nothing here
 * runs, and the script may import it (type imports are erased).
 */

/** An element of the report page (HTML or SVG). */
export interface PageElement {
  readonly namespaceURI: string | null;
  readonly ownerDocument: PageDocument;
  readonly parentNode: PageElement | null;
  readonly firstChild: PageElement | null;
  textContent: string | null;
  hidden: boolean;
  readonly clientWidth: number;
  readonly offsetWidth: number;
  readonly style: { left: string; top: string };
  setAttribute(name: string, value: string): void;
  appendChild(child: PageElement): PageElement;
  removeChild(child: PageElement): PageElement;
  getBoundingClientRect(): { readonly left: number; readonly top: number; readonly width: number };
  addEventListener(type: 'mousemove' | 'mouseleave', listener: (event: PagePointer) => void): void;
  /** SVG text content elements only. */
  getComputedTextLength?(): number;
}

export interface PagePointer {
  readonly clientX: number;
  readonly clientY: number;
}

export interface PageDocument {
  readonly body: { readonly dataset: Record<string, string | undefined> };
  getElementById(id: string): PageElement | null;
  createElement(name: string): PageElement;
  createElementNS(namespace: string | null, name: string): PageElement;
}

export interface PageWindow {
  addEventListener(type: 'resize', listener: () => void): void;
  requestAnimationFrame(callback: () => void): number;
}

/**
 * The report as the page reads it back from its JSON block. Typed loosely on purpose: the script
 * checks every field before use, so a report from another version still draws.
 */
export interface PageData {
  readonly samples?: unknown;
  readonly faults?: unknown;
  readonly endpoints?: unknown;
  readonly durationMs?: unknown;
}

/** One endpoint's routing and connections in a sample, as the page reads them back. */
export interface PageEndpointState {
  readonly routing?: unknown;
  readonly pending?: unknown;
  readonly idle?: unknown;
  readonly used?: unknown;
  readonly max?: unknown;
  readonly calls?: unknown;
  readonly lagMs?: unknown;
}

export interface PageSample {
  readonly t?: unknown;
  readonly opsPerSec?: unknown;
  readonly p50?: unknown;
  readonly p99?: unknown;
  readonly errors?: unknown;
  readonly retries?: unknown;
  readonly fault?: unknown;
  readonly endpoints?: Readonly<Record<string, unknown>>;
  readonly endpointState?: Readonly<Record<string, PageEndpointState | undefined>>;
  readonly primaryNode?: unknown;
}

export interface PageFault {
  readonly name?: unknown;
  readonly target?: unknown;
  readonly description?: unknown;
  readonly start?: unknown;
  readonly end?: unknown;
}

/** A breaker band's state; 'unknown' when a sample does not say. */
export type BandState = 'closed' | 'half-open' | 'open' | 'unknown';

/** What routing did with an endpoint in a sample (report-model's RoutingBand); 'unknown' when a sample does not say. */
export type RoutingState =
  | 'serving'
  | 'avoided'
  | 'idle'
  | 'lagging'
  | 'ejected'
  | 'down'
  | 'unknown';

/** A band's colour and the word written on it. */
export interface Swatch {
  readonly fill: string;
  readonly label: string;
}

/** Colours of the chart (the legend in the page's markup uses the same). */
export interface Palette {
  readonly band: Readonly<Record<BandState, Swatch>>;
  readonly routing: Readonly<Record<RoutingState, Swatch>>;
  /** Connections chart: used, idle, pending. */
  readonly used: string;
  readonly idle: string;
  readonly pending: string;
  readonly p50: string;
  readonly p99: string;
  readonly ops: string;
  readonly opsEdge: string;
  readonly grid: string;
  readonly axis: string;
  readonly err: string;
  readonly fault: string;
}

/** The report and the page elements it is drawn into: fixed for the life of the page. */
export interface Timeline {
  readonly svg: PageElement;
  readonly box: PageElement;
  readonly tip: PageElement | null;
  readonly samples: readonly PageSample[];
  readonly faults: readonly PageFault[];
  readonly endpoints: readonly unknown[];
  /** Endpoints whose routing and connections the samples carry (a lane each). */
  readonly lanes: readonly string[];
  /** [from, to] of each sample, ms since the start. */
  readonly windows: ReadonlyArray<readonly [number, number]>;
  /** The time axis ends here, ms. */
  readonly tMax: number;
  /** Over three minutes: times read m:ss. */
  readonly longTime: boolean;
  readonly colour: Palette;
}

/** Geometry of one drawing, in SVG units; `g` holds everything drawn. */
export interface Frame {
  readonly g: PageElement;
  readonly W: number;
  readonly H: number;
  readonly x0: number;
  readonly x1: number;
  readonly yTop: number;
  readonly yBot: number;
  readonly gridBottom: number;
  readonly rowH: number;
  readonly rowGap: number;
  readonly errY: number;
  readonly bandY0: number;
  /** Top of the first endpoint lane (routing band, then connections chart). */
  readonly laneY0: number;
  /** Height of one lane, and of its connections chart. */
  readonly laneH: number;
  readonly poolH: number;
  readonly tMax: number;
}

/** Latency axis (log, from `lo` to `hi` ms, `decades` apart) and throughput axis (0..opsMax). */
export interface Scales {
  readonly lo: number;
  readonly hi: number;
  readonly decades: number;
  readonly opsMax: number;
}

/** Attributes of a new SVG element. */
export type Attrs = Readonly<Record<string, string | number>>;

/** One run of samples in the same routing state (and, for the primary, the same node). */
export interface LaneSegment {
  readonly name: string;
  readonly st: RoutingState;
  /** The node writes went to, on the primary's lane. */
  readonly node: string | null;
  readonly y: number;
  readonly from: number;
  readonly to: number;
}

/** One run of samples in the same breaker state, for one endpoint. */
export interface Segment {
  readonly name: unknown;
  readonly st: BandState;
  readonly y: number;
  /** Start and end, ms. */
  readonly from: number;
  readonly to: number;
}
