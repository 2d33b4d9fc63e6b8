/**
 * Vocabulary files. A vocabulary is a list of pieces whose index is the id: word-start pieces are bare,
 * continuation pieces carry the "##" prefix, special tokens are bracketed ("[UNK]").
 *
 * Every reader checks what it reads and throws an Error naming the problem, because a silently shifted
 * or duplicated entry would move every id after it.
 */

/** Throws unless `pieces` is a usable vocabulary: non-empty, no empty pieces, no duplicates. */
export function checkVocab(pieces: readonly string[], source = "vocabulary"): void {
  if (pieces.length === 0) throw new Error(`${source} is empty`);
  const seen = new Map<string, number>();
  pieces.forEach((piece, id) => {
    if (typeof piece !== "string" || piece === "") throw new Error(`${source}: entry ${id} is empty`);
    if (/\s/.test(piece)) {
      throw new Error(`${source}: entry ${id} (${JSON.stringify(piece)}) holds whitespace`);
    }
    const first = seen.get(piece);
    if (first !== undefined) {
      throw new Error(`${source}: ${JSON.stringify(piece)} appears twice, as ids ${first} and ${id}`);
    }
    seen.set(piece, id);
  });
}

/** Parses BERT's vocab.txt: one piece per line, line number = id. */
export function parseVocabTxt(text: string, source = "vocab.txt"): string[] {
  if (typeof text !== "string") throw new TypeError(`${source}: expected text, got ${typeof text}`);
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop(); // the file's final newline
  lines.forEach((line, i) => {
    if (line === "") throw new Error(`${source}: line ${i + 1} is empty`);
  });
  checkVocab(lines, source);
  return lines;
}

export function formatVocabTxt(pieces: readonly string[]): string {
  checkVocab(pieces);
  return pieces.join("\n") + "\n";
}

export interface WordPieceModelConfig {
  pieces: string[];
  unk: string;
  prefix: string;
  maxWordChars: number;
  lowercase: boolean;
}

/** Reads the WordPiece model (and the BertNormalizer's lowercase flag) from a Hugging Face tokenizer.json. */
export function parseTokenizerJson(text: string, source = "tokenizer.json"): WordPieceModelConfig {
  let json;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source} is not valid JSON: ${(e as Error).message}`);
  }
  const model = json?.model;
  if (model?.type !== "WordPiece") {
    throw new Error(`${source}: model.type is ${JSON.stringify(model?.type)}, expected "WordPiece"`);
  }
  if (typeof model.vocab !== "object" || model.vocab === null) {
    throw new Error(`${source}: model.vocab is missing`);
  }
  const entries = Object.entries(model.vocab);
  const pieces: string[] = new Array(entries.length);
  for (const [piece, id] of entries) {
    if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= entries.length) {
      throw new Error(`${source}: ${JSON.stringify(piece)} has id ${id}, outside 0..${entries.length - 1}`);
    }
    if (pieces[id as number] !== undefined) {
      throw new Error(
        `${source}: id ${id} is given to both ${JSON.stringify(pieces[id as number])} and ${
          JSON.stringify(piece)
        }`,
      );
    }
    pieces[id as number] = piece;
  }
  checkVocab(pieces, source);
  return {
    pieces,
    unk: model.unk_token ?? "[UNK]",
    prefix: model.continuing_subword_prefix ?? "##",
    maxWordChars: model.max_input_chars_per_word ?? 100,
    lowercase: json.normalizer?.lowercase ?? true,
  };
}

/**
 * Builds a tokenizer.json that Hugging Face tokenizers (Rust, Python and transformers.js) load as BERT's
 * uncased tokenizer over `pieces`. `special` lists the tokens to register as added tokens.
 */
export function formatTokenizerJson(pieces: readonly string[], special: readonly string[], unk = "[UNK]") {
  checkVocab(pieces);
  const ids = new Map(pieces.map((p, i) => [p, i]));
  for (const token of [unk, ...special]) {
    if (!ids.has(token)) throw new Error(`the vocabulary has no special token ${JSON.stringify(token)}`);
  }
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: special.map((content) => ({
      id: ids.get(content),
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: {
      type: "BertNormalizer",
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: null,
      lowercase: true,
    },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: null,
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: unk,
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(ids),
    },
  };
}
