/** WordPiece tokenization as BERT does it, with the bert-base-uncased vocabulary and vocabulary tools. */
export {
  type Batch,
  type BatchOptions,
  DEFAULT_SPECIALS,
  type SpecialTokens,
  WordPiece,
  type WordPieceOptions,
} from "./wordpiece.ts";
export { bertUncasedPieces, fromSentencePieceStyle, loadBertUncased } from "./bert_uncased.ts";
export { basicTokenize, normalize } from "./basic.ts";
export { tidySpaces } from "./detokenize.ts";
export {
  checkVocab,
  formatTokenizerJson,
  formatVocabTxt,
  parseTokenizerJson,
  parseVocabTxt,
} from "./vocab.ts";
export { countWords, type Coverage, coverage, requiredPieces, topKPieces } from "./topk.ts";
export { type TrainerOptions, trainWordPiece } from "./trainer.ts";
