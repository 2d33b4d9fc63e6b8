// Captions a set of records with the model and scores them against their references, grouped by
// image, with the COCO caption metrics (eval/metrics).

import { type CaptionRecord, StreamingLoader } from "../data/mod.ts";
import { scoreCaptions } from "../eval/metrics/mod.ts";
import type { Captioner } from "../model/captioner.ts";
import { tensor } from "../tensor/mod.ts";
import type { WordPiece } from "../tokenizer/mod.ts";

export interface EvalOptions {
  imageSize: number;
  batch: number;
  beam: number;
  alpha: number;
  strategy?: "beam" | "greedy";
  seed?: number;
  workers?: number;
}

export interface EvalResult {
  scores: Record<string, number>;
  /** key -> generated caption */
  captions: Map<string, string>;
  references: Map<string, string[]>;
  images: number;
  seconds: number;
}

/** Streams `records` once (no augmentation) and captions every image that loads. */
export async function captionRecords(
  model: Captioner,
  tok: WordPiece,
  records: CaptionRecord[],
  o: EvalOptions,
): Promise<EvalResult> {
  const start = performance.now();
  const loader = new StreamingLoader(records, {
    batchSize: o.batch,
    imageSize: o.imageSize,
    minSide: 1,
    epochs: 1,
    shuffle: false,
    dropLast: false,
    seed: o.seed ?? 0,
    workers: o.workers ?? 1,
  });
  const captions = new Map<string, string>(), references = new Map<string, string[]>();
  try {
    for await (const batch of loader) {
      const images = tensor(batch.images, batch.shape);
      const out = await model.generate(images, {
        strategy: o.strategy ?? "beam",
        beamSize: o.beam,
        alpha: o.alpha,
      });
      images.dispose();
      batch.keys.forEach((key, i) => {
        captions.set(key, tok.decode(out[i].tokens));
        references.set(key, batch.references[i]);
      });
    }
  } finally {
    loader.close();
  }
  const s = scoreCaptions(references, captions);
  const scores = {
    Bleu_1: s.Bleu_1,
    Bleu_2: s.Bleu_2,
    Bleu_3: s.Bleu_3,
    Bleu_4: s.Bleu_4,
    CIDEr: s.CIDEr,
    ROUGE_L: s.ROUGE_L,
  };
  return { scores, captions, references, images: captions.size, seconds: (performance.now() - start) / 1000 };
}

/** The score of answering every image with the single most frequent training caption. */
export function constantBaseline(
  trainCaptions: string[],
  references: Map<string, string[]>,
): { caption: string; scores: Record<string, number> } {
  const counts = new Map<string, number>();
  for (const c of trainCaptions) counts.set(c, (counts.get(c) ?? 0) + 1);
  const top = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "";
  const s = scoreCaptions(references, new Map([...references.keys()].map((k) => [k, top])));
  return { caption: top, scores: { Bleu_4: s.Bleu_4, CIDEr: s.CIDEr, ROUGE_L: s.ROUGE_L } };
}
