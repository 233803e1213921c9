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
/* The file the vocabulary was read from, relative to the model directory ("vocab.txt",
 * "vocab.json" or "tokenizer.json"), for messages about it. */
const char *any_tokenizer_vocab_file(const any_tokenizer *t);
/* The id of the token an unknown word becomes; -1 for byte-level BPE, which spells any text
 * with its 256 byte tokens and so never gives its <unk>. */
int any_tokenizer_unk_id(const any_tokenizer *t);
/* A token's text as the vocabulary file spells it; NULL for an id no token has. */
const char *any_tokenizer_token(const any_tokenizer *t, int id);

/* tokenizer_encode_truncating or bpe_encode, whichever the family is (same contract). */
int any_tokenizer_encode(const any_tokenizer *t, const char *text, size_t len, const char *pair, size_t pair_len,
                         int max_len, enum truncation_side side, encoding *e, char *err);

/* Token i's span as HF `tokenizers` reports its offsets (TEI's /tokenize, `bertserve-cli
 * tokenize`), in bytes of text, the text (len bytes) the token came from: WordPiece's span as
 * the encoding holds it; byte-level BPE's with RoBERTa's trim_offsets applied (the token's
 * leading and trailing spaces left out) and then widened to whole characters, so that it never
 * starts or ends inside a character an emoji's byte tokens split (see text/bpe.h). */
struct token_span any_tokenizer_hf_span(const any_tokenizer *t, const encoding *e, int i, const char *text,
                                        size_t len);

/* Whether text (len bytes of UTF-8) is empty or only whitespace (Rust's char::is_whitespace):
 * WordPiece gives no token for it, byte-level BPE space tokens; either way there is nothing to
 * classify. Invalid UTF-8 is not blank (the tokenizer names the byte). */
bool any_tokenizer_blank(const char *text, size_t len);

/* The family's own tokenizer, for what only it has; NULL for the other family. */
const tokenizer *any_tokenizer_wordpiece(const any_tokenizer *t);
const bpe_tokenizer *any_tokenizer_bpe(const any_tokenizer *t);

#endif
