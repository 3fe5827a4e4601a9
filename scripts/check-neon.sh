#!/bin/sh
# Cross-builds native/check/neon_iq.c with the i-quant and MXFP4 kernels for aarch64 (with and without dotprod) and runs it
# under qemu-aarch64: every NEON dot must equal the scalar C bit for bit. A by-hand check (CI runs on x86);
# needs aarch64-linux-gnu-gcc and qemu-aarch64 (Debian: gcc-aarch64-linux-gnu, qemu-user).
set -e
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for march in armv8.2-a+dotprod armv8-a; do
  aarch64-linux-gnu-gcc -O2 -std=gnu11 -march=$march -Wall -Wextra -Wno-unused-parameter -static -Inative/src \
    -o "$out/neon_iq" native/check/neon_iq.c native/src/iq_quants.c native/src/mxfp4.c
  echo "-march=$march"
  qemu-aarch64 "$out/neon_iq"
done
