/**
 * A few Prometheus counters and histograms, written out in the text
 * exposition format (version 0.0.4). In-process figures (HTTP, e-mail) count
 * since this process started; deployment figures come from the control
 * database, so they survive restarts and include deployments run by other
 * instances.
 */
type Labels = Record<string, string>;

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([key, value]) => `${key}="${value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}

export class Counter {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelText(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${labelText(labels)} ${value}`);
    return lines.join("\n");
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: readonly number[],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const key = labelText(labels);
    const entry = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((bound, index) => {
      if (value <= bound) entry.counts[index]! += 1;
    });
    entry.sum += value;
    entry.count += 1;
    this.series.set(key, entry);
  }
  render(): string {
    return renderHistogram(this.name, this.help, this.buckets, [...this.series.values()]);
  }
}

export function renderHistogram(
  name: string,
  help: string,
  buckets: readonly number[],
  series: readonly { labels: Labels; counts: readonly number[]; sum: number; count: number }[],
): string {
  const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
  for (const { labels, counts, sum, count } of series) {
    buckets.forEach((bound, index) => lines.push(`${name}_bucket${labelText({ ...labels, le: String(bound) })} ${counts[index] ?? 0}`));
    lines.push(`${name}_bucket${labelText({ ...labels, le: "+Inf" })} ${count}`);
    lines.push(`${name}_sum${labelText(labels)} ${sum}`);
    lines.push(`${name}_count${labelText(labels)} ${count}`);
  }
  return lines.join("\n");
}

export function renderGauge(name: string, help: string, series: readonly { labels: Labels; value: number }[]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...series.map(({ labels, value }) => `${name}${labelText(labels)} ${value}`)].join("\n");
}

export function renderCounter(name: string, help: string, series: readonly { labels: Labels; value: number }[]): string {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} counter`, ...series.map(({ labels, value }) => `${name}${labelText(labels)} ${value}`)].join("\n");
}

export const DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1200] as const;
export const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** The in-process metrics of one service instance. */
export class ServiceMetrics {
  readonly signups = new Counter("onboarding_signups_total", "Webhook calls by result (accepted, duplicate, conflict, invalid, unauthorized, replay).");
  readonly emails = new Counter("onboarding_emails_total", "Welcome e-mail send attempts by result (sent, failed).");
  readonly http = new Histogram("onboarding_http_request_duration_seconds", "HTTP request duration by route and status.", HTTP_BUCKETS);
}
