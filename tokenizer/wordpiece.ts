/**
 * WordPiece: BERT's basic tokenization, then each word split greedily into the longest vocabulary pieces
 * from the left, continuation pieces marked with "##". A word that cannot be covered, or that is longer
 * than `maxWordChars` code points, becomes the unknown token as a whole.
 */
import { basicTokenize } from "./basic.ts";
import { tidySpaces } from "./detokenize.ts";
import { checkVocab, formatVocabTxt, parseTokenizerJson, parseVocabTxt } from "./vocab.ts";

/** The tokens the captioner gives roles to. */
export interface SpecialTokens {
  pad: string;
  unk: string;
  bos: string;
  eos: string;
}

export const DEFAULT_SPECIALS: SpecialTokens = { pad: "[PAD]", unk: "[UNK]", bos: "[CLS]", eos: "[SEP]" };

export interface WordPieceOptions {
  specials?: Partial<SpecialTokens>;
  /** More tokens that decoding drops, e.g. BERT's "[MASK]". */
  extraSpecials?: string[];
  lowercase?: boolean;
  maxWordChars?: number;
}

/** A padded batch, row-major: `ids[row * length + col]`. */
export interface Batch {
  ids: Int32Array;
  rows: number;
  length: number;
  /** Tokens per row before padding. */
  lengths: Int32Array;
}

export interface BatchOptions {
  /** Truncate longer rows to this many tokens; the end token survives truncation. */
  maxLength?: number;
  /** Pad every row to maxLength rather than to the longest row. */
  padToMax?: boolean;
  /** Wrap each row in the begin and end tokens (default true). */
  addSpecials?: boolean;
}

const PREFIX = "##";
// Captions reuse a small set of words, so remembering each word's pieces skips the greedy search for
// almost every word. The bound keeps memory flat on open-ended text.
const CACHE_LIMIT = 1 << 16;

export class WordPiece {
  readonly pieces: readonly string[];
  readonly specials: SpecialTokens;
  readonly ids: Readonly<Record<keyof SpecialTokens, number>>;
  readonly lowercase: boolean;
  readonly maxWordChars: number;
  readonly #index: Map<string, number>;
  readonly #special: Uint8Array;
  readonly #cache = new Map<string, number | number[]>();

  constructor(pieces: readonly string[], options: WordPieceOptions = {}) {
    checkVocab(pieces);
    this.pieces = pieces.slice();
    this.#index = new Map(pieces.map((p, i) => [p, i]));
    this.specials = { ...DEFAULT_SPECIALS, ...options.specials };
    const id = (token: string) => {
      const found = this.#index.get(token);
      if (found === undefined) {
        throw new Error(`the vocabulary has no special token ${JSON.stringify(token)}`);
      }
      return found;
    };
    const s = this.specials;
    this.ids = { pad: id(s.pad), unk: id(s.unk), bos: id(s.bos), eos: id(s.eos) };
    this.#special = new Uint8Array(pieces.length);
    for (const token of [...Object.values(s), ...(options.extraSpecials ?? [])]) this.#special[id(token)] = 1;
    this.lowercase = options.lowercase ?? true;
    this.maxWordChars = options.maxWordChars ?? 100;
  }

  static fromVocabTxt(text: string, options: WordPieceOptions = {}): WordPiece {
    return new WordPiece(parseVocabTxt(text), options);
  }

  /** Loads the WordPiece model of a Hugging Face tokenizer.json; its unk token overrides `options`. */
  static fromTokenizerJson(text: string, options: WordPieceOptions = {}): WordPiece {
    const config = parseTokenizerJson(text);
    if (config.prefix !== PREFIX) throw new Error(`tokenizer.json: continuation prefix must be "${PREFIX}"`);
    return new WordPiece(config.pieces, {
      lowercase: config.lowercase,
      maxWordChars: config.maxWordChars,
      ...options,
      specials: { ...options.specials, unk: config.unk },
    });
  }

  toVocabTxt(): string {
    return formatVocabTxt(this.pieces);
  }

  get size(): number {
    return this.pieces.length;
  }

  tokenToId(token: string): number | undefined {
    return this.#index.get(token);
  }

  isSpecial(id: number): boolean {
    return this.#special[id] === 1;
  }

  /** The ids of `text`, without begin or end tokens. */
  encode(text: string): number[] {
    if (typeof text !== "string") throw new TypeError(`encode expects a string, got ${describe(text)}`);
    const ids: number[] = [];
    for (const word of basicTokenize(text, this.lowercase)) this.encodeWord(word, ids);
    return ids;
  }

  /** The pieces of `text`, as strings. */
  tokenize(text: string): string[] {
    return this.encode(text).map((id) => this.pieces[id]);
  }

  /** Appends the ids of one basic-tokenized word to `out`, e.g. to count pieces per word. */
  encodeWord(word: string, out: number[] = []): number[] {
    let pieces = this.#cache.get(word);
    if (pieces === undefined) {
      pieces = this.#split(word);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(word, pieces);
    }
    if (typeof pieces === "number") out.push(pieces);
    else for (const id of pieces) out.push(id);
    return out;
  }

  /** Greedy longest-match-first, exactly as BERT: a single id where the word is one piece (most are). */
  #split(word: string): number | number[] {
    const whole = this.#index.get(word);
    if (whole !== undefined) return whole;
    // Lengths count code points; only a word this long in UTF-16 units can be too long in code points.
    if (word.length > this.maxWordChars && [...word].length > this.maxWordChars) return this.ids.unk;
    const ids: number[] = [];
    for (let start = 0; start < word.length;) {
      let end = word.length;
      let id: number | undefined;
      while (end > start) {
        const piece = word.slice(start, end);
        id = this.#index.get(start === 0 ? piece : PREFIX + piece);
        if (id !== undefined) break;
        end -= isSurrogatePair(word, end - 2) && end - 2 > start ? 2 : 1;
      }
      if (id === undefined) return this.ids.unk;
      ids.push(id);
      start = end;
    }
    return ids;
  }

  /** The text of `ids`: continuations joined to their word, special tokens dropped, spaces tidied. */
  decode(ids: ArrayLike<number>): string {
    if (typeof ids !== "object" || ids === null || typeof ids.length !== "number") {
      throw new TypeError(`decode expects an array of ids, got ${describe(ids)}`);
    }
    let text = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= this.pieces.length) {
        throw new RangeError(
          `token id ${id} at position ${i} is outside the vocabulary (0..${this.size - 1})`,
        );
      }
      if (this.#special[id] === 1) continue;
      const piece = this.pieces[id];
      if (piece.startsWith(PREFIX) && text !== "") text += piece.slice(PREFIX.length);
      else text += (text === "" ? "" : " ") + piece;
    }
    return tidySpaces(text);
  }

  /** Encodes rows as [bos, ...ids, eos], truncated to `maxLength` and padded into one rectangle. */
  encodeBatch(texts: readonly string[], options: BatchOptions = {}): Batch {
    const { maxLength = Infinity, padToMax = false, addSpecials = true } = options;
    const room = maxLength - (addSpecials ? 2 : 0);
    if (!(room >= 0)) {
      throw new RangeError(`maxLength ${maxLength} leaves no room for the begin and end tokens`);
    }
    if (padToMax && maxLength === Infinity) throw new RangeError("padToMax needs a finite maxLength");
    const rows = texts.map((text) => {
      const ids = this.encode(text);
      if (ids.length > room) ids.length = room;
      return addSpecials ? [this.ids.bos, ...ids, this.ids.eos] : ids;
    });
    const length = padToMax ? maxLength : rows.reduce((longest, r) => Math.max(longest, r.length), 0);
    const batch = new Int32Array(rows.length * length).fill(this.ids.pad);
    rows.forEach((row, r) => batch.set(row, r * length));
    return { ids: batch, rows: rows.length, length, lengths: Int32Array.from(rows, (r) => r.length) };
  }
}

/** Whether a code point's two UTF-16 units start at `i`, so a slice must not end at `i + 1`. */
function isSurrogatePair(s: string, i: number): boolean {
  const hi = s.charCodeAt(i), lo = s.charCodeAt(i + 1);
  return hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}
