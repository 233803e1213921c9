/* One interface over the two tokenizer families, so that the CLI and the daemon can hold either
 * behind one pointer: WordPiece (BERT, DistilBERT: text/tokenizer.h) and byte-level BPE
 * (RoBERTa: text/bpe.h). Both fill the same `encoding`, spans and pair_start included. */
#ifndef ANY_TOKENIZER_H
#define ANY_TOKENIZER_H

#include "text/bpe.h"
#include "text/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>

enum tokenizer_family { TOKENIZER_WORDPIECE, TOKENIZER_BPE };

typedef struct any_tokenizer any_tokenizer;

/* Loads the tokenizer of a HuggingFace model directory: byte-level BPE when it holds merges.txt
 * (with vocab.json), or tokenizer.json and no vocab.txt; else WordPiece from vocab.txt. NULL
 * with a message naming the file. */
any_tokenizer *any_tokenizer_load(const char *model_dir, char *err);
void any_tokenizer_free(any_tokenizer *t);

enum tokenizer_family any_tokenizer_family(const any_tokenizer *t);
const char *any_tokenizer_family_name(const any_tokenizer *t); /* "wordpiece" or "bpe" */

/* The special tokens framing one text, or a pair: 2 and 3 for WordPiece, 2 and 4 for BPE. */
int any_tokenizer_special_tokens(const any_tokenizer *t, bool pair);

int any_tokenizer_vocab_size(const any_tokenizer *t);
/* A token's text as the vocabulary file spells it; NULL for an id no token has. */
const char *any_tokenizer_token(const any_tokenizer *t, int id);

/* tokenizer_encode_truncating or bpe_encode, whichever the family is (same contract). */
int any_tokenizer_encode(const any_tokenizer *t, const char *text, size_t len, const char *pair, size_t pair_len,
                         int max_len, enum truncation_side side, encoding *e, char *err);

/* The family's own tokenizer, for what only it has; NULL for the other family. */
const tokenizer *any_tokenizer_wordpiece(const any_tokenizer *t);
const bpe_tokenizer *any_tokenizer_bpe(const any_tokenizer *t);

#endif
