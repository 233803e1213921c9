/* What BERT's text normalisation and pre-tokenisation do to one code point, exactly as
 * HuggingFace `tokenizers` (BertNormalizer + BertPreTokenizer) does it:
 * clean_text (drop NUL, U+FFFD, control and format characters; whitespace becomes a
 * separator), CJK ideographs as words of their own, and, when lower-casing, NFD with the
 * non-spacing marks removed followed by lower-casing. Unicode properties come from
 * utf8proc, corrected where HF's own tables differ (see tools/gen_unicode_overrides.py). */
#ifndef NORMALIZER_H
#define NORMALIZER_H

#include <stdbool.h>
#include <stdint.h>

enum cp_class {
    CP_DROP,  /* removed from the text */
    CP_SPACE, /* separates words, removed */
    CP_CJK,   /* a word of its own (CJK ideograph) */
    CP_PUNCT, /* a word of its own (punctuation) */
    CP_WORD,  /* part of the surrounding word */
};

/* A code point normalises to at most this many code points (NFD of one character). */
#define NORM_MAX_CPS 8

/* Classifies cp (a valid Unicode scalar value) and writes what it becomes into out,
 * returning the class; *n_out is the number of code points written (0 for CP_DROP and
 * CP_SPACE). `lowercase` is the tokenizer's do_lower_case (which also strips accents). */
enum cp_class bert_normalize_cp(int32_t cp, bool lowercase, int32_t out[NORM_MAX_CPS], int *n_out);

/* One piece of a character's NFD as HF's strip_accents sees it, before the non-spacing marks
 * are removed: its canonical combining class and whether it survives the removal. */
struct nfd_piece {
    uint8_t ccc;
    bool kept;
};

/* The NFD pieces of cp when lower-casing (which strips accents), in order, for the offsets:
 * where canonical ordering moves a mark decides which character's bytes it maps back to (see
 * text/mark_run.h). 0 for a character clean_text removes (it never reaches NFD); a whitespace
 * character is one starter. */
int bert_nfd_pieces(int32_t cp, struct nfd_piece out[NORM_MAX_CPS]);

/* Canonical ordering (the last step of NFD across characters): sorts each run of
 * combining marks by combining class, stably. Applied to a word after normalisation. */
void bert_canonical_order(int32_t *cps, int n);

#endif
