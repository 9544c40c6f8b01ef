#!/usr/bin/env bash
# summarize.sh OUT: the W_U overlap series (OUT/series-align.frames, one stream per checkpoint of
# EPOCHS) with its central-difference derivative (OUT/series.tsv),
# the onset of generalisation, the key frequencies and the final per-tensor overlaps as
# OUT/summary.json on stdout. Called by the Makefile.
set -euo pipefail
OUT=$1
source "$(dirname "$0")/../values.sh"
show() { "$BIN/entk-show" "$@" 2>>"$VALUES_ERR"; }
fam() { show --name overlap --fields family,overlap "$1" | awk -v f="$2" '$1==f{print $2}'; }

show --name metrics --fields epoch,train_acc,test_acc,loss "$OUT/metrics.frames" > "$OUT/metrics.tsv"
# series-align.frames holds one stream per checkpoint, in the order of $EPOCHS
paste <(printf '%s\n' $EPOCHS | awk '{print $1 + 0}') \
      <(show --name overlap --fields family,overlap "$OUT/series-align.frames" | awk -F'\t' '$1 == "sum" {print $2}') \
  > "$OUT/overlap.tsv"
[ "$(wc -l < "$OUT/overlap.tsv")" -eq "$(echo $EPOCHS | wc -w)" ] && ! grep -qP '\t$' "$OUT/overlap.tsv" \
  || { echo "summarize.sh: series-align.frames does not have one sum overlap per checkpoint" >&2; exit 1; }
join -t $'\t' <(sort -k1,1 "$OUT/overlap.tsv") <(sort -k1,1 "$OUT/metrics.tsv") | sort -n \
  | awk -F'\t' -v D="$NK2" 'BEGIN{OFS="\t"} {e[NR]=$1; s[NR]=$2; tr[NR]=$3; te[NR]=$4} END {
        print "epoch", "overlap_sum_top", "sum_percent", "dsum_percent_per_step", "train_acc", "test_acc"
        for (i = 1; i <= NR; i++) {
            der = (i > 1 && i < NR) ? sprintf("%.6f", 100 * (s[i+1] - s[i-1]) / (2 * D)) : "NA"
            print e[i], s[i], sprintf("%.6f", 100 * s[i] / D), der, tr[i], te[i]
        }
    }' > "$OUT/series.tsv"

onset=$(awk -F'\t' -v a="$ONSET_ACC" '$3 >= a {print $1; exit}' "$OUT/metrics.tsv")
peak=$(awk -F'\t' 'NR > 1 && $4 != "NA" && (best == "" || $4 > best) {best = $4; ep = $1} END {print ep "\t" best}' "$OUT/series.tsv")
keys=$(show --name key_frequencies --fields freqs "$OUT/features.frames")
final_acc=$(tail -n 1 "$OUT/metrics.tsv" | cut -f3)
json=$({
echo "{"
echo "  \"p\": $P,"
echo "  \"key_frequencies\": $keys,"
echo "  \"overlap_sum_top5\": $(fam "$OUT/final/align-W_U.frames" sum),"
echo "  \"overlap_sum_top5_max\": $NK2,"
echo "  \"overlap_sum_range\": \"1:$((NK2 + 1))\","
echo "  \"overlap_axis_sum_range\": \"$AXIS\","
echo "  \"overlap_sum_top5_percent\": $(awk -v s="$(fam "$OUT/final/align-W_U.frames" sum)" -v d="$NK2" 'BEGIN{printf "%.4f", 100*s/d}'),"
echo "  \"overlap_axis_sum_6_9\": $(fam "$OUT/final/align-axis-W_U.frames" axis_sum),"
echo "  \"overlap_random_top5\": $(fam "$OUT/final/align-W_U.frames" random),"
echo "  \"onset_epoch\": ${onset:-null},"
echo "  \"derivative_peak_epoch\": $(echo "$peak" | cut -f1),"
echo "  \"derivative_peak_percent_per_step\": $(echo "$peak" | cut -f2),"
echo "  \"final_test_accuracy\": $final_acc,"
echo "  \"per_tensor_overlap_sum_top5\": {"
n=0
for p in $PARAMS full; do
    n=$((n + 1))
    sep=$([ "$p" = full ] && echo "" || echo ",")
    echo "    \"$p\": $(fam "$OUT/final/align-$p.frames" sum)$sep"
done
echo "  }"
echo "}"
})
emit_json summarize.sh "$json"
