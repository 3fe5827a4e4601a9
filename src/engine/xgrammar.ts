// XGrammar (@mlc-ai/web-xgrammar: the C++ grammar engine of vLLM/SGLang/MLC compiled to WebAssembly) loaded
// into this thread. Its bundle is UMD inside a "type": "module" package, which Node's ESM loader cannot run
// (it reaches for require and __filename), so it is evaluated here as the CommonJS module it is written as.
// A failed call (a bad grammar) aborts the wasm instance, which leaves it unusable: the caller drops that
// instance and loads a fresh one. The instance's error text goes to our sink, not to the console.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";

/** The parts of xgrammar's API used here (its own .d.ts types every handle as `any`). */
export interface XGrammar {
  Grammar: {
    fromEBNF(ebnf: string, rootRule?: string): Promise<XGrammarHandle>;
    fromJSONSchema(schema: string, anyWhitespace?: boolean, indent?: number, separators?: [string, string], strictMode?: boolean): Promise<XGrammarHandle>;
    /** A grammar from a structural tag (xgrammar's JSON format: "tag", "or", "grammar", ... elements). */
    fromStructuralTag(tag: Record<string, unknown>): Promise<XGrammarHandle>;
  };
  Testings: {
    /** A JSON Schema as EBNF text (what fromJSONSchema compiles), to embed in a structural tag. */
    _jsonSchemaToEBNF(schema: string, anyWhitespace?: boolean, indent?: number, separators?: [string, string], strictMode?: boolean): Promise<string>;
  };
  TokenizerInfo: {
    createTokenizerInfo(encodedVocab: string[], vocabType?: string, prependSpace?: boolean, vocabSize?: number, stopTokenIds?: number[]): Promise<XGrammarHandle>;
  };
  GrammarCompiler: {
    createGrammarCompiler(info: XGrammarHandle, cacheEnabled?: boolean): Promise<XGrammarCompiler>;
  };
  GrammarMatcher: {
    createGrammarMatcher(compiled: XGrammarHandle, overrideStopTokens?: number[], terminateWithoutStopToken?: boolean): Promise<XGrammarMatcher>;
  };
}

export interface XGrammarHandle {
  dispose(): void;
}

export interface XGrammarCompiler extends XGrammarHandle {
  compileGrammar(g: XGrammarHandle): Promise<XGrammarHandle>;
}

export interface XGrammarMatcher extends XGrammarHandle {
  acceptToken(id: number): boolean;
  /** One bit per vocabulary entry (bit i of word i >> 5): set = the token may come next. */
  getNextTokenBitmask(): Promise<Int32Array>;
  isTerminated(): boolean;
}

export interface XGrammarInstance {
  xgr: XGrammar;
  /** Lines the instance printed since the last take (its errors: "[FATAL] file:line: what"). */
  takeMessages(): string[];
}

let source: { text: string; file: string; require: NodeJS.Require } | undefined;

/** A fresh instance (about 0.2 s: the wasm is compiled on first use). */
export function loadXGrammar(): XGrammarInstance {
  if (!source) {
    const require = createRequire(import.meta.url);
    const file = require.resolve("@mlc-ai/web-xgrammar");
    source = { text: readFileSync(file, "utf8") + `\n//# sourceURL=${file}`, file, require };
  }
  const messages: string[] = [];
  const sink = (...a: unknown[]) => void messages.push(a.map(String).join(" "));
  const mod = { exports: {} as Record<string, unknown> };
  // Function, not vm: the bundle's own dynamic import() needs this realm's module loader.
  const run = new Function("exports", "module", "require", "__filename", "__dirname", "console", source.text);
  run(mod.exports, mod, source.require, source.file, dirname(source.file), { ...console, log: sink, error: sink, warn: sink });
  return { xgr: mod.exports as unknown as XGrammar, takeMessages: () => messages.splice(0) };
}

/** The reason in an instance's message ("[FATAL] /path/file.cc:552: EBNF parser error at ..." -> "EBNF parser error at ..."). */
export function xgrammarReason(messages: string[], fallback: string): string {
  const fatal = messages.find((m) => m.includes("[FATAL]")) ?? messages.find((m) => !/^Aborted\(/.test(m));
  return fatal ? fatal.replace(/^.*?\[FATAL\]\s*\S+:\d+:\s*/, "").replace(/\s*Aborted\(.*$/s, "").trim() : fallback;
}
