/* Offsets of the marks that NFD's canonical ordering moves, as HF `tokenizers` reports them.
 * HF runs NFD over the whole text and strips the non-spacing marks afterwards; its alignments
 * stay with the positions of the NFD output, not with the characters: after a run of combining
 * marks is sorted by class, the piece at each position takes the bytes of the original character
 * consumed there (a piece that starts a character consumes the next one, a later piece of the
 * same character repeats the last). A kept mark with a non-zero class (U+302E, U+1D165, ...)
 * sorted past a stripped one thus maps to the stripped one's bytes. The tokenizer feeds every
 * character's NFD pieces (normalizer.h) here; when a run that holds a kept mark ends, the run
 * rewrites those marks' byte spans in the word being collected. */
#ifndef MARK_RUN_H
#define MARK_RUN_H

#include "text/normalizer.h"

#include <stdbool.h>
#include <stdint.h>

/* Pieces a run may hold; a longer run (only in hostile input) keeps its marks' own bytes. */
#define MARK_RUN_MAX 32

struct mark_run {
    struct {
        int32_t from, to; /* the bytes of the character the piece comes from */
        uint8_t ccc;
        bool first;       /* the character's first piece (consumes a character) */
        int pos;          /* a kept piece's position in the word, else -1 */
    } piece[MARK_RUN_MAX];
    int n;
    bool unusable;              /* over MARK_RUN_MAX, or positions not known */
    int32_t last_from, last_to; /* the character consumed last before the run */
};

/* Feeds one character [from, to) of the text: its n NFD pieces, the kept ones of which land at
 * word positions pos, pos + 1, ... (pos < 0: not known). A starter piece ends the run: the
 * spans of its kept marks are rewritten in from_at/to_at (the word's per-position bytes,
 * max_pos + 1 entries). */
void mark_run_feed(struct mark_run *r, const struct nfd_piece *pieces, int n, int32_t from, int32_t to, int pos,
                   int32_t *from_at, int32_t *to_at, int max_pos);

/* Ends the run (the end of the text), rewriting as above. */
void mark_run_end(struct mark_run *r, int32_t *from_at, int32_t *to_at, int max_pos);

#endif
