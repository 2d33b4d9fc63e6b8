// The synthetic scenes world: 1-3 coloured shapes in stated spatial relations on textured backgrounds,
// each with 5 paraphrased captions that name every object. Small enough to learn on a CPU, hard enough
// that a model must ground colour, shape, size and relation to caption well. Everything is a pure
// function of (seed, split, index), and scenes are laid out in units of the image's short side, so the
// same scene renders at any resolution.
import type { Rgb } from "./codecs.ts";
import { pick, randInt, rng } from "./rng.ts";

export const SHAPES = ["circle", "square", "triangle", "diamond", "star", "hexagon", "cross"] as const;
export const COLOURS = {
  red: [220, 40, 40],
  orange: [245, 140, 20],
  yellow: [240, 220, 40],
  green: [40, 170, 60],
  blue: [40, 80, 220],
  purple: [140, 50, 190],
  white: [245, 245, 245],
  black: [20, 20, 20],
} as const;
export const SIZES = ["small", "large"] as const;
export const RELATIONS = ["left of", "above", "next to", "in front of"] as const;
export const BACKGROUNDS = ["noise", "stripes", "checker", "gradient"] as const;
export const SPLITS = ["train", "val", "test"] as const;

export type Shape = typeof SHAPES[number];
export type Colour = keyof typeof COLOURS;
export type Relation = typeof RELATIONS[number];
export type Split = typeof SPLITS[number];

export interface SceneObject {
  shape: Shape;
  colour: Colour;
  size: typeof SIZES[number];
  /** Centre and radius in units of the short side; x grows right, y grows down. */
  x: number;
  y: number;
  r: number;
}

export interface Scene {
  objects: SceneObject[]; // in drawing order: later objects cover earlier ones
  /** objects[a] <relation> objects[b] */
  relations: { a: number; relation: Relation; b: number }[];
  background: {
    kind: typeof BACKGROUNDS[number];
    base: number[];
    seed: number;
    angle: number;
    period: number;
  };
  captions: string[];
}

const RADIUS = { small: 0.1, large: 0.17 };

/** Scene `index` of `split`. Splits draw from disjoint random streams, so they never share an image. */
export function makeScene(seed: number, split: Split, index: number, aspect = 1): Scene {
  const random = rng(seed, "scene", split, index);
  const width = Math.max(1, aspect), height = Math.max(1, 1 / aspect); // in short-side units
  const wanted = 1 + randInt(random, 3);
  for (let attempt = 0;; attempt++) {
    // Crowded layouts can fail to fit; fall back to fewer objects only after many tries.
    const scene = layout(random, Math.max(1, wanted - Math.floor(attempt / 50)), width, height);
    if (scene) {
      const hue = random() * 6, sat = 0.1 + 0.2 * random(), val = 0.35 + 0.3 * random();
      scene.background = {
        kind: pick(random, BACKGROUNDS),
        base: hsv(hue, sat, val),
        seed: randInt(random, 2 ** 31),
        angle: random() * Math.PI,
        period: 0.04 + 0.1 * random(),
      };
      scene.captions = captions(random, scene);
      return scene;
    }
  }
}

function hsv(h: number, s: number, v: number): number[] {
  const f = (n: number) => {
    const k = (n + h) % 6;
    return 255 * v * (1 - s * Math.max(0, Math.min(k, 4 - k, 1)));
  };
  return [f(5), f(3), f(1)];
}

function randomObject(random: () => number, taken: SceneObject[]): SceneObject {
  while (true) {
    const size = pick(random, SIZES);
    const o = { shape: pick(random, SHAPES), colour: pick(random, Object.keys(COLOURS) as Colour[]), size };
    if (!taken.some((t) => t.shape === o.shape && t.colour === o.colour)) {
      return { ...o, x: 0, y: 0, r: RADIUS[size] };
    }
  }
}

/** Place `count` objects, each new one in a relation to an earlier one; undefined when it does not fit. */
function layout(random: () => number, count: number, width: number, height: number): Scene | undefined {
  const first = randomObject(random, []);
  first.x = first.r + random() * (width - 2 * first.r);
  first.y = first.r + random() * (height - 2 * first.r);
  const objects = [first], relations: Scene["relations"] = [];
  for (let n = 1; n < count; n++) {
    const o = randomObject(random, objects), b = randInt(random, n), anchor = objects[b];
    const relation = pick(random, RELATIONS), gap = 0.03 + 0.08 * random(), side = anchor.r + o.r;
    const jitter = (random() - 0.5) * 0.5 * side;
    if (relation === "left of") [o.x, o.y] = [anchor.x - side - gap, anchor.y + jitter];
    if (relation === "above") [o.x, o.y] = [anchor.x + jitter, anchor.y - side - gap];
    if (relation === "next to") {
      [o.x, o.y] = [anchor.x + (random() < 0.5 ? -1 : 1) * (side + gap / 2), anchor.y + jitter / 2];
    }
    if (relation === "in front of") { // overlapping, drawn later: partial occlusion
      const angle = random() * 2 * Math.PI, d = 0.55 * side;
      [o.x, o.y] = [anchor.x + d * Math.cos(angle), anchor.y + d * Math.sin(angle)];
    }
    const inside = o.x - o.r >= 0 && o.x + o.r <= width && o.y - o.r >= 0 && o.y + o.r <= height;
    // Only a stated "in front of" may overlap; anything else would make the captions wrong.
    const clear = objects.every((p, i) =>
      (i === b && relation === "in front of") || Math.hypot(p.x - o.x, p.y - o.y) > p.r + o.r + 0.02
    );
    if (!inside || !clear) return undefined;
    objects.push(o);
    relations.push({ a: n, relation, b });
  }
  return { objects, relations, background: undefined!, captions: [] };
}

const SIZE_WORDS = { small: ["small", "little"], large: ["large", "big"] };
const PHRASES: Record<Relation, [string[], string[]]> = { // [a rel b, b rel a]
  "left of": [["to the left of", "left of", "on the left of"], [
    "to the right of",
    "right of",
    "on the right of",
  ]],
  "above": [["above", "over"], ["below", "under", "beneath"]],
  "next to": [["next to", "beside"], ["next to", "beside", "by"]],
  "in front of": [["in front of", "partly covering"], ["behind", "partly hidden behind"]],
};
const PREFIXES = ["", "there is ", "a picture of ", "an image with ", "this shows "];
const BACKGROUND_WORDS = { noise: "noisy", stripes: "striped", checker: "checkered", gradient: "shaded" };

const article = (word: string) => (/^[aeiou]/.test(word) ? "an " : "a ");

function noun(random: () => number, o: SceneObject): string {
  const words = `${pick(random, SIZE_WORDS[o.size])} ${o.colour} ${o.shape}`;
  return article(words) + words;
}

/** 5 different captions; each names every object with its size, colour and shape. */
function captions(random: () => number, scene: Scene): string[] {
  const out = new Set<string>();
  const { objects, relations, background } = scene;
  while (out.size < 5) {
    let text: string;
    if (!relations.length) {
      const place = random() < 0.5 ? "" : ` on a ${BACKGROUND_WORDS[background.kind]} background`;
      text = pick(random, [...PREFIXES, "a single ", "only "]) + noun(random, objects[0]) + place;
      text = text.replace(/^a single an? /, "a single ");
    } else {
      text = pick(random, PREFIXES) + relations.map(({ a, relation, b }, i) => {
        const flip = random() < 0.5;
        const [x, y] = flip ? [objects[b], objects[a]] : [objects[a], objects[b]];
        const rel = pick(random, PHRASES[relation][flip ? 1 : 0]);
        // The second clause refers back to the objects the first one introduced.
        const known = (o: SceneObject) => o === objects[relations[0].a] || o === objects[relations[0].b];
        const say = (o: SceneObject) => (i > 0 && known(o) ? `the ${o.colour} ${o.shape}` : noun(random, o));
        return `${say(x)} ${i > 0 ? "is " : ""}${rel} ${say(y)}`;
      }).join(pick(random, [" and ", ", and ", " while "]));
    }
    out.add(text);
  }
  return [...out];
}

/** Render at width x height as interleaved RGB. */
export function renderScene(scene: Scene, width: number, height: number): Rgb {
  const data = new Uint8Array(width * height * 3), unit = Math.min(width, height);
  const bg = scene.background, noise = rng(bg.seed, "pixels");
  const coarse = valueNoise(rng(bg.seed, "coarse"), 6);
  const cos = Math.cos(bg.angle), sin = Math.sin(bg.angle);
  for (let py = 0; py < height; py++) {
    for (let px = 0; px < width; px++) {
      const x = px / unit, y = py / unit, along = x * cos + y * sin;
      let t = 0;
      if (bg.kind === "noise") t = 0.35 * (coarse(x, y) - 0.5);
      if (bg.kind === "stripes") t = 0.14 * Math.sign(Math.sin(along / bg.period));
      if (bg.kind === "checker") {
        t = 0.1 * ((Math.floor(x / bg.period / 2) + Math.floor(y / bg.period / 2)) % 2 ? 1 : -1);
      }
      if (bg.kind === "gradient") t = 0.4 * (along - 0.7);
      const o = 3 * (py * width + px);
      for (let k = 0; k < 3; k++) data[o + k] = bg.base[k] * (1 + t) + 24 * (noise() - 0.5);
    }
  }
  for (const object of scene.objects) drawObject(data, width, height, unit, object, noise);
  return { width, height, data };
}

/** Smooth noise on a grid of `cells` per unit, bilinearly interpolated. */
function valueNoise(random: () => number, cells: number) {
  const size = 4 * cells, grid = Float32Array.from({ length: (size + 1) ** 2 }, random);
  return (x: number, y: number) => {
    const gx = Math.min(size - 1e-6, x * cells), gy = Math.min(size - 1e-6, y * cells);
    const x0 = Math.floor(gx),
      y0 = Math.floor(gy),
      fx = gx - x0,
      fy = gy - y0,
      at = (i: number, j: number) => grid[j * (size + 1) + i];
    const top = at(x0, y0) + (at(x0 + 1, y0) - at(x0, y0)) * fx;
    return top + (at(x0, y0 + 1) + (at(x0 + 1, y0 + 1) - at(x0, y0 + 1)) * fx - top) * fy;
  };
}

const polygon = (k: number, inner = 1, turn = 0) =>
  Array.from({ length: k }, (_, i) => {
    const a = turn + (i * 2 * Math.PI) / k - Math.PI / 2, r = i % 2 ? inner : 1;
    return [r * Math.cos(a), r * Math.sin(a)];
  });
const OUTLINES: Partial<Record<Shape, number[][]>> = {
  square: [[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]],
  triangle: [[0, -0.95], [0.95, 0.75], [-0.95, 0.75]],
  diamond: polygon(4),
  star: polygon(10, 0.45),
  hexagon: polygon(6, 1, Math.PI / 6),
};

/** Outlines as flat [x0, y0, x1, y1, ...]: the renderer tests them millions of times a minute. */
const FLAT_OUTLINES = Object.fromEntries(
  Object.entries(OUTLINES).map(([shape, poly]) => [shape, Float64Array.from(poly.flat())]),
) as Partial<Record<Shape, Float64Array>>;

function insideShape(shape: Shape, x: number, y: number): boolean {
  if (shape === "circle") return x * x + y * y <= 0.9;
  if (shape === "cross") {
    return (Math.abs(x) <= 0.3 && Math.abs(y) <= 0.9) || (Math.abs(y) <= 0.3 && Math.abs(x) <= 0.9);
  }
  const poly = FLAT_OUTLINES[shape]!, n = poly.length;
  let inside = false;
  for (let i = 0, j = n - 2; i < n; j = i, i += 2) {
    const xi = poly[i], yi = poly[i + 1], xj = poly[j], yj = poly[j + 1];
    if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Where each pixel is sampled for its coverage: a 2 x 2 grid. */
const SUBSAMPLES = [0.25, 0.25, 0.75, 0.25, 0.25, 0.75, 0.75, 0.75];

/** Fill with 2x2 supersampled coverage, a soft shading gradient and grain. */
function drawObject(
  data: Uint8Array,
  width: number,
  height: number,
  unit: number,
  o: SceneObject,
  noise: () => number,
) {
  const colour = COLOURS[o.colour], r = o.r * unit, cx = o.x * unit, cy = o.y * unit;
  const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(width - 1, Math.ceil(cx + r));
  const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(height - 1, Math.ceil(cy + r));
  for (let py = y0; py <= y1; py++) {
    for (let px = x0; px <= x1; px++) {
      let cover = 0;
      for (let k = 0; k < SUBSAMPLES.length; k += 2) {
        if (insideShape(o.shape, (px + SUBSAMPLES[k] - cx) / r, (py + SUBSAMPLES[k + 1] - cy) / r)) {
          cover += 0.25;
        }
      }
      if (!cover) continue;
      const shade = 1 - 0.12 * ((py - cy) / r), o3 = 3 * (py * width + px);
      for (let k = 0; k < 3; k++) {
        const value = Math.min(255, colour[k] * shade + 16 * (noise() - 0.5));
        data[o3 + k] = data[o3 + k] * (1 - cover) + value * cover;
      }
    }
  }
}
