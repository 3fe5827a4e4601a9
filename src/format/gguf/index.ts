// Public surface of the GGUF reader and writer.
export type { GGUFFile, GGUFMetaValue, GGUFMetadata, GGUFScalarTypeName, GGUFTensorInfo } from "./types.js";
export { GGUFValueType } from "./types.js";
export { BufferSource, FileSource, type ByteSource } from "./byte-source.js";
export { GGML_TYPES, GGMLType, ggmlTypeByName, ggmlTypeInfo, ggmlTypeName, tensorByteLength, type GGMLTypeInfo } from "./ggml-types.js";
export { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, alignUp, checkTensorLayout, openGGUF, readGGUF, readTensorBytes } from "./read.js";
export {
  getMeta, getTensor, metaBool, metaNumber, metaNumberArray, metaString, metaStringArray,
  type MetaOptions, type MetaSource,
} from "./accessors.js";
export {
  meta, metaMap, planGGUF, serializeGGUFHeader, writeGGUF,
  type GGUFHeaderOptions, type GGUFLayout, type GGUFTensorSpec, type GGUFWriteOptions, type GGUFWriteTensor,
} from "./write.js";
