// Upper convex hulls and support lines of points (x, y) sorted by x: the geometry of the
// tracking filter (tracking.ts). Every offset sample lies on or under the master's true line
// (delay only ever lowers a sample), so the samples' upper hull is the envelope the filter fits.

export interface Point {
  readonly x: number;
  readonly y: number;
}

/** Upper convex hull of points sorted by x (Andrew's monotone chain), left to right. */
export function upperHull(points: readonly Point[]): Point[] {
  const hull: Point[] = [];
  for (const p of points) {
    while (hull.length >= 2) {
      const o = hull[hull.length - 2]!;
      const a = hull[hull.length - 1]!;
      // a on or below the segment o→p: not a vertex of the upper hull.
      if ((a.x - o.x) * (p.y - o.y) - (a.y - o.y) * (p.x - o.x) >= 0) hull.pop();
      else break;
    }
    hull.push(p);
  }
  return hull;
}

/** The hull's value at x (x within the hull's span; at least two vertices). */
export function hullAt(hull: readonly Point[], x: number): number {
  let k = 0;
  while (k < hull.length - 2 && hull[k + 1]!.x < x) k++;
  const a = hull[k]!;
  const b = hull[k + 1]!;
  return a.y + ((b.y - a.y) * (x - a.x)) / (b.x - a.x);
}

/**
 * The slope of the hull's chord between two fractions of its span (0: its first vertex, 1: its
 * last): a long baseline, where a single hull edge can be short. null under two vertices.
 */
export function chordSlope(hull: readonly Point[], from: number, to: number): number | null {
  if (hull.length < 2) return null;
  const first = hull[0]!.x;
  const span = hull[hull.length - 1]!.x - first;
  if (span <= 0) return null;
  const x1 = first + span * from;
  const x2 = first + span * to;
  return (hullAt(hull, x2) - hullAt(hull, x1)) / (x2 - x1);
}

/**
 * The support line of slope `rate`: the lowest line of that slope with every point on or under
 * it (the points may be the hull's vertices only: the same line). -Infinity for no points.
 */
export function supportLevel(points: readonly Point[], rate: number): number {
  let level = -Infinity;
  for (const p of points) {
    const l = p.y - rate * p.x;
    if (l > level) level = l;
  }
  return level;
}
