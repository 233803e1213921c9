/* A WordPiece vocabulary (vocab.txt: one token per line, id = 0-based line number) in a hash
 * table, so that looking up a piece costs one hash and one compare, never a scan. */
#ifndef VOCAB_H
#define VOCAB_H

#include <stdbool.h>
#include <stddef.h>

typedef struct vocab vocab;

/* Loads path. On failure returns NULL with a message naming the file (and line) in err. */
vocab *vocab_load(const char *path, char *err);
void vocab_free(vocab *v);

/* Id of the token whose text is s[0..n), with the "##" continuation prefix in front when
 * `continuation` is set; -1 if absent. */
int vocab_find(const vocab *v, bool continuation, const char *s, size_t n);

int vocab_size(const vocab *v);
const char *vocab_token(const vocab *v, int id); /* NUL-terminated; NULL if out of range */
size_t vocab_max_token_bytes(const vocab *v);    /* longest token, "##" included */

#endif
