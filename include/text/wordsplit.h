/* wordsplit: split English raw text into the words UD_English-EWT and UD_English-CHILDES tag,
 * with byte offsets, and into sentences.
 *
 * Words are byte ranges of the text, never rewritten, so offsets map straight back:
 *   punctuation is split off ("Mom," -> Mom ,), quotes and brackets too (straight and curly);
 *   clitics as the treebanks do: don't -> do n't, can't -> ca n't, won't -> wo n't, it's -> it 's,
 *     we're 'll 've 'm 'd likewise (' or ’); fused forms as CHILDES splits them: gonna -> gon na,
 *     wanna -> wan na, gotta -> got ta, hafta -> haf ta, cannot -> can not, dunno -> du n no, ...;
 *   hyphenated compounds are split (well - known, 15 - year) except after a short prefix
 *     (e-mail, re-do, co-op, T-shirt);
 *   numbers keep their inner , and . (1,000 3.5); abbreviations (Mr. Dr. U.S. e.g.) and single
 *     capital initials keep their period; ... and … are one word; -- — – are words;
 *   URLs and e-mail addresses are one word.
 * A sentence ends at a line break, or after . ! ? ... (and any closing quotes or brackets) when the
 * next word starts with a capital, a digit or an opening quote: "Hi!" said Tom. stays one sentence. */
#ifndef ENTK_WORDSPLIT_H
#define ENTK_WORDSPLIT_H
#include <stddef.h>

typedef struct {
    size_t start, end;   /* byte offsets: the word is text[start..end) */
    int sent_start;      /* 1 on the first word of a sentence */
} ws_word;

/* Splits text[0..n) and appends to *words (growing it; *cap is its capacity). Returns the number
 * of words appended; *nwords is updated. */
size_t ws_split(const char *text, size_t n, ws_word **words, size_t *nwords, size_t *cap);
#endif
