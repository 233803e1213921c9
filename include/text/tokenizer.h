/* BERT WordPiece tokenizer, identical to HuggingFace BertTokenizerFast (Rust `tokenizers`):
 * special-token literals split off the raw text, BertNormalizer, BertPreTokenizer,
 * greedy longest-match-first WordPiece, `[CLS] A [SEP] (B [SEP])`, and longest-first
 * truncation counted with the special tokens. */
#ifndef TOKENIZER_H
#define TOKENIZER_H

#include "text/vocab.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer tokenizer;

/* Loads model_dir/vocab.txt and (if present) model_dir/tokenizer_config.json. */
tokenizer *tokenizer_load(const char *model_dir, char *err);
void tokenizer_free(tokenizer *t);
const vocab *tokenizer_vocab(const tokenizer *t);
bool tokenizer_lowercases(const tokenizer *t);
int tokenizer_unk_id(const tokenizer *t); /* the unk_token's id ([UNK]) */

struct int_list {
    int32_t *v;
    int n;
    size_t cap; /* ints v has room for */
};

/* Where a token comes from, as HF `tokenizers` reports offsets, but in bytes (the unit of TEI's
 * /tokenize, which returns tokenizers' byte offsets): bytes [start, end) of the UTF-8 text its
 * segment was encoded from (the first text, or the pair's second: see encoding.pair_start). A
 * piece of a word covers its characters; a character that normalisation changed (accents
 * stripped, lower-cased, a ligature decomposed) maps back to the whole original character, and
 * a word that became [UNK] to the whole word. The [CLS] and [SEP] the template adds are (0, 0)
 * and special; a special-token literal found in the text covers the literal and is not special
 * (HF's special_tokens_mask). The byte-level BPE fills them the same way (its <s> and </s> are
 * (0, 0) and special), but a BPE token covers whole bytes, not characters: see text/bpe.h. */
struct token_span {
    int32_t start, end;
    bool special;
};

struct span_list {
    struct token_span *v;
    int n;
    size_t cap;
};

/* One encoded input, from either tokenizer: this WordPiece one or the byte-level BPE (text/bpe.h).
 * Reuse it across calls: its buffers grow to the largest input seen and are then recycled, so
 * steady-state encoding allocates nothing. */
typedef struct {
    int32_t *ids;         /* [CLS] A [SEP] (B [SEP]); BPE: <s> A </s> (</s> B </s>) */
    int32_t *type_ids;    /* 0 up to and including the first [SEP], then 1; BPE: all 0 */
    struct token_span *spans; /* each token's place in its text */
    int n;                /* number of tokens in ids, type_ids and spans */
    /* The first token of the pair's second text, from which spans count in that text: right
     * after A's [SEP] (WordPiece) or A's </s></s> (BPE); n when there is no pair. A consumer
     * needs it for BPE, whose type ids are all 0 and cannot tell the texts apart. */
    int pair_start;
    int n_untruncated;    /* what n would have been without truncation */
    bool truncated;
    struct int_list out_ids, out_types, seg_a, seg_b; /* storage */
    struct span_list out_spans, seg_a_spans, seg_b_spans;
    struct int_list scratch; /* BPE's working memory for merging a piece */
} encoding;

void encoding_free(encoding *e); /* frees the buffers; a zeroed encoding is ready to use */

/* Several encodings' tokens laid end to end: the token arrays of a packed batch (see
 * bert_batch), which the HTTP side and the CLI hand to the compute side. A zeroed struct is
 * empty; it grows as needed and keeps its buffers when reset (n = 0). */
struct packed_tokens {
    int32_t *ids, *type_ids;
    int n;
    size_t cap_ids, cap_type_ids; /* what each has room for */
};

/* Appends e's tokens; -1 if out of memory (p unchanged). */
int packed_tokens_append(struct packed_tokens *p, const encoding *e);
void packed_tokens_free(struct packed_tokens *p);

/* Encodes text (len bytes of UTF-8) and, if pair is not NULL, the sentence pair (text, pair).
 * max_len > 0 truncates to that many tokens including the special tokens; 0 means none.
 * Returns 0, or -1 with err set (invalid UTF-8 with its byte offset, max_len too small,
 * out of memory); the encoding is then empty. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t len, const char *pair,
                     size_t pair_len, int max_len, encoding *e, char *err);

/* The same, choosing which end truncation cuts: HF's TruncationDirection (TEI's
 * "truncation_direction"). Right, the default above, keeps each segment's first tokens; left
 * keeps its last ones. A pair's segments keep the same lengths either way. */
enum truncation_side { TRUNCATE_RIGHT, TRUNCATE_LEFT };
int tokenizer_encode_truncating(const tokenizer *t, const char *text, size_t len, const char *pair,
                                size_t pair_len, int max_len, enum truncation_side side, encoding *e,
                                char *err);

#endif
