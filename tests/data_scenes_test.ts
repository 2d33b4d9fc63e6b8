// The synthetic scenes world: captions that name every object, determinism, disjoint splits, and the
// server's manifest and image endpoints.
import assert from "node:assert/strict";
import { decodeRgb } from "../data/codecs.ts";
import { parseJsonl } from "../data/records.ts";
import { COLOURS, makeScene, RELATIONS, renderScene, SHAPES, SIZES, SPLITS } from "../data/scenes.ts";
import { startScenesServer } from "../data/scenes_server.ts";

const SIZE_WORDS = { small: /\b(small|little)\b/, large: /\b(large|big)\b/ };

Deno.test("scenes: 1-3 objects, every caption names each object's size, colour and shape; 5 different captions", () => {
  const counts = [0, 0, 0, 0],
    relations = new Set<string>(),
    shapes = new Set<string>(),
    colours = new Set<string>();
  for (let i = 0; i < 300; i++) {
    const scene = makeScene(1, "train", i);
    counts[scene.objects.length]++;
    assert.equal(new Set(scene.captions).size, 5);
    for (const r of scene.relations) relations.add(r.relation);
    for (const o of scene.objects) {
      shapes.add(o.shape), colours.add(o.colour);
      for (const caption of scene.captions) {
        assert.match(caption, new RegExp(`\\b${o.colour} ${o.shape}\\b`), caption);
      }
      // A reference to an object already named may drop its size ("the red circle"); the first may not.
      assert.ok(scene.captions.every((c) => SIZE_WORDS[o.size].test(c)), `${o.size} missing`);
    }
  }
  assert.ok(counts[1] > 50 && counts[2] > 50 && counts[3] > 50, `object counts ${counts}`);
  assert.equal(relations.size, RELATIONS.length);
  assert.ok(SHAPES.length >= 6 && shapes.size === SHAPES.length);
  assert.ok(Object.keys(COLOURS).length === 8 && colours.size === 8 && SIZES.length === 2);
});

Deno.test("scenes are deterministic from the seed, render at any size, and splits never share an image", () => {
  assert.deepEqual(makeScene(3, "val", 5), makeScene(3, "val", 5));
  assert.notDeepEqual(makeScene(3, "val", 5), makeScene(4, "val", 5));
  const a = renderScene(makeScene(3, "val", 5), 40, 30), b = renderScene(makeScene(3, "val", 5), 40, 30);
  assert.deepEqual(a.data, b.data);
  assert.equal(renderScene(makeScene(3, "val", 5), 64, 96).data.length, 64 * 96 * 3);
  const seen = new Map<string, string>();
  for (const split of SPLITS) {
    for (let i = 0; i < 100; i++) {
      const fingerprint = renderScene(makeScene(1, split, i), 24, 24).data.join(",");
      assert.ok(!seen.has(fingerprint), `${split} ${i} repeats ${seen.get(fingerprint)}`);
      seen.set(fingerprint, `${split} ${i}`);
    }
  }
});

Deno.test("scenes server: manifest matches records; images decode at the configured size; faults by seed", async () => {
  const server = await startScenesServer({
    seed: 2,
    width: 80,
    height: 60,
    counts: { val: 12 },
    format: "png",
    faults: { notFound: 0.5 },
  });
  try {
    const text = await (await fetch(server.manifestUrl("val"))).text();
    const records = parseJsonl(text, "manifest");
    assert.deepEqual(records, server.records("val"));
    assert.equal(records.length, 12);
    const statuses = await Promise.all(records.map(async (r) => {
      const response = await fetch(r.url);
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (response.ok) {
        const rgb = await decodeRgb(bytes);
        assert.deepEqual([rgb.width, rgb.height], [80, 60]);
      }
      assert.equal(response.ok, server.faultOf(r.key) !== "notFound");
      return response.status;
    }));
    assert.ok(statuses.includes(404) && statuses.includes(200));
    assert.equal(await fetch(`${server.url}/img/val/12.png`).then((r) => (r.body?.cancel(), r.status)), 404);
  } finally {
    await server.close();
  }
});
