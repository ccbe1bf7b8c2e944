#!/usr/bin/env bash
# Real footage for the streaming-demo tests (issue #7): Debian's opencv-doc
# ships vtest.avi (pedestrians), Megamind.avi and a truncated tree.avi under
# /usr/share/doc/opencv-doc/examples/data. Installed, never committed.
# Best effort: without root or apt the tests that need it skip and say why.
set -uo pipefail
DATA=/usr/share/doc/opencv-doc/examples/data
if [ -f "$DATA/vtest.avi" ]; then
  echo "[test videos] opencv-doc present"
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null; then
  echo "[test videos] opencv-doc missing and apt-get unavailable: its tests will skip"
  exit 0
fi
echo "[test videos] installing opencv-doc (about 100 MB)"
if ! { apt-get update -qq && \
       DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends opencv-doc; } >/dev/null 2>&1; then
  echo "[test videos] apt-get install opencv-doc failed: its tests will skip"
fi
exit 0
