// The live loss curve: training loss (mean of each window of steps) and validation loss, drawn on
// a canvas with its axes. Redrawn whole on every update; a few hundred points cost nothing.

export interface Curve {
  readonly label: string;
  readonly color: string;
  readonly points: readonly { step: number; loss: number }[];
}

export function drawCurves(canvas: HTMLCanvasElement, curves: readonly Curve[], maxStep: number): void {
  const ctx = canvas.getContext('2d')!;
  const W = canvas.width,
    H = canvas.height,
    left = 48,
    right = 12,
    top = 12,
    bottom = 28;
  ctx.clearRect(0, 0, W, H);
  const all = curves.flatMap((c) => c.points.map((p) => p.loss));
  if (all.length === 0) return;
  const lo = Math.floor(Math.min(...all) * 4) / 4,
    hi = Math.ceil(Math.max(...all) * 4) / 4 || lo + 1;
  const x = (step: number) => left + ((W - left - right) * step) / Math.max(1, maxStep);
  const y = (loss: number) => top + ((H - top - bottom) * (hi - loss)) / Math.max(1e-9, hi - lo);
  ctx.font = '11px system-ui, sans-serif';
  ctx.strokeStyle = '#ccc';
  ctx.fillStyle = '#555';
  ctx.lineWidth = 1;
  for (let v = lo; v <= hi + 1e-9; v += 0.25) {
    ctx.beginPath();
    ctx.moveTo(left, y(v));
    ctx.lineTo(W - right, y(v));
    ctx.stroke();
    ctx.fillText(v.toFixed(2), 6, y(v) + 4);
  }
  ctx.fillText('step', 6, H - 8);
  for (const s of [0, Math.round(maxStep / 2), maxStep]) {
    const label = String(s);
    ctx.fillText(
      label,
      Math.min(x(s) - ctx.measureText(label).width / 2, W - right - ctx.measureText(label).width),
      H - 8,
    );
  }
  curves.forEach((c, i) => {
    ctx.strokeStyle = c.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    c.points.forEach((p, j) => (j ? ctx.lineTo(x(p.step), y(p.loss)) : ctx.moveTo(x(p.step), y(p.loss))));
    ctx.stroke();
    ctx.fillStyle = c.color;
    ctx.fillText(c.label, W - right - 8 - ctx.measureText(c.label).width, top + 14 + 14 * i);
  });
}
