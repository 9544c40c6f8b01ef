#include "text/tokenizer.h"
#include "core/err.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>

const char *tokenizer_kind(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) entk_die(ENTK_EXIT_INPUT, "cannot open tokenizer %s: %s", path, strerror(errno));
    int ch;
    while ((ch = fgetc(f)) == ' ' || ch == '\n' || ch == '\r' || ch == '\t') {}
    fclose(f);
    return ch == '{' || ch == '[' ? "hf" : "llama2";   /* JSON, or a binary tokenizer.bin */
}

void tokenizer_load(tokenizer *tk, const char *path, const char *format, bpe_load_info *info) {
    memset(tk, 0, sizeof *tk);
    if (!format) format = tokenizer_kind(path);
    bpe_load_info li = {0};
    if (strcmp(format, "hf") == 0) {
        tk->hf = bpe_load(path, &li);
        tk->ntokens = bpe_ntokens(tk->hf);
        tk->key = bpe_file_key(tk->hf);
        tk->kind = "hf";
    } else {
        double t0 = entk_now();
        tk->l2 = l2tok_load(path);
        li.seconds = entk_now() - t0;
        tk->ntokens = l2tok_ntokens(tk->l2);
        tk->key = l2tok_file_key(tk->l2);
        tk->kind = "llama2";
    }
    if (info) *info = li;
}

void tokenizer_free(tokenizer *tk) {
    if (tk->hf) bpe_free(tk->hf);
    if (tk->l2) l2tok_free(tk->l2);
    memset(tk, 0, sizeof *tk);
}

void tokenizer_encode(const tokenizer *tk, const char *text, size_t n, int bos, int eos, tok_seq *out) {
    if (tk->hf) bpe_encode(tk->hf, text, n, bos, out);
    else l2tok_encode(tk->l2, text, n, bos, eos, out);
}

void tokenizer_decode(const tokenizer *tk, const int32_t *ids, size_t n, int skip_special, bytebuf *out) {
    if (tk->hf) bpe_decode(tk->hf, ids, n, skip_special, out);
    else l2tok_decode(tk->l2, ids, n, skip_special, out);
    if (!out->p) bytebuf_add(out, "", 0);
}
