#include "text/tageval.h"
#include "core/err.h"
#include <stdlib.h>
#include <string.h>

void tag_sent_run(tag_sent *b, const tagger *t, const conllu_word *w, int n) {
    if (n > b->cap) {
        b->cap = n + 64;
        b->forms = xrealloc(b->forms, (size_t)b->cap * sizeof *b->forms);
        b->up = xrealloc(b->up, (size_t)b->cap * sizeof *b->up);
        b->xp = xrealloc(b->xp, (size_t)b->cap * sizeof *b->xp);
        b->fp = xrealloc(b->fp, (size_t)b->cap * TAG_NFEATS * sizeof *b->fp);
    }
    for (int k = 0; k < n; k++) b->forms[k] = w[k].form;
    tagger_tag(t, n, b->forms, b->up, b->xp, b->fp);
}

void tag_sent_free(tag_sent *b) {
    free(b->forms); free(b->up); free(b->xp); free(b->fp);
    memset(b, 0, sizeof *b);
}

static void scores_init(tag_scores *s, int ncls) {
    s->ncls = ncls;
    s->conf = xcalloc((size_t)ncls * (size_t)ncls, sizeof *s->conf);
    s->n = s->right = s->unseen = 0;
}

static void scores_add(tag_scores *s, int gold, int pred) {
    s->n++;
    s->right += gold == pred;
    if (gold < 0) s->unseen++;
    else s->conf[(size_t)gold * (size_t)s->ncls + (size_t)pred]++;
}

void tag_eval_init(tag_eval *e, const tagger *t) {
    memset(e, 0, sizeof *e);
    scores_init(&e->upos, tagger_nclasses(t, TAG_UPOS));
    scores_init(&e->xpos, tagger_nclasses(t, TAG_XPOS));
}

void tag_eval_free(tag_eval *e) {
    free(e->upos.conf);
    free(e->xpos.conf);
    tag_sent_free(&e->buf);
}

void tag_eval_sentence(tag_eval *e, const tagger *t, const conllu_word *w, int n, int has_feats) {
    tag_sent_run(&e->buf, t, w, n);
    const int *up = e->buf.up, *xp = e->buf.xp, *fp = e->buf.fp;
    e->sentences++;
    for (int k = 0; k < n; k++) {
        scores_add(&e->upos, tagger_class_id(t, TAG_UPOS, w[k].upos, strlen(w[k].upos)), up[k]);
        const char *x = tagger_gold_xpos(&w[k]);
        if (x) scores_add(&e->xpos, tagger_class_id(t, TAG_XPOS, x, strlen(x)), xp[k]);
        else e->bad_xpos++;
        if (!has_feats) continue;
        e->feat_words++;
        int all = 1;
        for (int q = 0; q < TAG_NFEATS; q++) {
            size_t len;
            const char *v = tagger_gold_feat(&w[k], q, &len);
            int g = tagger_class_id(t, TAG_FEAT0 + q, v, len);
            int p = fp[(size_t)k * TAG_NFEATS + (size_t)q];
            int gpresent = !(len == 1 && v[0] == '_');
            int ok = g == p || (g < 0 && !gpresent && p == 0);
            e->fright[q] += ok;
            all &= ok;
            e->fgold[q] += gpresent;
            e->fpred[q] += p != 0;
            e->fhit[q] += ok && gpresent;
        }
        e->feat_all += all;
    }
}

static double pct(long a, long b) { return b ? 100.0 * (double)a / (double)b : 0.0; }

static void print_per_class(FILE *out, const tagger *t, int model, const tag_scores *s, const char *title) {
    fprintf(out, "\n%s per class (accuracy = recall of the gold class; precision over predictions):\n", title);
    fprintf(out, "  %-8s %8s %8s %9s %9s\n", "tag", "gold", "right", "accuracy", "precision");
    for (int g = 0; g < s->ncls; g++) {
        long n = 0, pred = 0, right = s->conf[(size_t)g * (size_t)s->ncls + (size_t)g];
        for (int p = 0; p < s->ncls; p++) {
            n += s->conf[(size_t)g * (size_t)s->ncls + (size_t)p];
            pred += s->conf[(size_t)p * (size_t)s->ncls + (size_t)g];
        }
        if (!n && !pred) continue;
        fprintf(out, "  %-8s %8ld %8ld %8.2f%% %8.2f%%\n", tagger_class(t, model, g), n, right, pct(right, n), pct(right, pred));
    }
    if (s->unseen) fprintf(out, "  (%ld words have a gold tag the model never saw)\n", s->unseen);
}

static void print_confusion(FILE *out, const tagger *t, const tag_scores *s) {
    fprintf(out, "\nUPOS confusion matrix (rows gold, columns predicted):\n%-6s", "");
    for (int p = 0; p < s->ncls; p++) fprintf(out, " %5.5s", tagger_class(t, TAG_UPOS, p));
    fputc('\n', out);
    for (int g = 0; g < s->ncls; g++) {
        fprintf(out, "%-6.6s", tagger_class(t, TAG_UPOS, g));
        for (int p = 0; p < s->ncls; p++) fprintf(out, " %5ld", s->conf[(size_t)g * (size_t)s->ncls + (size_t)p]);
        fputc('\n', out);
    }
}

void tag_eval_print(FILE *out, const tag_eval *e, const tagger *t) {
    const tag_scores *su = &e->upos, *sx = &e->xpos;
    fprintf(out, "UPOS accuracy %6.2f%%  (%ld/%ld)\n", pct(su->right, su->n), su->right, su->n);
    fprintf(out, "XPOS accuracy %6.2f%%  (%ld/%ld)%s\n", pct(sx->right, sx->n), sx->right, sx->n,
            e->bad_xpos ? "  (words with a gold XPOS outside the Penn tag set are not counted)" : "");
    if (e->feat_words) {
        fprintf(out, "features: %ld words from files that annotate FEATS; all %d right for %.2f%%\n", e->feat_words,
                TAG_NFEATS, pct(e->feat_all, e->feat_words));
        fprintf(out, "  %-9s %9s %9s %9s %7s\n", "feature", "accuracy", "precision", "recall", "gold");
        for (int q = 0; q < TAG_NFEATS; q++)
            fprintf(out, "  %-9s %8.2f%% %8.2f%% %8.2f%% %7ld\n", tag_feat_names[q], pct(e->fright[q], e->feat_words),
                    pct(e->fhit[q], e->fpred[q]), pct(e->fhit[q], e->fgold[q]), e->fgold[q]);
        fprintf(out, "  (precision and recall of the feature being present with the right value)\n");
    } else {
        fprintf(out, "features: no input file annotates FEATS, so feature accuracy is not measured\n");
    }
    print_per_class(out, t, TAG_UPOS, su, "UPOS");
    print_per_class(out, t, TAG_XPOS, sx, "XPOS");
    print_confusion(out, t, su);
}

char *tagger_class_names(const tagger *t, int model) {
    size_t len = 1;
    for (int c = 0; c < tagger_nclasses(t, model); c++) len += strlen(tagger_class(t, model, c)) + 1;
    char *s = xmalloc(len), *p = s;
    for (int c = 0; c < tagger_nclasses(t, model); c++) p += sprintf(p, "%s%s", c ? " " : "", tagger_class(t, model, c));
    *p = 0;
    return s;
}

void tag_eval_write(frame_writer *w, const tag_eval *e, const tagger *t, long holdout) {
    meta m = {0};
    char facc_key[TAG_NFEATS][32];
    meta_i64(&m, "words", e->upos.n);
    meta_i64(&m, "sentences", e->sentences);
    meta_i64(&m, "holdout", holdout);
    meta_f64(&m, "upos_accuracy", pct(e->upos.right, e->upos.n) / 100);
    meta_f64(&m, "xpos_accuracy", pct(e->xpos.right, e->xpos.n) / 100);
    meta_i64(&m, "feature_words", e->feat_words);
    if (e->feat_words) {
        meta_f64(&m, "features_all_accuracy", pct(e->feat_all, e->feat_words) / 100);
        for (int q = 0; q < TAG_NFEATS; q++) {
            snprintf(facc_key[q], sizeof facc_key[q], "accuracy_%s", tag_feat_names[q]);
            meta_f64(&m, facc_key[q], pct(e->fright[q], e->feat_words) / 100);
        }
    }
    frame_write_record(w, "tag_eval", &m);
    const tag_scores *sc[2] = {&e->upos, &e->xpos};
    const char *names[2] = {"upos_confusion", "xpos_confusion"};
    for (int k = 0; k < 2; k++) {
        tensor ct = tensor_2d(DT_I64, sc[k]->ncls, sc[k]->ncls);
        for (int64_t i = 0; i < tensor_numel(&ct); i++) ((int64_t *)ct.data)[i] = sc[k]->conf[i];
        char *nm = tagger_class_names(t, k == 0 ? TAG_UPOS : TAG_XPOS);
        meta mm = {0};
        meta_str(&mm, "names", nm);
        meta_str(&mm, "rows", "gold");
        meta_str(&mm, "columns", "predicted");
        frame_write_tensor(w, names[k], &ct, &mm);
        free(nm);
        tensor_free(&ct);
    }
}
