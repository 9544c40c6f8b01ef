#!/usr/bin/env bash
# summarize.sh OUT: Setting 3's comparison as OUT/summary.json on stdout, and the tables it is made
# from (OUT/macro.tsv, OUT/labels.tsv, OUT/best.tsv). Called by the Makefile with LAYERS, SPLITS,
# TOP, STEPS, MODEL, BIN.
#   macro.tsv   method layer group: mean, min and max over the splits of the macro AP and AUROC
#   labels.tsv  method layer group label: AUROC and AP averaged over the splits
#   best.tsv    group label: per method the best AUROC over the layers and its layer (the paper's table)
# Every number must be there: a missing or empty value stops the summary (exit 1), so a report is
# never written from half a run.
set -euo pipefail
OUT=$1
show() { "$BIN/entk-show" "$@"; }
die() { echo "summarize.sh: $*" >&2; exit 1; }

entk_files=() pca_files=()
for l in $LAYERS; do for s in $SPLITS; do entk_files+=("$OUT/labels/entk-$l-split-$s.frames"); done; done
for s in $SPLITS; do pca_files+=("$OUT/labels/pca-split-$s.frames"); done
nsplits=$(echo $SPLITS | wc -w)

# macro records of every split: method layer group ap auroc
show --name macro --fields method,layer,group,ap,auroc "${entk_files[@]}" "${pca_files[@]}" > "$OUT/macro-all.tsv"
awk -F'\t' -v n="$nsplits" 'BEGIN{OFS="\t"}
    $4 == "" || $5 == "" {bad = 1}
    {k = $1 OFS $2 OFS $3; c[k]++; sa[k] += $4; su[k] += $5
     if (!(k in mina) || $4 < mina[k]) mina[k] = $4; if (!(k in maxa) || $4 > maxa[k]) maxa[k] = $4
     if (!(k in minu) || $5 < minu[k]) minu[k] = $5; if (!(k in maxu) || $5 > maxu[k]) maxu[k] = $5}
    END {if (bad) exit 1
         print "method", "layer", "group", "ap", "ap_min", "ap_max", "auroc", "auroc_min", "auroc_max", "splits"
         for (k in c) print k, sa[k] / c[k], mina[k], maxa[k], su[k] / c[k], minu[k], maxu[k], c[k]}' "$OUT/macro-all.tsv" \
    | { read -r h; echo "$h"; sort -t$'\t' -k1,1 -k2,2n -k3,3; } > "$OUT/macro.tsv" || die "a macro record without AP or AUROC"
want=$(( ($(echo $LAYERS | wc -w)) * 2 * 2 ))
[ "$(($(wc -l < "$OUT/macro.tsv") - 1))" -eq "$want" ] || die "macro.tsv has $(($(wc -l < "$OUT/macro.tsv") - 1)) rows, expected $want (layers x methods x groups)"
awk -F'\t' -v n="$nsplits" 'NR > 1 && $10 != n {exit 1}' "$OUT/macro.tsv" || die "some layer was not scored on all $nsplits splits"

# per label, averaged over the splits (skipped labels have no auroc and are left out)
show --name label_score --fields method,layer,group,label,ap,auroc "${entk_files[@]}" "${pca_files[@]}" \
    | awk -F'\t' 'BEGIN{OFS="\t"} $6 != "" {k = $1 OFS $2 OFS $3 OFS $4; c[k]++; a[k] += $5; u[k] += $6}
        END {print "method", "layer", "group", "label", "ap", "auroc", "splits"; for (k in c) print k, a[k] / c[k], u[k] / c[k], c[k]}' \
    | { read -r h; echo "$h"; sort -t$'\t' -k1,1 -k3,3 -k4,4 -k2,2n; } > "$OUT/labels.tsv"
# the paper's table: per label and method, the best AUROC over the layers
awk -F'\t' 'BEGIN{OFS="\t"} NR > 1 {k = $3 OFS $4; if (!((k, $1) in b) || $6 > b[k, $1]) {b[k, $1] = $6; L[k, $1] = $2}; keys[k] = 1}
    END {print "group", "label", "entk_auroc", "entk_layer", "pca_auroc", "pca_layer"
         for (k in keys) print k, b[k, "entk"], L[k, "entk"], b[k, "pca"], L[k, "pca"]}' "$OUT/labels.tsv" \
    | { read -r h; echo "$h"; sort -t$'\t' -k1,1r -k2,2; } > "$OUT/best.tsv"
awk -F'\t' 'NR > 1 && ($3 == "" || $5 == "") {exit 1}' "$OUT/best.tsv" || die "a label scored by one method only"

# the spectra: eigenvalues and how many pairs converged, per block
for l in $LAYERS; do
    f="$OUT/eig/layer-$l.frames"
    show --name eigenvalues --values "$f" | tr '\t' '\n' | awk 'NF {print NR "\t" $1}' > "$OUT/spectrum-$l.tsv"
done

n_windows=$(show --name split --fields n_train,n_test "${pca_files[0]}" | head -n 1 | awk -F'\t' '{print $1 + $2}')
mean_best() { awk -F'\t' -v g="$1" -v c="$2" 'NR > 1 && $1 == g {s += $c; n++} END {if (n) printf "%.6f", s / n; else print "null"}' "$OUT/best.tsv"; }
num() { [ -n "$1" ] && echo "$1" || die "empty value ($2)"; }
{
echo "{"
echo "  \"model\": \"$MODEL\","
echo "  \"windows\": $(num "$n_windows" windows),"
echo "  \"layers\": [$(echo $LAYERS | tr ' ' ',')],"
echo "  \"splits\": [$(echo $SPLITS | tr ' ' ',')],"
echo "  \"lanczos_steps\": $STEPS,"
echo "  \"directions\": $TOP,"
echo "  \"per_layer\": ["
first=1
for l in $LAYERS; do
    [ $first = 1 ] || echo ","
    first=0
    f="$OUT/eig/layer-$l.frames"
    conv=$(show --name lanczos --fields converged "$f")
    lam1=$(show --name eigenvalues --values "$f" | cut -f1)
    echo -n "    {\"layer\": $l, \"lambda_1\": $(num "$lam1" "lambda_1 of block $l"), \"converged\": $(num "$conv" "converged of block $l")"
    for m in entk pca; do
        for g in pos morph; do
            row=$(awk -F'\t' -v m=$m -v l=$l -v g=$g '$1 == m && $2 == l && $3 == g' "$OUT/macro.tsv")
            [ -n "$row" ] || die "no $m $g row for block $l"
            echo -n ", \"${m}_${g}\": {$(echo "$row" | awk -F'\t' '{printf "\"ap\": %.6f, \"ap_min\": %.6f, \"ap_max\": %.6f, \"auroc\": %.6f, \"auroc_min\": %.6f, \"auroc_max\": %.6f", $4, $5, $6, $7, $8, $9}')}"
        done
    done
    echo -n "}"
done
echo
echo "  ],"
echo "  \"best_over_layers\": {"
echo "    \"entk_pos_auroc\": $(mean_best pos 3), \"pca_pos_auroc\": $(mean_best pos 5),"
echo "    \"entk_morph_auroc\": $(mean_best morph 3), \"pca_morph_auroc\": $(mean_best morph 5)"
echo "  },"
echo "  \"paper_layer16\": {\"entk_pos_ap\": 0.523, \"pca_pos_ap\": 0.409, \"entk_pos_auroc\": 0.827, \"pca_pos_auroc\": 0.745,"
echo "                     \"entk_morph_auroc\": 0.783, \"pca_morph_auroc\": 0.743}"
echo "}"
}
