// Zone shapes in frame pixels: hit tests, moves and resizes. Pure functions.

export function shapeOf(zone) {
  if (zone.rectangle) return { rectangle: [...zone.rectangle] };
  if (zone.circle) return { circle: [...zone.circle] };
  return { polygon: zone.polygon.map((p) => [...p]) };
}

export function contains(shape, x, y) {
  if (shape.rectangle) {
    const [x0, y0, x1, y1] = shape.rectangle;
    return x >= x0 && x <= x1 && y >= y0 && y <= y1;
  }
  if (shape.circle) {
    const [cx, cy, r] = shape.circle;
    return Math.hypot(x - cx, y - cy) <= r;
  }
  let inside = false;
  const v = shape.polygon;
  for (let i = 0, j = v.length - 1; i < v.length; j = i++) {
    const [xi, yi] = v[i];
    const [xj, yj] = v[j];
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

// Handles a shape can be resized by: [{x, y, id}]
export function handles(shape) {
  if (shape.rectangle) {
    const [x0, y0, x1, y1] = shape.rectangle;
    return [
      { x: x0, y: y0, id: "x0y0" }, { x: x1, y: y0, id: "x1y0" },
      { x: x0, y: y1, id: "x0y1" }, { x: x1, y: y1, id: "x1y1" },
    ];
  }
  if (shape.circle) {
    const [cx, cy, r] = shape.circle;
    return [{ x: cx + r, y: cy, id: "r" }];
  }
  return shape.polygon.map(([x, y], i) => ({ x, y, id: i }));
}

export function moved(shape, dx, dy) {
  if (shape.rectangle) {
    const [x0, y0, x1, y1] = shape.rectangle;
    return { rectangle: [x0 + dx, y0 + dy, x1 + dx, y1 + dy] };
  }
  if (shape.circle) {
    const [cx, cy, r] = shape.circle;
    return { circle: [cx + dx, cy + dy, r] };
  }
  return { polygon: shape.polygon.map(([x, y]) => [x + dx, y + dy]) };
}

export function resized(shape, handle, x, y) {
  if (shape.rectangle) {
    const r = [...shape.rectangle];
    if (handle.includes("x0")) r[0] = x; else r[2] = x;
    if (handle.includes("y0")) r[1] = y; else r[3] = y;
    return { rectangle: [Math.min(r[0], r[2]), Math.min(r[1], r[3]), Math.max(r[0], r[2]), Math.max(r[1], r[3])] };
  }
  if (shape.circle) {
    const [cx, cy] = shape.circle;
    return { circle: [cx, cy, Math.max(1, Math.hypot(x - cx, y - cy))] };
  }
  const polygon = shape.polygon.map((p) => [...p]);
  polygon[handle] = [x, y];
  return { polygon };
}

export function drawn(kind, x0, y0, x1, y1) {
  if (kind === "circle") return { circle: [x0, y0, Math.max(1, Math.hypot(x1 - x0, y1 - y0))] };
  return { rectangle: [Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)] };
}

export function rounded(shape) {
  const r = (v) => Math.round(v * 10) / 10;
  if (shape.rectangle) return { rectangle: shape.rectangle.map(r) };
  if (shape.circle) return { circle: shape.circle.map(r) };
  return { polygon: shape.polygon.map((p) => p.map(r)) };
}
