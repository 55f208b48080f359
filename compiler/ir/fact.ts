// What the range analysis (range.ts, int-range.ts) knows of a node: whether it can be NaN, and an
// interval holding every other value it can take (±Infinity when unbounded).
export interface Fact {
  readonly nan: boolean;
  readonly lo: number;
  readonly hi: number;
}
