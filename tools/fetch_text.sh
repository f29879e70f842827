#!/bin/sh
# Fetch the calibration and evaluation text: Ambrose Bierce, "The Devil's
# Dictionary" (1911; public domain, its copyright expired, as the Debian
# package's copyright file states), from Debian's dict-devil package: download
# the .deb with apt-get, check its SHA-256, take devil.dict.dz out (gzip),
# decompress it, check the text's SHA-256 against data/text.sha256, move it
# into place. A no-op when it is there.
set -eu
dest=${1:-data/devils-dictionary.txt}
here=$(dirname "$0")/..
want=$(awk '$2 == "devils-dictionary.txt" {print $1}' "$here/data/text.sha256")
want_deb=$(awk '$2 == "dict-devil_1.0-13.1_all.deb" {print $1}' "$here/data/text.sha256")
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | awk '{print $1}')" = "$want" ]; then
  echo "text: $dest present, SHA-256 ok"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "text: downloading Debian's dict-devil 1.0-13.1" >&2
(cd "$tmp" && apt-get download -q dict-devil=1.0-13.1 >/dev/null 2>&1) || {
  apt-get update -qq >/dev/null 2>&1 || true
  (cd "$tmp" && apt-get download -q dict-devil=1.0-13.1 >/dev/null)
}
got=$(sha256sum "$tmp"/dict-devil_1.0-13.1_all.deb | awk '{print $1}')
if [ "$got" != "$want_deb" ]; then echo "text: .deb SHA-256 mismatch: got $got, want $want_deb" >&2; exit 2; fi
dpkg-deb -x "$tmp"/dict-devil_1.0-13.1_all.deb "$tmp/x"
gzip -dc "$tmp/x/usr/share/dictd/devil.dict.dz" >"$tmp/text"
got=$(sha256sum "$tmp/text" | awk '{print $1}')
if [ "$got" != "$want" ]; then echo "text: SHA-256 mismatch: got $got, want $want" >&2; exit 2; fi
mkdir -p "$(dirname "$dest")"
mv "$tmp/text" "$dest.tmp" && mv "$dest.tmp" "$dest"
echo "text: $dest ($got)"
