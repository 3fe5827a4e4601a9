# quant_ref.c is its own target: it is the one file built with -ffp-contract=off (ggml-exact rounding, see its header).
{
  "targets": [
    {
      "target_name": "quant_ref",
      "type": "static_library",
      "sources": ["src/quant_ref.c"],
      "cflags": ["-O3", "-fPIC", "-ffp-contract=off", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "xcode_settings": {
        "GCC_C_LANGUAGE_STANDARD": "gnu11",
        "OTHER_CFLAGS": ["-O3", "-ffp-contract=off", "-Wall"]
      }
    },
    {
      "target_name": "moestream_native",
      "dependencies": ["quant_ref"],
      "sources": [
        "src/addon.c",
        "src/addon_matmul.c",
        "src/addon_ops.c",
        "src/addon_crc.c",
        "src/crc32c.c",
        "src/napi_args.c",
        "src/pool.c",
        "src/matmul.c",
        "src/moe.c",
        "src/memory.c",
        "src/quantize.c",
        "src/q8_0.c",
        "src/k_quants.c",
        "src/k_quants_lo.c",
        "src/iq_quants.c",
        "src/legacy_quants.c",
        "src/mxfp4.c",
        "src/float.c",
        "src/ops.c",
        "src/attn_ext.c",
        "src/ops_linear.c",
        "src/addon_ext.c",
        "src/addon_quant.c",
        "src/gpu_clock.c"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "cflags_c": ["-std=gnu11"],
      "libraries": ["-lpthread", "-lm", "-ldl"],
      "xcode_settings": {
        "GCC_C_LANGUAGE_STANDARD": "gnu11",
        "OTHER_CFLAGS": ["-O3", "-Wall"]
      }
    }
  ]
}
