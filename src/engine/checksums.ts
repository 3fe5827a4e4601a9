// The checksums the engine gives expert readers and the dense load: the native addon's where it is built
// (hardware CRC-32C on libuv's pool; a record's read and its check in one trip there), else the JS one.
// The crc is a property of the addon, not of the compute backend: --backend wasm uses it too.
import { loadNativeAddon } from "../backends/cpu/native-addon.js";
import { jsChecksums, type Checksums } from "../util/crc32c.js";

let chosen: Checksums | undefined;

export function engineChecksums(): Checksums {
  if (chosen) return chosen;
  const a = loadNativeAddon();
  // An addon built before the crc bindings existed still runs the kernels: fall back rather than fail.
  if (!a || typeof a.crc32cAsync !== "function" || typeof a.preadCrc32c !== "function") return (chosen = jsChecksums);
  return (chosen = { crc32c: (buf) => a.crc32cAsync(buf), preadCrc32c: (fd, buf, position) => a.preadCrc32c(fd, buf, position) });
}
