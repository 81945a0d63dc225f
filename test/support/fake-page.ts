/**
 * Just enough of a browser page to run the drill report's script in Node: the elements it looks
 * up, SVG elements it can build, a text width estimate, pointer events. For checks that must not
 * depend on a browser being installed; the real rendering is tested in headless chromium.
 */
import vm from 'node:vm';

export class FakeElement {
  readonly attributes = new Map<string, string>();
  readonly children: FakeElement[] = [];
  readonly dataset: Record<string, string> = {};
  readonly style: Record<string, string> = {};
  readonly listeners = new Map<string, Array<(event: unknown) => void>>();
  parentNode: FakeElement | null = null;
  hidden = false;
  clientWidth = 0;
  offsetWidth = 120;
  private text = '';

  constructor(
    readonly ownerDocument: FakeDocument,
    readonly tagName: string,
    readonly namespaceURI: string | null,
  ) {}

  get firstChild(): FakeElement | null {
    return this.children[0] ?? null;
  }
  get textContent(): string {
    return this.children.length ? this.children.map((c) => c.textContent).join('') : this.text;
  }
  set textContent(value: string) {
    this.children.length = 0;
    this.text = value;
  }
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, String(value));
  }
  appendChild(child: FakeElement): FakeElement {
    child.parentNode = this;
    this.children.push(child);
    return child;
  }
  removeChild(child: FakeElement): FakeElement {
    this.children.splice(this.children.indexOf(child), 1);
    child.parentNode = null;
    return child;
  }
  addEventListener(type: string, listener: (event: unknown) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  dispatch(type: string, event: unknown = {}): void {
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
  getBoundingClientRect() {
    return { left: 0, top: 0, width: this.clientWidth || 960 };
  }
  getComputedTextLength(): number {
    return this.textContent.length * 6.5;
  }
  /** This element and every descendant, depth first. */
  *all(): Generator<FakeElement> {
    yield this;
    for (const child of this.children) yield* child.all();
  }
}

export class FakeDocument {
  readonly body = { dataset: {} as Record<string, string> };
  readonly byId = new Map<string, FakeElement>();
  getElementById(id: string): FakeElement | null {
    for (const root of this.byId.values()) {
      for (const e of root.all()) if (e.attributes.get('id') === id) return e;
    }
    return this.byId.get(id) ?? null;
  }
  createElement(name: string): FakeElement {
    return new FakeElement(this, name, null);
  }
  createElementNS(namespace: string | null, name: string): FakeElement {
    return new FakeElement(this, name, namespace);
  }
}

export interface FakePage {
  readonly document: FakeDocument;
  readonly svg: FakeElement;
  readonly tip: FakeElement;
  readonly box: FakeElement;
  resize(width: number): void;
}

/** Runs the page's inline script against the page's own data block, the chart `width` wide. */
export function runReportPage(html: string, width: number): FakePage {
  const data = /<script type="application\/json" id="drill-data">([\s\S]*?)<\/script>/.exec(html);
  const script = /<script>([\s\S]*?)<\/script>/.exec(html);
  if (!data || !script) throw new Error('not a drill report page');
  const document = new FakeDocument();
  const svg = document.createElementNS('svg', 'svg');
  const box = document.createElement('div');
  const tip = document.createElement('div');
  const block = document.createElement('script');
  box.clientWidth = width;
  tip.hidden = true;
  block.textContent = data[1]!;
  const elements = { 'drill-data': block, timeline: svg, chart: box, 'chart-tip': tip };
  for (const [id, e] of Object.entries(elements)) document.byId.set(id, e);
  const resizers: Array<() => void> = [];
  const window = {
    addEventListener: (_type: string, listener: () => void) => resizers.push(listener),
    requestAnimationFrame: (callback: () => void) => {
      callback();
      return 1;
    },
  };
  vm.runInNewContext(script[1]!, { document, window });
  const resize = (w: number) => {
    box.clientWidth = w;
    for (const listener of resizers) listener();
  };
  return { document, svg, tip, box, resize };
}
