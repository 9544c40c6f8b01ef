#!/usr/bin/env bash
# report.sh OUT: OUT/report.md with gnuplot PNGs (macro AUROC by block for both methods, each block's
# eNTK spectrum, per-label AUROC bars) from the tables summarize.sh wrote, and per label the ten test
# windows its best eNTK direction ranks highest, as text. Called by the Makefile.
set -euo pipefail
OUT=$1
show() { "$BIN/entk-show" "$@"; }
s() { grep -o "\"$1\": [-0-9.e+]*" "$OUT/summary.json" | head -n 1 | sed "s/.*: //"; }
tmp="$OUT/report.md.tmp.$$"
trap 'rm -f "$tmp"' EXIT

# macro AUROC by block: method group -> layer auroc min max
for m in entk pca; do
    for g in pos morph; do
        awk -F'\t' -v m=$m -v g=$g 'BEGIN{OFS="\t"} $1 == m && $3 == g {print $2, $7, $8, $9}' "$OUT/macro.tsv" > "$OUT/auroc-$m-$g.tsv"
    done
done
awk -F'\t' 'BEGIN{OFS="\t"} NR > 1 {print $1 "/" $2, $3, $5}' "$OUT/best.tsv" > "$OUT/best-bars.tsv"
spectra=""
for l in $LAYERS; do spectra="$spectra \"$OUT/spectrum-$l.tsv\" using 1:2 with linespoints pt 7 ps 0.5 title \"block $l\","; done
gnuplot <<GP
set terminal pngcairo size 900,520 font ",11" noenhanced
set output "$OUT/auroc-by-layer.png"
set title "macro AUROC by block (mean over $(echo $SPLITS | wc -w) splits, bars: min-max)"
set xlabel "block"; set ylabel "macro AUROC"; set key bottom right; set xtics 1; set offsets 0.3, 0.3, 0, 0
plot "$OUT/auroc-entk-pos.tsv" using 1:2:3:4 with yerrorlines lw 2 title "eNTK, POS", \
     "$OUT/auroc-pca-pos.tsv" using 1:2:3:4 with yerrorlines lw 2 dt 2 title "PCA, POS", \
     "$OUT/auroc-entk-morph.tsv" using 1:2:3:4 with yerrorlines lw 2 title "eNTK, morphology", \
     "$OUT/auroc-pca-morph.tsv" using 1:2:3:4 with yerrorlines lw 2 dt 2 title "PCA, morphology"
set output "$OUT/spectra.png"
set title "logit eNTK spectra of down_proj, top $TOP Lanczos Ritz values ($STEPS products)"
set xlabel "eigenvalue index"; set ylabel "eigenvalue"; set logscale y; set key top right; set xtics auto; set offsets 0, 0, 0, 0
plot ${spectra%,}
unset logscale
set output "$OUT/labels.png"
set terminal pngcairo size 1100,560 font ",10" noenhanced
unset xlabel
set title "per label: best AUROC over the blocks"; set ylabel "AUROC"; set yrange [0.4:1]
set style data histograms; set style histogram clustered gap 1; set style fill solid 0.8 border -1; set boxwidth 0.9
set xtics rotate by -45 scale 0; set key outside top center horizontal
plot "$OUT/best-bars.tsv" using 2:xtic(1) title "eNTK", "" using 3 title "PCA"
GP

fmt() { awk -v x="$1" 'BEGIN {printf "%.3f", x}'; }
{
cat <<MD
# Setting 3: the logit eNTK of a language model against a same-budget PCA

Made by \`pipelines/lm-entk\` (entk). Model \`$(basename "$MODEL")\`, $(s windows) windows, blocks
$(echo $LAYERS | tr ' ' ','); for each block the top $TOP eigenvectors of the logit eNTK of
\`down_proj\` (Lanczos, $STEPS products), each scored per window by its rank-1 part, and the top
$TOP principal components of the residual stream after the block, each scored by its PC score.
Labels: the 8 UPOS classes (one-vs-rest) and the morphological features with support >= 30, each
scored by the one direction and sign that rank it best on a train half (stratified 50/50 split),
measured on the test half. Numbers are means over the splits $(echo $SPLITS | tr ' ' ','), with their
range; \`summary.json\` and \`macro.tsv\`, \`labels.tsv\`, \`best.tsv\` hold them.

## Per block: macro AP and AUROC

| block | eNTK POS AP | PCA POS AP | eNTK POS AUROC | PCA POS AUROC | eNTK morph AUROC | PCA morph AUROC | λ₁ | converged |
|---|---|---|---|---|---|---|---|---|
MD
for l in $LAYERS; do
    row() { awk -F'\t' -v m=$1 -v l=$l -v g=$2 -v c=$3 '$1 == m && $2 == l && $3 == g {printf "%.3f (%.3f–%.3f)", $c, $(c+1), $(c+2)}' "$OUT/macro.tsv"; }
    conv=$(show --name lanczos --fields converged "$OUT/eig/layer-$l.frames")
    lam=$(show --name eigenvalues --values "$OUT/eig/layer-$l.frames" | cut -f1)
    echo "| $l | $(row entk pos 4) | $(row pca pos 4) | $(row entk pos 7) | $(row pca pos 7) | $(row entk morph 7) | $(row pca morph 7) | $(printf '%.4g' "$lam") | $conv of $TOP |"
done
cat <<MD

![macro AUROC by block](auroc-by-layer.png)

## The paper's table: per label, the best AUROC over the blocks

Best over blocks, macro: POS eNTK $(fmt "$(s entk_pos_auroc)") vs PCA $(fmt "$(s pca_pos_auroc)"); morphology eNTK
$(fmt "$(s entk_morph_auroc)") vs PCA $(fmt "$(s pca_morph_auroc)"). The paper (Gemma-3-270M, block 16 alone):
POS macro AP 0.523 vs 0.409, macro AUROC 0.827 vs 0.745; morphology macro AUROC 0.783 vs 0.743.

| group | label | eNTK AUROC | (block) | PCA AUROC | (block) |
|---|---|---|---|---|---|
MD
awk -F'\t' 'NR > 1 {printf "| %s | %s | %.3f | %s | %.3f | %s |\n", $1, $2, $3, $4, $5, $6}' "$OUT/best.tsv"
cat <<MD

![per-label AUROC](labels.png)

## Spectra

![eNTK spectra](spectra.png)

## What each label's best eNTK direction picks up

For each label, its best block's direction (split $(echo $SPLITS | cut -d' ' -f1)), and the ten test windows it ranks
highest: the last dozen tokens of the window, then (after →) the true next word; ✓ marks a window
that has the label.

MD
first_split=$(echo $SPLITS | cut -d' ' -f1)
awk -F'\t' 'NR > 1 {print $1 "\t" $2 "\t" $4}' "$OUT/best.tsv" | while IFS=$'\t' read -r g label layer; do
    f="$OUT/labels/entk-$layer-split-$first_split.frames"
    show --name examples --fields group,label,direction,sign,positive,text "$f" \
        | awk -F'\t' -v g="$g" -v lab="$label" -v layer="$layer" '$1 == g && $2 == lab {
            gsub(/[][]/, "", $5); np = split($5, pos, ",")
            sign = $4 > 0 ? "+" : "-"
            printf "### %s %s (block %s, direction %s, sign %s)\n\n", g, lab, layer, $3, sign
            n = split($6, lines, /\\n/)
            for (i = 1; i <= n; i++) if (lines[i] != "") {
                split(lines[i], parts, /\\t/)
                t = parts[1]; gsub(/\\\\/, "\\", t); gsub(/\|/, "\\|", t); gsub(/`/, "'"'"'", t)
                w = parts[2]; gsub(/\\\\/, "\\", w); gsub(/`/, "'"'"'", w)
                printf "%d. %s`…%s` → **%s**\n", i, pos[i] == 1 ? "✓ " : "", t, w
            }
            print ""
        }'
done
} > "$tmp"
grep -q '| 0\.[0-9]' "$tmp" || { echo "report.sh: the report has no numbers" >&2; exit 1; }
mv "$tmp" "$OUT/report.md"
trap - EXIT
