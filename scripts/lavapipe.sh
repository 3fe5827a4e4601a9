#!/usr/bin/env bash
# Installs Mesa 25's lavapipe (a software Vulkan device) privately into $LAVAPIPE_DIR (default /opt/mesa25),
# so Dawn (npm `webgpu`) finds an adapter on a machine without a GPU: CI runs the WebGPU tests on it.
# Debian 12's own Mesa 22.3 lavapipe is refused by Dawn; bookworm-backports' Mesa 25 works (shared/GPU.md).
# Idempotent: a finished install (its ICD file present and loadable) is left as it is. Exits non-zero, saying
# why, when it cannot install. Use it with:
#   LD_LIBRARY_PATH=$DIR/usr/lib/x86_64-linux-gnu VK_DRIVER_FILES=$DIR/lvp_icd.json node ...
set -euo pipefail
DIR="${LAVAPIPE_DIR:-/opt/mesa25}"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo unknown)"
die() { echo "lavapipe.sh: $*" >&2; exit 1; }
[ "$ARCH" = amd64 ] || die "only amd64 Debian is supported (dpkg architecture: $ARCH)"
LIB="$DIR/usr/lib/x86_64-linux-gnu"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# The Vulkan loader (libvulkan.so.1) comes from bookworm itself.
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
  $SUDO apt-get install -y -q libvulkan1 >/dev/null 2>&1 || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q libvulkan1 >/dev/null; } \
    || die "apt-get could not install libvulkan1"
fi

if [ -f "$DIR/lvp_icd.json" ] && [ -f "$LIB/libvulkan_lvp.so" ]; then
  echo "lavapipe: already installed in $DIR"
  exit 0
fi

WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/parts" "$WORK/lists/partial" "$WORK/cache" "$WORK/debs"
SRC=/etc/apt/sources.list.d/debian.sources
[ -f "$SRC" ] || die "$SRC not found (expected a Debian 12 deb822 sources file)"
# bookworm-backports from the first stanza of the system's sources (same mirror).
sed 's/^Suites: .*/Suites: bookworm-backports/' "$SRC" | awk 'BEGIN{RS="";ORS="\n\n"} NR==1' > "$WORK/parts/bpo.sources"
O=(-o APT::Sandbox::User=root -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$WORK/parts" -o "Dir::State::Lists=$WORK/lists" -o "Dir::Cache=$WORK/cache")
apt-get "${O[@]}" -q update >/dev/null || die "apt-get update of bookworm-backports failed"
(cd "$WORK/debs" && apt-get "${O[@]}" -q download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 >/dev/null) || die "downloading mesa-vulkan-drivers from bookworm-backports failed"
$SUDO mkdir -p "$DIR"
for f in "$WORK"/debs/*.deb; do $SUDO dpkg -x "$f" "$DIR"; done
[ -f "$LIB/libvulkan_lvp.so" ] || die "the backports package holds no libvulkan_lvp.so"
# The ICD file names the driver by an absolute path into the private tree.
sed "s#\"library_path\": \"[^\"]*\"#\"library_path\": \"$LIB/libvulkan_lvp.so\"#" "$DIR/usr/share/vulkan/icd.d/lvp_icd.json" | $SUDO tee "$DIR/lvp_icd.json" >/dev/null
missing="$(LD_LIBRARY_PATH="$LIB" ldd "$LIB/libvulkan_lvp.so" | grep 'not found' || true)"
[ -z "$missing" ] || die "libvulkan_lvp.so lacks libraries: $missing"
echo "lavapipe: installed $(ls "$WORK"/debs | tr '\n' ' ')into $DIR"
