// A small reference model of what the windowed-aggregation stream must emit, written from
// notes/semantics.md: hopping (and, with slide = size, tumbling) windows keyed by an int64 key, with
// count, sum and max of one value, allowed lateness, and a watermark set by the caller. It keeps
// every accepted value per window and recomputes the aggregates when a window is emitted.

export interface ModelRow {
  key: bigint;
  start: number;
  end: number;
  n: number;
  sum: number | null;
  max: number | null;
}

interface Window {
  key: bigint;
  start: number;
  end: number;
  values: number[];
  /** Never emitted, or changed since it was last emitted. */
  dirty: boolean;
}

export class WindowModel {
  /** The watermark; -Infinity before the first advance. */
  private watermark = -Infinity;
  private readonly windows = new Map<string, Window>();
  lateEvents = 0;

  constructor(
    private readonly size: number,
    private readonly slide: number,
    private readonly lateness: number,
  ) {}

  /** Adds one event to every window containing it that is still open (end + lateness > watermark). */
  ingest(key: bigint, time: number, value: number): void {
    let accepted = false;
    for (let start = Math.floor(time / this.slide) * this.slide; start > time - this.size; start -= this.slide) {
      const end = start + this.size;
      if (end + this.lateness <= this.watermark) continue;
      const id = `${key}/${start}`;
      let w = this.windows.get(id);
      if (!w) this.windows.set(id, (w = { key, start, end, values: [], dirty: true }));
      w.values.push(value);
      w.dirty = true;
      accepted = true;
    }
    if (!accepted) this.lateEvents++;
  }

  /** Raises the watermark, returns the windows that fire in (end, key, start) order, then purges. */
  advance(to: number): ModelRow[] {
    this.watermark = Math.max(this.watermark, to);
    const fired = [...this.windows.values()].filter((w) => w.end <= this.watermark && w.dirty);
    fired.sort((a, b) => a.end - b.end || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) || a.start - b.start);
    const rows = fired.map((w) => {
      w.dirty = false;
      return {
        key: w.key,
        start: w.start,
        end: w.end,
        n: w.values.length,
        sum: w.values.reduce((a, b) => a + b, 0),
        max: Math.max(...w.values),
      };
    });
    for (const [id, w] of this.windows) if (this.watermark >= w.end + this.lateness) this.windows.delete(id);
    return rows;
  }
}
