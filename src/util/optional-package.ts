// Files of packages that are optional dependencies (installed by default, left out by `--omit=optional`):
// resolved when first needed, and a UsageError naming the package and its install command when absent.
import { createRequire } from "node:module";
import { UsageError } from "./errors.js";

/**
 * The path of `file` inside `pkg`; `usedBy` says what needs it ("`gen` and `demo`"). `from` is where resolution
 * starts (this module's URL by default; tests pass another).
 */
export function optionalPackageFile(pkg: string, file: string, usedBy: string, from: string = import.meta.url): string {
  try {
    return createRequire(from).resolve(`${pkg}/${file}`);
  } catch (e) {
    if ((e as { code?: string }).code !== "MODULE_NOT_FOUND") throw e;
    throw new UsageError("missing_package", `${usedBy} needs the optional package ${pkg}, which is not installed: npm install ${pkg}`, { cause: e });
  }
}
