#!/usr/bin/env bash
# Makes sure Debian's chromium is at /usr/bin/chromium for the browser tests, with a CJK font so
# zh-CN screenshots show text rather than boxes. Playwright drives it; `playwright install` is never
# used. Installs as root with apt-get; otherwise warns and exits 0, and the browser tests skip (or
# fail when PARTYPOINTS_REQUIRE_BROWSER=1).
set -euo pipefail

CHROMIUM=/usr/bin/chromium
CJK_FONT=fonts-wqy-microhei  # 1.6 MB; fonts-noto-cjk would be 56 MB

packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium)
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh family 2>/dev/null)" ]; then
  packages+=("$CJK_FONT")
fi
if [ ${#packages[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: not root with apt-get; install ${packages[*]} yourself (browser tests skip without $CHROMIUM)" >&2
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "ensure_chromium: installing ${packages[*]}" >&2
# Refresh the package lists only when apt does not know a candidate for every package yet.
for pkg in "${packages[@]}"; do
  if ! apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt-get update -qq
    break
  fi
done
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

if [ ! -x "$CHROMIUM" ]; then
  echo "ensure_chromium: apt-get finished but $CHROMIUM is missing" >&2
  exit 1
fi
