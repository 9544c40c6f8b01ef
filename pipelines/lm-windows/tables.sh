#!/usr/bin/env bash
# tables.sh stats|labels WINDOWS.frames: the per-class counts (window_stats record) or the feature
# labels and their support (feature_labels meta) of an entk-windows stream as a TSV on stdout.
set -euo pipefail
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin}
case $1 in
stats)
    "$BIN/entk-show" --name window_stats \
        --fields classes,words,unaligned,early,candidates,examined,dropped,dropped_noword,kept "$2" |
    awk -F'\t' 'BEGIN { OFS = "\t"; print "class", "words", "unaligned", "early", "candidates", "examined", "dropped", "dropped_noword", "kept" }
      { n = split($1, cls, " ")
        for (f = 2; f <= NF; f++) { gsub(/[][]/, "", $f); split($f, v, ","); for (c = 1; c <= n; c++) { x[c, f] = v[c]; tot[f] += v[c] } }
        for (c = 1; c <= n; c++) { line = cls[c]; for (f = 2; f <= NF; f++) line = line OFS x[c, f]; print line }
        line = "all"; for (f = 2; f <= NF; f++) line = line OFS tot[f]; print line }'
    ;;
labels)
    "$BIN/entk-show" --name feature_labels --fields names,support "$2" |
    awk -F'\t' 'BEGIN { OFS = "\t"; print "label", "support" }
      { n = split($1, nm, " "); gsub(/[][]/, "", $2); split($2, s, ","); for (i = 1; i <= n; i++) print nm[i], s[i] }'
    ;;
*) echo "usage: tables.sh stats|labels WINDOWS.frames" >&2; exit 2 ;;
esac
