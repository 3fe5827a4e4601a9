// Vocabulary-only GGUFs: tokenizer metadata under a minimal qwen2 header and no tensors, the shape of
// llama.cpp's own models/ggml-vocab-*.gguf test files. node-llama-cpp loads them with vocabOnly.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { meta, writeGGUF } from "../../src/format/gguf/write.js";
import type { GGUFMetadata } from "../../src/format/gguf/types.js";
import { BYTE_TO_UNICODE } from "../../src/tokenizer/byte-level.js";
import { TokenType } from "../../src/tokenizer/token-types.js";
import { mulberry32 } from "./numeric.js";

const DIR = join(tmpdir(), "moestream-test-vocabs-v2");

/**
 * Write (once per machine and content) a vocab-only GGUF carrying `tokenizer`'s keys; returns its path.
 * The file name holds a hash of the keys, so a changed vocabulary never reuses a stale file.
 */
export async function vocabGGUF(name: string, tokenizer: GGUFMetadata): Promise<string> {
  const hash = createHash("sha1").update(JSON.stringify([...tokenizer])).digest("hex").slice(0, 12);
  const path = join(DIR, `${name}-${hash}.gguf`);
  if (existsSync(path)) return path;
  mkdirSync(DIR, { recursive: true });
  const md: GGUFMetadata = new Map([
    ["general.architecture", meta.str("qwen2")],
    ["general.name", meta.str(name)],
    ["qwen2.block_count", meta.u32(1)],
    ["qwen2.context_length", meta.u32(4096)],
    ["qwen2.embedding_length", meta.u32(64)],
    ["qwen2.feed_forward_length", meta.u32(128)],
    ["qwen2.attention.head_count", meta.u32(4)],
    ["qwen2.attention.head_count_kv", meta.u32(4)],
    ["qwen2.rope.freq_base", meta.f32(1e6)],
    ["qwen2.attention.layer_norm_rms_epsilon", meta.f32(1e-6)],
  ]);
  for (const [k, v] of tokenizer) md.set(k, v);
  const tmp = `${path}.${process.pid}`;
  await writeGGUF(tmp, { metadata: md, tensors: [] });
  renameSync(tmp, path);
  return path;
}

/**
 * A made-up byte-level BPE vocabulary that makes pre-token boundaries visible in the token ids: the 256
 * byte tokens, every pair of adjacent bytes in `texts` (UTF-8) merged, in a seeded random rank order
 * (token id = 256 + merge rank), and a few special tokens. A piece boundary between two bytes shows
 * whenever the unsplit text would have merged them, so two pre-tokenizers that split `texts`
 * differently give different ids.
 */
export function pairVocabMetadata(pre: string, texts: readonly string[], seed = 1): GGUFMetadata {
  const tokens: string[] = [...BYTE_TO_UNICODE];
  const types: number[] = tokens.map(() => TokenType.NORMAL);
  const seen = new Set<number>();
  const utf8 = new TextEncoder();
  for (const t of texts) {
    const b = utf8.encode(t);
    for (let i = 0; i + 1 < b.length; i++) seen.add(b[i] * 256 + b[i + 1]);
  }
  const pairs = [...seen].sort((x, y) => x - y).map((p) => `${BYTE_TO_UNICODE[p >> 8]} ${BYTE_TO_UNICODE[p & 255]}`);
  const r = mulberry32(seed);
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j], pairs[i]];
  }
  for (const p of pairs) {
    tokens.push(p.replace(" ", ""));
    types.push(TokenType.NORMAL);
  }
  for (const t of ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) {
    tokens.push(t);
    types.push(TokenType.CONTROL);
  }
  for (const t of ["<think>", "</think>"]) {
    tokens.push(t);
    types.push(TokenType.USER_DEFINED);
  }
  return new Map([
    ["tokenizer.ggml.model", meta.str("gpt2")],
    ["tokenizer.ggml.pre", meta.str(pre)],
    ["tokenizer.ggml.tokens", meta.strArray(tokens)],
    ["tokenizer.ggml.token_type", meta.i32Array(types)],
    ["tokenizer.ggml.merges", meta.strArray(pairs)],
    ["tokenizer.ggml.eos_token_id", meta.u32(tokens.indexOf("<|endoftext|>"))],
  ]);
}

/**
 * A made-up SentencePiece ("llama") vocabulary: <unk>, <s>, </s>, the 256 <0xXX> byte tokens, then the
 * characters and the 2- to 4-character substrings of `texts` (spaces escaped to U+2581) that occur at
 * least twice, scored by a seeded RNG on a coarse grid so that ties happen (llama.cpp breaks them
 * leftmost first). Characters left out fall back to byte tokens.
 */
export function spmVocabMetadata(texts: readonly string[], seed = 1): GGUFMetadata {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
  }
  const counts = new Map<string, number>();
  for (const t of texts) {
    const cs = Array.from(` ${t}`.replaceAll(" ", "\u2581"));
    for (let i = 0; i < cs.length; i++) {
      for (let len = 1; len <= 4 && i + len <= cs.length; len++) {
        const s = cs.slice(i, i + len).join("");
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
    }
  }
  const r = mulberry32(seed);
  const scores = tokens.map(() => 0);
  for (const [s, c] of counts) {
    // Every tenth character is left out, to exercise the byte fallback.
    if (c < 2 || tokens.includes(s) || (Array.from(s).length === 1 && r() < 0.1)) continue;
    tokens.push(s);
    types.push(TokenType.NORMAL);
    scores.push(-Math.floor(r() * 50));
  }
  return new Map([
    ["tokenizer.ggml.model", meta.str("llama")],
    ["tokenizer.ggml.pre", meta.str("default")],
    ["tokenizer.ggml.tokens", meta.strArray(tokens)],
    ["tokenizer.ggml.scores", meta.f32Array(scores)],
    ["tokenizer.ggml.token_type", meta.i32Array(types)],
    ["tokenizer.ggml.bos_token_id", meta.u32(1)],
    ["tokenizer.ggml.eos_token_id", meta.u32(2)],
    ["tokenizer.ggml.unknown_token_id", meta.u32(0)],
  ]);
}
