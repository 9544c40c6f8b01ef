#!/usr/bin/env bash
# paper.sh OUT: one screen with the paper's three settings, each of entk's numbers beside the paper's
# (docs/METHOD.md), from OUT/mlp-modadd, OUT/transformer-modadd and OUT/lm-entk's summary.json. Run by
# `make paper` after the three pipelines.
set -euo pipefail
OUT=$1
# the value of a key in a summary.json (the first occurrence)
v() { grep -o "\"$2\": [-0-9.e+]*" "$OUT/$1/summary.json" | head -n 1 | sed 's/.*: //'; }
f() { awk -v x="$1" -v d="${2:-3}" 'BEGIN {printf "%." d "f", x}'; }
for s in mlp-modadd transformer-modadd lm-entk; do
    [ -s "$OUT/$s/summary.json" ] || { echo "paper.sh: $OUT/$s/summary.json is missing" >&2; exit 1; }
done
m=mlp-modadd t=transformer-modadd l=lm-entk
best=$(awk -F'\t' 'NR > 1 && $1 == "entk" && $3 == "pos" && ($7 > b || b == "") {b = $7; L = $2} END {print L}' "$OUT/$l/macro.tsv")
row() { awk -F'\t' -v m="$1" -v L="$best" -v g="$2" -v c="$3" '$1 == m && $2 == L && $3 == g {printf "%.3f", $c}' "$OUT/$l/macro.tsv"; }
cat <<TXT
entk: the paper's three settings on their embedded defaults (details: $OUT/*/report.md)

                                                   entk           paper
Setting 1: 1-layer MLP, modular addition (p = 29)
  cliff 2 vs sum (of 28)                        $(f "$(v $m overlap_sum)")         26.474
  cliff 2 vs diff (of 28)                       $(f "$(v $m overlap_diff)")         25.214
  grokking onset / derivative peak (epoch)      $(v $m onset_epoch) / $(v $m derivative_peak_epoch)        ~75 / ~70
  final test accuracy                           $(f "$(v $m final_test_accuracy)")          1.000
Setting 2: 1-layer Transformer, modular addition
  top 5 of the W_U eNTK vs sum (of 4)           $(f "$(v $t overlap_sum_top5)")          3.965
  eigenvectors 6-9 vs axis_sum (of 4)           $(f "$(v $t overlap_axis_sum_6_9)")          3.940
  onset / derivative peak (epoch)               $(v $t onset_epoch) / $(v $t derivative_peak_epoch)      ~150
Setting 3: the LM eNTK vs a same-budget PCA     $(basename "$(sed -n 's/.*"model": "\(.*\)".*/\1/p' "$OUT/$l/summary.json")")      Gemma-3-270M
  block                                         $best (best POS AUROC)  16
  POS macro AP, eNTK / PCA                      $(row entk pos 4) / $(row pca pos 4)  0.523 / 0.409
  POS macro AUROC, eNTK / PCA                   $(row entk pos 7) / $(row pca pos 7)  0.827 / 0.745
  morphology macro AUROC, eNTK / PCA            $(row entk morph 7) / $(row pca morph 7)  0.783 / 0.743
  per label, best over blocks (POS AUROC)       $(f "$(v $l entk_pos_auroc)") / $(f "$(v $l pca_pos_auroc)")
TXT
