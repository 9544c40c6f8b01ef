#!/usr/bin/env bash
# report.sh OUT: OUT/report.md with gnuplot PNGs: accuracy, the W_U overlap and its derivative over
# training, the per-tensor spectra and the Fourier spectrum of W_E. Called by the Makefile.
set -euo pipefail
OUT=$1
source "$(dirname "$0")/../values.sh"
need_values report.sh "$OUT/summary.json" key_frequencies overlap_sum_top5 overlap_sum_top5_percent overlap_axis_sum_6_9 \
    overlap_random_top5 onset_epoch derivative_peak_epoch final_test_accuracy
for p in $PARAMS; do
    "$BIN/entk-show" --name eigenvalues --values "$OUT/final/eig-$p.frames" | tr '\t' '\n' | awk 'NF{print NR "\t" $1}' > "$OUT/spectrum-$p.tsv"
done
"$BIN/entk-show" --name fourier_power --values "$OUT/features.frames" | tr '\t' '\n' | awk 'NF{print NR-1 "\t" $1}' > "$OUT/fourier.tsv"
# the derivative needs three or more checkpoints; with fewer it is all NA and is not plotted
deriv=', "" using 1:4 every ::1 axes x1y2 with lines title "derivative"'
awk -F'\t' 'NR > 1 && $4 != "NA" {found = 1} END {exit !found}' "$OUT/series.tsv" || deriv=""
plots=""
for p in $PARAMS; do plots="$plots \"$OUT/spectrum-$p.tsv\" using 1:2 with linespoints pt 7 ps 0.4 title \"$p\","; done
gnuplot <<GP
set terminal pngcairo size 900,520 font ",11"
set output "$OUT/accuracy.png"
set title "accuracy"; set xlabel "epoch"; set ylabel "accuracy"; set yrange [0:1.05]; set key bottom right
plot "$OUT/metrics.tsv" using 1:2 with lines lw 2 title "train", "" using 1:3 with lines lw 2 title "test"
set output "$OUT/overlap.png"
set title "top eigenvectors of the W_U eNTK vs sum at the key frequencies"; set yrange [*:*]
set ylabel "overlap (% of $NK2)"; set y2label "d(overlap %)/step"; set y2tics; set ytics nomirror
plot "$OUT/series.tsv" using 1:3 every ::1 with lines lw 2 title "overlap" $deriv
unset y2tics; unset y2label; set ytics mirror
set output "$OUT/spectra.png"
set title "per-tensor eNTK spectra (class-mean, epoch $((10#$LAST)))"; set logscale y; set key top right
set xlabel "eigenvalue index"; set ylabel "eigenvalue"
plot ${plots%,}
unset logscale
set output "$OUT/fourier.png"
set title "Fourier power of W_E[:$P] (mean |FFT|^2 over d_model)"; set xlabel "frequency k"; set ylabel "power"
plot "$OUT/fourier.tsv" using 1:2 with impulses lw 3 notitle
GP
s() { sed -n "s/^  \"$1\": \(.*\)$/\1/p" "$OUT/summary.json" | sed 's/,$//'; }
{
cat <<MD
# Setting 2: 1-layer Transformer on modular addition (p = $P)

Made by \`pipelines/transformer-modadd\` (entk). Numbers from \`summary.json\`; series in \`series.tsv\`.

| quantity | value | paper / PyTorch reference |
|---|---|---|
| key frequencies | $(s key_frequencies) | 1 and 12 (seed-dependent) |
| top $(( NK2 + 1 )) eigenvectors of the W_U eNTK vs \`sum\` (of $NK2) | $(s overlap_sum_top5) ($(s overlap_sum_top5_percent) %) | 3.965 / 4 |
| eigenvectors ${AXIS/:/..} vs \`axis_sum\` | $(s overlap_axis_sum_6_9) | 3.940 / 4 |
| random control, top $(( NK2 + 1 )) | $(s overlap_random_top5) | — |
| onset of generalisation (test acc ≥ 10 %) | epoch $(s onset_epoch) | ≈ 150–160 |
| peak of the overlap's derivative | epoch $(s derivative_peak_epoch) | ≈ 140–150 |
| final test accuracy | $(s final_test_accuracy) | 1.0 |

Top-$(( NK2 + 1 )) overlap with \`sum\` of every per-tensor eNTK (and of their sum):

| tensor | overlap |
|---|---|
$(sed -n '/per_tensor_overlap_sum_top5/,/}/p' "$OUT/summary.json" | tail -n +2 | sed -n 's/^ *"\([^"]*\)": \([^,]*\),\?$/| \1 | \2 |/p')

![accuracy](accuracy.png)

![overlap](overlap.png)

![spectra](spectra.png)

![fourier](fourier.png)
MD
} > "$OUT/report.md.tmp.$$"
mv "$OUT/report.md.tmp.$$" "$OUT/report.md"
