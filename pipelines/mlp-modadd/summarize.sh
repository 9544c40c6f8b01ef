#!/usr/bin/env bash
# summarize.sh OUT: the overlap series, its central-difference derivative, the grokking onset and
# the cliff ratios as OUT/series.tsv, and OUT/summary.json on stdout. Called by the Makefile.
set -euo pipefail
OUT=$1
source "$(dirname "$0")/../values.sh"
show() { "$BIN/entk-show" "$@" 2>>"$VALUES_ERR"; }

# epoch train_acc test_acc (logged epochs)
show --name metrics --fields epoch,train_acc,test_acc,loss "$OUT/metrics.frames" > "$OUT/metrics.tsv"
# epoch overlap_sum overlap_diff (cliff 2) for every checkpoint
: > "$OUT/overlap.tsv"
for f in "$OUT"/align/epoch-*.frames; do
    e=$(basename "$f" .frames); e=$((10#${e#epoch-}))
    s=$(show --name overlap --fields family,overlap "$f" | awk '$1=="sum"{print $2}')
    d=$(show --name overlap --fields family,overlap "$f" | awk '$1=="diff"{print $2}')
    echo -e "$e\t$s\t$d" >> "$OUT/overlap.tsv"
done
sort -n -o "$OUT/overlap.tsv" "$OUT/overlap.tsv"
# series.tsv: epoch sum diff sum% d(sum%)/step (central differences; NA at the ends) train test
join -t $'\t' <(sort -k1,1 "$OUT/overlap.tsv") <(sort -k1,1 "$OUT/metrics.tsv") | sort -n \
  | awk -F'\t' -v D="$D" 'BEGIN{OFS="\t"} {e[NR]=$1; s[NR]=$2; d[NR]=$3; tr[NR]=$4; te[NR]=$5} END {
        print "epoch", "overlap_sum", "overlap_diff", "sum_percent", "dsum_percent_per_step", "train_acc", "test_acc"
        for (i = 1; i <= NR; i++) {
            der = (i > 1 && i < NR) ? sprintf("%.6f", 100 * (s[i+1] - s[i-1]) / (2 * D)) : "NA"
            print e[i], s[i], d[i], sprintf("%.6f", 100 * s[i] / D), der, tr[i], te[i]
        }
    }' > "$OUT/series.tsv"

onset=$(awk -F'\t' -v a="$ONSET_ACC" '$3 >= a {print $1; exit}' "$OUT/metrics.tsv")
peak=$(awk -F'\t' 'NR > 1 && $5 != "NA" && (best == "" || $5 > best) {best = $5; ep = $1} END {print ep "\t" best}' "$OUT/series.tsv")
final_acc=$(tail -n 1 "$OUT/metrics.tsv" | cut -f3)
last=$(tail -n 1 "$OUT/overlap.tsv")
ratios=$(show --name eigenvalues --values "$OUT/eig/epoch-$LAST.frames" | tr '\t' '\n' \
  | awk -v D="$D" '{v[NR] = $1} END {a = 1 + 2*D; b = 1 + 4*D; printf "%.6f\t%.6f\t%d\t%d", v[a]/v[a+1], v[b]/v[b+1], a, b}')
fam() { show --name overlap --fields family,overlap "$1" | awk -v f="$2" '$1==f{print $2}'; }
sum_check=$(show --name eigenvalues --values "$OUT/final/eig-sum.frames" | tr "\t" "\n" | sed -n 1p)
full_top=$(show --name eigenvalues --values "$OUT/eig/epoch-$LAST.frames" | tr "\t" "\n" | sed -n 1p)

json=$(cat <<JSON
{
  "p": $P,
  "family_dim": $D,
  "final_epoch": $((10#$LAST)),
  "overlap_sum": $(echo "$last" | cut -f2),
  "overlap_diff": $(echo "$last" | cut -f3),
  "overlap_sum_percent": $(awk -v s="$(echo "$last" | cut -f2)" -v D="$D" 'BEGIN{printf "%.4f", 100*s/D}'),
  "overlap_diff_percent": $(awk -v s="$(echo "$last" | cut -f3)" -v D="$D" 'BEGIN{printf "%.4f", 100*s/D}'),
  "overlap_random_cliff2": $(fam "$OUT/align/epoch-$LAST.frames" random),
  "cliff1_overlap_n": $(fam "$OUT/final/align-cliff1.frames" n),
  "cliff1_overlap_m": $(fam "$OUT/final/align-cliff1.frames" m),
  "layer1_cliff1_overlap_n": $(fam "$OUT/final/align-W1.frames" n),
  "layer1_cliff1_overlap_m": $(fam "$OUT/final/align-W1.frames" m),
  "onset_epoch": ${onset:-null},
  "derivative_peak_epoch": $(echo "$peak" | cut -f1),
  "derivative_peak_percent_per_step": $(echo "$peak" | cut -f2),
  "final_test_accuracy": $final_acc,
  "cliff_ratios": [$(echo "$ratios" | cut -f1), $(echo "$ratios" | cut -f2)],
  "cliff_ratio_indices": [[$(echo "$ratios" | cut -f3), $(( $(echo "$ratios" | cut -f3) + 1 ))], [$(echo "$ratios" | cut -f4), $(( $(echo "$ratios" | cut -f4) + 1 ))]],
  "lambda1_full": $full_top,
  "lambda1_sum_of_layerwise": $sum_check
}
JSON
)
emit_json summarize.sh "$json"
