// Typed errors for the boundaries: each says what was expected, what was found, and where.

/** Base of every error moestream raises on purpose; `code` is stable for programs to match on. */
export class MoestreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A model or data file is malformed: names the file and the byte offset where it went wrong. */
export class FormatError extends MoestreamError {
  readonly file: string;
  readonly offset: number | bigint | undefined;
  constructor(code: string, file: string, offset: number | bigint | undefined, detail: string) {
    const where = offset === undefined ? file : `${file} at byte offset ${offset}`;
    super(code, `${where}: ${detail}`);
    this.file = file;
    this.offset = offset;
  }
}

/** A model file is well formed but does not describe a model we can run (missing tensor, wrong shape, ...). */
export class ModelError extends MoestreamError {}

/** Run fn; a ModelError it throws gets `file: ` in front (the code that raised it knew keys, not files). */
export function namingFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ModelError) throw new ModelError(e.code, `${file}: ${e.message}`, { cause: e });
    throw e;
  }
}

/** A server could not be reached or stopped answering (the Hugging Face Hub for `pull`): worth retrying later. */
export class NetworkError extends MoestreamError {}

/** Bad options or arguments from a caller. */
export class UsageError extends MoestreamError {}

/** A generation was stopped by its caller (AbortSignal, Ctrl-C) in the middle of a forward pass. */
export class AbortedError extends MoestreamError {
  constructor() {
    super("aborted", "stopped by the caller");
  }
}

/** Internal invariant; a failure is a bug in moestream, not in the input. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(`internal assertion failed: ${msg}`);
}
