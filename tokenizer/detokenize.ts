/**
 * Turns decoded words back into text a person would write. Encoding split every punctuation mark into
 * its own word, and decoding joins words with spaces, so these rules take out the spaces that English
 * does not put there: "a dog ' s ball ." -> "a dog's ball.". The rules only join; they never drop a
 * character, so re-encoding the result gives the same ids.
 */
const RULES: readonly [RegExp, string][] = [
  [/(\d) ([.,:]) (?=\d)/g, "$1$2"], // 3.5, 1,000, 10:30
  [/(\w) ([-/]) (?=\w)/g, "$1$2"], // black-and-white, and/or
  [/ ' (s|t|m|d|re|ve|ll)\b/g, "'$1"], // dog's, don't, we're
  [/ ([.,!?;:%)\]}])/g, "$1"], // no space before closing marks
  [/([(\[{]) /g, "$1"], // nor after opening ones
];

export function tidySpaces(text: string): string {
  for (const [pattern, replacement] of RULES) text = text.replace(pattern, replacement);
  return text;
}
