// The captioner's vocabulary: the top-K pieces of bert-base-uncased by frequency in the training
// captions (the seed's recipe), with BERT's special tokens as pad / unk / bos / eos.

import { countWords, coverage, loadBertUncased, topKPieces, WordPiece } from "../tokenizer/mod.ts";

export function buildVocab(captions: Iterable<string>, k: number): { tokenizer: WordPiece; report: string } {
  const bert = loadBertUncased();
  const words = countWords(captions);
  const tokenizer = new WordPiece(topKPieces(bert, words, Math.min(k, bert.size)));
  const c = coverage(tokenizer, words);
  const report =
    `vocabulary: ${tokenizer.size} pieces of bert-base-uncased; ${(100 * c.known).toFixed(2)}% of ` +
    `${c.words} caption words encode without [UNK], ${c.piecesPerWord.toFixed(3)} pieces per word`;
  return { tokenizer, report };
}

export function vocabTokenizer(pieces: readonly string[]): WordPiece {
  return new WordPiece(pieces);
}
