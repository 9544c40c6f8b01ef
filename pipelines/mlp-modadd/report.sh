#!/usr/bin/env bash
# report.sh OUT: OUT/report.md with gnuplot PNGs (spectrum with cliffs, accuracy, overlap and its
# derivative over training). Called by the Makefile after summarize.sh.
set -euo pipefail
OUT=$1
source "$(dirname "$0")/../values.sh"
need_values report.sh "$OUT/summary.json" overlap_sum overlap_sum_percent overlap_diff overlap_diff_percent \
    overlap_random_cliff2 cliff1_overlap_n cliff1_overlap_m layer1_cliff1_overlap_n layer1_cliff1_overlap_m cliff_ratios \
    onset_epoch derivative_peak_epoch derivative_peak_percent_per_step final_test_accuracy lambda1_full lambda1_sum_of_layerwise
"$BIN/entk-show" --name eigenvalues --values "$OUT/eig/epoch-$LAST.frames" | tr '\t' '\n' | awk 'NF{print NR "\t" $1}' > "$OUT/spectrum.tsv"
"$BIN/entk-show" --name eigenvalues --values "$OUT/final/eig-W1.frames" | tr '\t' '\n' | awk 'NF{print NR "\t" $1}' > "$OUT/spectrum-W1.tsv"
c1=${CLIFF1#*:}; c2=${CLIFF2#*:}
# the derivative needs three or more checkpoints; with fewer it is all NA and is not plotted
deriv=', "" using 1:5 every ::1 axes x1y2 with lines lw 2 title "d(sum)/step"'
awk -F'\t' 'NR > 1 && $5 != "NA" {found = 1} END {exit !found}' "$OUT/series.tsv" || deriv=""
gnuplot <<GP
set terminal pngcairo size 900,520 font ",11"
set output "$OUT/spectrum.png"
set title "eNTK spectrum at epoch $((10#$LAST)) (class-traced, full and layer-1)"
set logscale y
set xlabel "eigenvalue index"; set ylabel "eigenvalue"
set arrow from $c1+0.5, graph 0 to $c1+0.5, graph 1 nohead dt 2 lc rgb "red"
set arrow from $c2+0.5, graph 0 to $c2+0.5, graph 1 nohead dt 2 lc rgb "red"
plot "$OUT/spectrum.tsv" using 1:2 with points pt 7 ps 0.5 title "full", \
     "$OUT/spectrum-W1.tsv" using 1:2 with points pt 6 ps 0.5 title "W1 only"
unset arrow; unset logscale
set output "$OUT/accuracy.png"
set title "accuracy"; set xlabel "epoch"; set ylabel "accuracy"; set yrange [0:1.05]
set key bottom right
plot "$OUT/metrics.tsv" using 1:2 with lines lw 2 title "train", "" using 1:3 with lines lw 2 title "test"
set output "$OUT/overlap.png"
set title "cliff 2 alignment over training"; set yrange [*:*]
set ylabel "overlap (% of $D)"; set y2label "d(sum %)/step"; set y2tics; set ytics nomirror
plot "$OUT/series.tsv" using 1:4 every ::1 with linespoints title "sum", \
     "" using 1:(100*\$3/$D) every ::1 with linespoints title "diff" $deriv
GP
s() { sed -n "s/^  \"$1\": \(.*\),\?$/\1/p" "$OUT/summary.json" | sed 's/,$//'; }
{
cat <<MD
# Setting 1: 1-layer MLP on modular addition (p = $P)

Made by \`pipelines/mlp-modadd\` (entk). Numbers from \`summary.json\`; series in \`series.tsv\`.

| quantity | value | paper / PyTorch reference |
|---|---|---|
| cliff 2 vs \`sum\` (of $D) | $(s overlap_sum) ($(s overlap_sum_percent) %) | 26.474 (94.5 %) |
| cliff 2 vs \`diff\` (of $D) | $(s overlap_diff) ($(s overlap_diff_percent) %) | 25.214 (90.0 %) |
| cliff 2 vs random (control) | $(s overlap_random_cliff2) | — |
| cliff 1 vs \`n\`, \`m\` | $(s cliff1_overlap_n), $(s cliff1_overlap_m) | — |
| layer-1 eNTK cliff 1 vs \`n\`, \`m\` | $(s layer1_cliff1_overlap_n), $(s layer1_cliff1_overlap_m) | holds the first cliff |
| cliff ratios λ$c1/λ$((c1+1)), λ$c2/λ$((c2+1)) | $(s cliff_ratios) | 2.16, 1.47 |
| grokking onset (test acc ≥ 10 %) | epoch $(s onset_epoch) | ≈ 75 |
| peak of d(sum overlap)/step | epoch $(s derivative_peak_epoch) ($(s derivative_peak_percent_per_step) %/step) | ≈ 70 (≈ 11 %/step) |
| final test accuracy | $(s final_test_accuracy) | 1.0 |
| λ1 full vs sum of layerwise Grams | $(s lambda1_full) vs $(s lambda1_sum_of_layerwise) | equal |

![spectrum](spectrum.png)

![accuracy](accuracy.png)

![overlap](overlap.png)
MD
} > "$OUT/report.md.tmp.$$"
mv "$OUT/report.md.tmp.$$" "$OUT/report.md"
