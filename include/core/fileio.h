/* fileio: reading a whole input into memory, for the inputs entk parses in one piece (text for
 * the tokenizers and the tagger, config.json, tokenizer.json, CoNLL-U, llama2.c checkpoints and
 * tokenizers, tagger models). Frame streams are read incrementally instead (core/frame.h), and
 * large weight files are mapped (core/safetensors.h). */
#ifndef ENTK_FILEIO_H
#define ENTK_FILEIO_H
#include <stddef.h>

/* Reads the whole file at path ("-" = stdin) into memory, NUL-terminated (the NUL is not counted
 * in *n; n may be NULL). Dies with ENTK_EXIT_INPUT if it cannot be opened or read. */
char *read_file(const char *path, size_t *n);
#endif
