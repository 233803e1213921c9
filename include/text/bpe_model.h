/* What bpe_load builds and bpe_encode reads (text/bpe.h): the vocabulary by id, the byte
 * symbols' ids, the merges in a hash table and the added tokens. Private to src/text/bpe*.c. */
#ifndef BPE_MODEL_H
#define BPE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One merge "left right" of merges.txt: rank = its 0-based line after the #version header,
 * merged = the id of left+right. Keyed by the two ids (left << 32 | right). */
struct bpe_merge {
    uint64_t key; /* BPE_NO_MERGE in an empty slot */
    int32_t rank, merged;
};
#define BPE_NO_MERGE UINT64_MAX

/* A literal matched in the raw text before pre-tokenization (HF's added tokens). */
struct bpe_added {
    char *text;
    size_t len;
    int32_t id;
    bool lstrip, rstrip; /* swallow the whitespace before / after it */
};

/* A token whose own bytes BPE into that one token, found by those bytes (see whole_words). */
struct bpe_word {
    uint32_t hash; /* of the bytes; 0 with id -1 in an empty slot */
    int32_t id;
    uint32_t start, len; /* its bytes in word_bytes */
};

struct bpe_tokenizer {
    char *token_text;      /* every token's text, NUL-terminated, end to end */
    int32_t *token_start;  /* id -> offset in token_text, -1 for an id no token has */
    int n_ids;             /* the largest id + 1 */
    int32_t byte_id[256];  /* the id of each byte's one-character symbol */
    struct bpe_merge *merges;
    size_t merge_mask;     /* slots - 1, a power of two */
    struct bpe_added *added;
    int n_added;
    int32_t cls_id, sep_id;
    /* Most pieces of real text are a whole token ("Ġprofit"): one probe here finds them, where
     * BPE would take a hash lookup per byte pair and merge. Built at load by running BPE on every
     * token's bytes and keeping those that come out as themselves, so it is exact by
     * construction; read-only, so threads share it without a lock. */
    struct bpe_word *whole_words;
    size_t word_mask; /* slots - 1, a power of two */
    char *word_bytes;
};

/* Builds t->whole_words (after the vocabulary and the merges); -1 when out of memory. */
int bpe_index_whole_words(struct bpe_tokenizer *t);

/* The rank of merging the symbols left and right, with the merged id in *merged; -1 if
 * merges.txt has no such merge. */
static inline int32_t bpe_merge_rank(const struct bpe_tokenizer *t, int32_t left, int32_t right,
                                     int32_t *merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    for (size_t i = (size_t)(h >> 32) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const struct bpe_merge *m = &t->merges[i];
        if (m->key == key) {
            *merged = m->merged;
            return m->rank;
        }
        if (m->key == BPE_NO_MERGE)
            return -1;
    }
}

#endif
