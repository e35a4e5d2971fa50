#!/usr/bin/env bash
# Installs the system packages the engine builds and runs against, when they are missing:
# oneDNN (CPU convolution/matmul), libturbojpeg (JPEG decode), NVRTC 11.x (kernel compilation,
# no GPU needed) from Debian's contrib/non-free components, and the native toolchain.
# Idempotent: a machine that already has everything is left untouched and nothing is downloaded.
set -euo pipefail

packages=(cmake g++ make libdnnl-dev libturbojpeg0-dev libnvrtc11.2 libnvrtc-builtins11.8 time)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi

# NVRTC lives in Debian's contrib/non-free components; add them once, as their own source file,
# unless some apt source already enables both.
nonfree=/etc/apt/sources.list.d/engine-contrib-non-free.sources
if ! grep -rqsE '^(Components:|deb ).*\bcontrib\b.*\bnon-free\b|^(Components:|deb ).*\bnon-free\b.*\bcontrib\b' \
     /etc/apt/sources.list /etc/apt/sources.list.d/; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s %s-updates\nComponents: contrib non-free\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$codename" "$codename" | "${SUDO[@]}" tee "$nonfree" >/dev/null
fi

echo "setup: installing ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
