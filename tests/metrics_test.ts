/**
 * Caption metrics against the COCO caption evaluation's own numbers: the 14 reference cases of
 * ../shared/caption-data/metric-vectors.json (corpus and per-image scores, BLEU totals) and the published
 * scores of two real models on the Flickr8k test split. That folder is not part of a fresh clone; the
 * tests that need it are skipped, saying so, where it is absent.
 */
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import {
  type CaptionScores,
  numpyMean,
  parseCocoAnnotations,
  parseCocoResults,
  readCocoAnnotations,
  readCocoResults,
  scoreCaptions,
  tokenizeCaption,
} from "../eval/metrics/mod.ts";
import { lcsLength, rougeL } from "../eval/metrics/rouge.ts";

const DATA = new URL("../../shared/caption-data/", import.meta.url);
const TOLERANCE = 1e-9;
const METRICS = ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "CIDEr", "ROUGE_L"] as const;

function readJsonIfPresent(relative: string): unknown {
  try {
    return JSON.parse(Deno.readTextFileSync(new URL(relative, DATA)));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

interface VectorCase {
  name: string;
  image_ids: string[];
  references: Record<string, string[]>;
  candidates: Record<string, string>;
  expected: Record<(typeof METRICS)[number], number> & {
    bleu_stats: { testlen: number; reflen: number; guess: number[]; correct: number[] };
  };
  expected_per_image?: { CIDEr_D?: number[]; ROUGE_L?: number[]; Bleu_4_sentence?: number[] };
}

interface Vectors {
  tokenization: { examples: { raw: string; tokenized: string }[] };
  cases: VectorCase[];
}

const vectors = readJsonIfPresent("metric-vectors.json") as Vectors | undefined;
const MISSING = `skipped: ${new URL("metric-vectors.json", DATA).pathname} not found`;

function close(got: number, want: number, what: string) {
  ok(
    Math.abs(got - want) <= TOLERANCE,
    `${what}: got ${got}, expected ${want} (|diff| ${Math.abs(got - want)})`,
  );
}

function closeAll(got: number[], want: number[], what: string) {
  equal(got.length, want.length, `${what}: count`);
  want.forEach((w, i) => close(got[i], w, `${what}[${i}]`));
}

function expectCase(scores: CaptionScores, c: VectorCase) {
  for (const m of METRICS) close(scores[m], c.expected[m], `${c.name} ${m}`);
  deepEqual(scores.bleuTotals, c.expected.bleu_stats, `${c.name} BLEU totals`);
}

if (!vectors) {
  Deno.test({ name: `metric vectors (${MISSING})`, ignore: true, fn() {} });
} else {
  for (const c of vectors.cases) {
    Deno.test(`metric vectors: ${c.name}`, () => {
      // Maps built in the case's evaluation order, since per-image scores are aligned with image_ids.
      const refs = new Map(c.image_ids.map((id) => [id, c.references[id]]));
      const cands = new Map(c.image_ids.map((id) => [id, c.candidates[id]]));
      // The strings are already tokenized; tokenizing again must change nothing (the default path).
      const scores = scoreCaptions(refs, cands);
      expectCase(scores, c);
      deepEqual(scores.perImage.imageIds, c.image_ids);
      const per = c.expected_per_image ?? {};
      if (per.CIDEr_D) closeAll(scores.perImage.CIDEr, per.CIDEr_D, `${c.name} per-image CIDEr-D`);
      if (per.ROUGE_L) closeAll(scores.perImage.ROUGE_L, per.ROUGE_L, `${c.name} per-image ROUGE_L`);
      if (per.Bleu_4_sentence) {
        closeAll(scores.perImage.Bleu_4, per.Bleu_4_sentence, `${c.name} per-image Bleu_4`);
      }
    });
  }

  Deno.test("tokenization: the README's examples, and already-tokenized text is unchanged", () => {
    for (const { raw, tokenized } of vectors.tokenization.examples) {
      equal(tokenizeCaption(raw), tokenized, raw);
    }
    for (const c of vectors.cases.slice(0, 3)) {
      for (const id of c.image_ids) {
        equal(tokenizeCaption(c.candidates[id]), c.candidates[id]);
        for (const r of c.references[id]) equal(tokenizeCaption(r), r);
      }
    }
  });

  Deno.test("scores follow images, not the order or the text of the results", () => {
    const c = vectors.cases.find((c) => c.name === "f8k_test_vit8k_10")!;
    const refs = new Map(c.image_ids.map((id) => [id, c.references[id]]));
    const reversed = new Map([...c.image_ids].reverse().map((id) => [id, c.candidates[id]]));
    expectCase(scoreCaptions(refs, reversed), c);
    // Two images with the same generated caption are still two images, each against its own references.
    const same = new Map(c.image_ids.map((id) => [id, c.candidates[c.image_ids[0]]]));
    const scores = scoreCaptions(refs, same);
    equal(scores.perImage.ROUGE_L.length, 10);
    ok(scores.perImage.ROUGE_L[0] !== scores.perImage.ROUGE_L[1]);
  });
}

const published = readJsonIfPresent("flickr8k/vit_predictions_published_scores.json") as
  | Record<string, Record<string, number>>
  | undefined;
for (const model of ["vit8k", "vit30k"]) {
  const name =
    `Flickr8k ${model}: raw COCO files through the tokenizer reproduce the reference case and the ` +
    "published scores";
  if (!published || !vectors) {
    Deno.test({
      name: `${name} (skipped: ${new URL("flickr8k/", DATA).pathname} not found)`,
      ignore: true,
      fn() {},
    });
    continue;
  }
  Deno.test(name, async () => {
    const refs = await readCocoAnnotations(new URL("flickr8k/flickr8k_test_refs_coco.json", DATA));
    // These files are not in COCO results format: { img_id, prediction: [caption] }.
    const predictions = readJsonIfPresent(`flickr8k/${model}_predictions.json`) as {
      img_id: string;
      prediction: string[];
    }[];
    const scores = scoreCaptions(refs, new Map(predictions.map((p) => [p.img_id, p.prediction[0]])));
    expectCase(scores, vectors.cases.find((c) => c.name === `f8k_test_${model}_all`)!);
    // Published with the Java PTB tokenizer and rounded to 3 decimals.
    for (const m of METRICS) {
      ok(
        Math.abs(scores[m] - published[model][m]) <= 5e-4,
        `${m}: ${scores[m]} vs published ${published[model][m]}`,
      );
    }
  });
}

// ---- independent of the shared data ----

Deno.test("tokenization: punctuation, quotes and dashes, case, Python's whitespace", () => {
  equal(tokenizeCaption('A man in a T-shirt , "smiling" (happily)!'), "a man in a t-shirt smiling happily");
  // As the rule says, only whole tokens of quotes and dashes go: "red''" keeps its quotes (PTB would not).
  equal(tokenizeCaption("The dog 's ball -- ``red'' ' - '' ."), "the dog 's ball red''");
  equal(
    tokenizeCaption("  tabs\tand\nnewlines\u00a0nbsp\u3000ideographic\x1cfs  "),
    "tabs and newlines nbsp ideographic fs",
  );
  equal(tokenizeCaption("zero\ufeffwidth"), "zero\ufeffwidth"); // not whitespace to Python's split()
  equal(tokenizeCaption(" . , ! "), "");
});

Deno.test("numpyMean adds like numpy's pairwise sum", () => {
  // Left-to-right addition ends 2 ulps away from numpy here; the expected value is numpy 2.4's
  // np.mean([1 / (i + 1) for i in range(1000)]).
  const harmonic = Array.from({ length: 1000 }, (_, i) => 1 / (i + 1));
  equal(numpyMean(harmonic), 0.007485470860550345);
  let naive = 0;
  for (const x of harmonic) naive += x;
  ok(naive / 1000 !== 0.007485470860550345, "the check above would not tell the summation orders apart");
  equal(numpyMean([1, 2, 3]), 2);
});

Deno.test("ROUGE-L splits on single spaces as pycocoevalcap does", () => {
  equal(lcsLength(["a", "b", "c", "d"], ["b", "d", "a"]), 2);
  // "".split(" ") is one empty token, so an empty candidate matches an empty reference fully.
  equal(rougeL("", [""]), 1);
  equal(rougeL("", ["a dog"]), 0);
});

Deno.test("scoreCaptions: candidate equal to its only reference, and clear errors for mismatched images", () => {
  const refs = new Map<string | number, string[]>([[1, ["a dog runs on the grass"]], [2, [
    "two cats sleep",
  ]]]);
  const scores = scoreCaptions(refs, new Map([[1, "A dog runs on the grass."], [2, "two cats sleep"]]));
  equal(scores.ROUGE_L, 1);
  ok(Math.abs(scores.Bleu_1 - 1) < 1e-9 && scores.Bleu_1 < 1, "BLEU keeps pycocoevalcap's epsilon terms");
  throws(() => scoreCaptions(refs, new Map([[1, "a dog"]])), /have no caption in results: 2/);
  throws(() => scoreCaptions(refs, new Map([[1, "a"], [2, "b"], [3, "c"]])), /have no references: 3/);
  throws(
    () => scoreCaptions(refs, new Map<string | number, string>([["1", "a"], [2, "b"]])),
    /numbers and of the other strings/,
  );
  throws(() => scoreCaptions(new Map([[1, []]]), new Map([[1, "a"]])), /image 1 has no reference captions/);
  throws(() => scoreCaptions(new Map(), new Map()), /no images to score/);
});

Deno.test("COCO files: parsed into per-image captions, malformed ones named with the problem", async () => {
  const refs = parseCocoAnnotations({
    images: [{ id: 7 }, { id: 3 }],
    annotations: [{ image_id: 3, caption: "x" }, { image_id: 7, caption: "y" }, {
      image_id: 3,
      caption: "z",
    }],
  }, "a.json");
  deepEqual([...refs], [[7, ["y"]], [3, ["x", "z"]]]);
  deepEqual([...parseCocoResults([{ image_id: 3, caption: "c" }], "r.json")], [[3, "c"]]);

  const bad: [() => unknown, RegExp][] = [
    [
      () => parseCocoAnnotations([], "a.json"),
      /a\.json: .*"annotations" array \(this looks like a results file\)/,
    ],
    [
      () => parseCocoAnnotations({ annotations: [{ image_id: 1 }] }, "a.json"),
      /a\.json: annotations\[0\]\.caption/,
    ],
    [() => parseCocoAnnotations({ annotations: [{ caption: "x" }] }, "a.json"), /annotations\[0\]\.image_id/],
    [
      () =>
        parseCocoAnnotations(
          { images: [{ id: 1 }, { id: 2 }], annotations: [{ image_id: 1, caption: "x" }] },
          "a.json",
        ),
      /a\.json: 1 image\(s\) listed in "images" have no captions: 2/,
    ],
    [
      () =>
        parseCocoAnnotations({ images: [{ id: 1 }], annotations: [{ image_id: 2, caption: "x" }] }, "a.json"),
      /annotations\[0\] has image_id 2, which "images" does not list/,
    ],
    [
      () => parseCocoResults({ annotations: [] }, "r.json"),
      /r\.json: .*got object \(this looks like an annotations/,
    ],
    [() => parseCocoResults([null], "r.json"), /r\.json: results\[0\] should be an object/],
    [
      () => parseCocoResults([{ image_id: 1, caption: "a" }, { image_id: 1, caption: "b" }], "r.json"),
      /image_id 1 has two captions \(entries 0 and 1\)/,
    ],
  ];
  for (const [fn, message] of bad) throws(fn, message);

  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/broken.json`, '[{"image_id": 1,');
    await Deno.writeTextFile(`${dir}/ok.json`, '[{"image_id": 1, "caption": "A cat."}]');
    await Deno.writeTextFile(`${dir}/refs.json`, '{"annotations": [{"image_id": 1, "caption": "a cat"}]}');
    await readCocoResults(`${dir}/broken.json`).then(
      () => ok(false),
      (e) => ok(/broken\.json: not valid JSON/.test(e.message)),
    );
    await readCocoResults(`${dir}/none.json`).then(
      () => ok(false),
      (e) => ok(/none\.json: file not found/.test(e.message)),
    );
    const scores = scoreCaptions(
      await readCocoAnnotations(`${dir}/refs.json`),
      await readCocoResults(`${dir}/ok.json`),
    );
    equal(scores.ROUGE_L, 1);
    equal(scores.CIDEr, 0); // one image: every IDF is ln 1 - ln 1
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
