/* Byte-level BPE tokenizer (GPT-2's, as RoBERTa uses it), identical to HuggingFace
 * RobertaTokenizerFast (Rust `tokenizers` 0.23): added-token literals split off the raw text,
 * GPT-2's pre-tokenization pattern (text/byte_level.h), byte-to-unicode mapping, merges by
 * rank, `<s> A </s>` and `<s> A </s></s> B </s>` with all type ids 0, and HF's longest_first
 * truncation counted with the special tokens. No normalization, no lower-casing.
 *
 * It fills the same `encoding` as the WordPiece tokenizer (text/tokenizer.h), spans included:
 * each token's byte span [start, end) in the UTF-8 text it came from (encoding.spans; the pair's
 * second text from encoding.pair_start on, since the type ids are all 0), <s> and </s> (0, 0)
 * and special, an added token's literal found in the text not special (its span takes the
 * whitespace it strips). A token is a run of whole bytes, so a span may start or end inside a
 * multi-byte character (an emoji split into byte tokens). HF's offsets differ: a split
 * character is whole in each of its tokens, and with trim_offsets the spaces at a token's ends
 * are not part of its span: any_tokenizer_hf_span (text/any_tokenizer.h) gives HF's, in bytes
 * (count characters instead for Python's). */
#ifndef BPE_H
#define BPE_H

#include "text/tokenizer.h"

#include <stddef.h>

typedef struct bpe_tokenizer bpe_tokenizer;

/* Loads model_dir/vocab.json, model_dir/merges.txt and, if present,
 * model_dir/tokenizer_config.json (the added tokens in "added_tokens_decoder" with their
 * lstrip/rstrip; "cls_token", "sep_token"; "add_prefix_space" must be false). Without
 * added_tokens_decoder, RoBERTa's `<s> <pad> </s> <unk> <mask>` (those in vocab.json; `<mask>`
 * with lstrip) are the added tokens. A directory without vocab.json is read from HF's
 * tokenizer.json instead: its model (vocab and merges, as strings or pairs), added_tokens and
 * RobertaProcessing's cls/sep; any other normalizer, pre-tokenizer, model or post-processor than
 * RoBERTa's is refused. NULL with a message naming the file and the problem. */
bpe_tokenizer *bpe_load(const char *model_dir, char *err);
void bpe_free(bpe_tokenizer *t);

int bpe_vocab_size(const bpe_tokenizer *t); /* the largest id + 1 */
/* The token's text as vocab.json spells it (bytes shown as GPT-2's characters, `Ġ` for a
 * space); NULL for an id no token has. */
const char *bpe_token(const bpe_tokenizer *t, int id);
int bpe_cls_id(const bpe_tokenizer *t); /* <s> */
int bpe_sep_id(const bpe_tokenizer *t); /* </s> */

/* Encodes text (len bytes of UTF-8) and, if pair is not NULL, the pair (text, pair), as
 * tokenizer_encode_truncating does: max_len > 0 truncates to that many tokens including the
 * 2 (single) or 4 (pair) special tokens, 0 means none; `side` says which end is cut. Returns 0,
 * or -1 with err set (invalid UTF-8 with its byte offset, max_len too small, out of memory);
 * the encoding is then empty. Reuse e: steady-state encoding allocates nothing. */
int bpe_encode(const bpe_tokenizer *t, const char *text, size_t len, const char *pair, size_t pair_len,
               int max_len, enum truncation_side side, encoding *e, char *err);

#endif
