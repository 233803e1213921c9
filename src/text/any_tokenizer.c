#include "text/any_tokenizer.h"

#include "common/bs_error.h"
#include "common/fileio.h"
#include "text/byte_level.h"
#include "text/utf8.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct any_tokenizer {
    tokenizer *wordpiece; /* exactly one of the two is set */
    bpe_tokenizer *bpe;
    const char *vocab_file; /* "vocab.txt", "vocab.json" or "tokenizer.json" */
};

/* Whether model_dir/name is there: a dangling link or an unreadable file counts, so that its
 * loader fails naming it rather than the other family's loader failing on another file. */
static bool has_file(const char *model_dir, const char *name)
{
    char path[BS_PATH_LEN];
    struct stat sb;
    return path_join(path, model_dir, name, NULL) == 0 && (lstat(path, &sb) == 0 || errno != ENOENT);
}

any_tokenizer *any_tokenizer_load(const char *model_dir, char *err)
{
    any_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return bs_fail(err, "out of memory"), NULL;
    bool bpe = has_file(model_dir, "merges.txt") ||
               (!has_file(model_dir, "vocab.txt") && has_file(model_dir, "tokenizer.json"));
    if (bpe) {
        t->bpe = bpe_load(model_dir, err);
        t->vocab_file = has_file(model_dir, "vocab.json") ? "vocab.json" : "tokenizer.json"; /* bpe_load's choice */
    } else {
        t->wordpiece = tokenizer_load(model_dir, err);
        t->vocab_file = "vocab.txt";
    }
    if (!t->bpe && !t->wordpiece) {
        free(t);
        return NULL;
    }
    return t;
}

void any_tokenizer_free(any_tokenizer *t)
{
    if (!t)
        return;
    tokenizer_free(t->wordpiece);
    bpe_free(t->bpe);
    free(t);
}

enum tokenizer_family any_tokenizer_family(const any_tokenizer *t)
{
    return t->bpe ? TOKENIZER_BPE : TOKENIZER_WORDPIECE;
}

const char *any_tokenizer_family_name(const any_tokenizer *t) { return t->bpe ? "bpe" : "wordpiece"; }

int any_tokenizer_special_tokens(const any_tokenizer *t, bool pair)
{
    return pair ? (t->bpe ? 4 : 3) : 2;
}

int any_tokenizer_vocab_size(const any_tokenizer *t)
{
    return t->bpe ? bpe_vocab_size(t->bpe) : vocab_size(tokenizer_vocab(t->wordpiece));
}

const char *any_tokenizer_vocab_file(const any_tokenizer *t) { return t->vocab_file; }

int any_tokenizer_unk_id(const any_tokenizer *t) { return t->bpe ? -1 : tokenizer_unk_id(t->wordpiece); }

const char *any_tokenizer_token(const any_tokenizer *t, int id)
{
    return t->bpe ? bpe_token(t->bpe, id) : vocab_token(tokenizer_vocab(t->wordpiece), id);
}

int any_tokenizer_encode(const any_tokenizer *t, const char *text, size_t len, const char *pair, size_t pair_len,
                         int max_len, enum truncation_side side, encoding *e, char *err)
{
    if (t->bpe)
        return bpe_encode(t->bpe, text, len, pair, pair_len, max_len, side, e, err);
    return tokenizer_encode_truncating(t->wordpiece, text, len, pair, pair_len, max_len, side, e, err);
}

const tokenizer *any_tokenizer_wordpiece(const any_tokenizer *t) { return t->wordpiece; }
const bpe_tokenizer *any_tokenizer_bpe(const any_tokenizer *t) { return t->bpe; }

static bool utf8_continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

/* `Ġ`s (U+0120, GPT-2's picture of the byte 0x20) at the front (from_end false) or the back of
 * a BPE token's text. Each stands for one byte of input. */
static int32_t token_spaces(const char *token, bool from_end)
{
    size_t n = strlen(token);
    int32_t count = 0;
    while (n >= 2 && memcmp(from_end ? token + n - 2 : token, "\xc4\xa0", 2) == 0) {
        if (!from_end)
            token += 2;
        n -= 2;
        count++;
    }
    return count;
}

/* HF's ByteLevel process_offsets (RoBERTa's trim_offsets, add_prefix_space false): the spaces
 * at either end of a token's text are left out of its offsets, though they stay in the token;
 * a token of spaces only keeps an empty span at its end. An added token such as <mask> whose
 * span takes the whitespace it strips is, in HF, that whitespace and its literal: the whitespace
 * is left out the same way. Then tokenizers maps byte tokens back to the characters they came
 * from, so a token holding part of a character covers all of it. */
struct token_span any_tokenizer_hf_span(const any_tokenizer *t, const encoding *e, int i, const char *text,
                                        size_t len)
{
    struct token_span s = e->spans[i];
    const char *token = t->bpe ? bpe_token(t->bpe, e->ids[i]) : NULL;
    if (!token || s.special || s.start >= s.end)
        return s;
    size_t token_len = strlen(token), span_len = (size_t)(s.end - s.start);
    int32_t lead = token_spaces(token, false), trail = token_spaces(token, true);
    /* An ordinary token's text is never shorter than its bytes (each byte is pictured by one or
     * two bytes of UTF-8): a longer span is an added token's literal with stripped whitespace. */
    for (size_t at = 0; span_len > token_len && at <= span_len - token_len; at++)
        if (memcmp(text + s.start + at, token, token_len) == 0) {
            lead = (int32_t)at;
            trail = (int32_t)(span_len - token_len - at);
            break;
        }
    s.start = s.start + lead < s.end ? s.start + lead : s.end;
    if (s.end >= trail)
        s.end = s.end - trail > s.start ? s.end - trail : s.start;
    while (s.start > 0 && (size_t)s.start < len && utf8_continuation((unsigned char)text[s.start]))
        s.start--;
    while ((size_t)s.end < len && s.end > s.start && utf8_continuation((unsigned char)text[s.end]))
        s.end++;
    return s;
}

bool any_tokenizer_blank(const char *text, size_t len)
{
    for (size_t at = 0; at < len;) {
        int32_t cp;
        int n = utf8_decode((const unsigned char *)text + at, len - at, &cp);
        if (n == 0 || !byte_level_is_space(cp))
            return false;
        at += (size_t)n;
    }
    return true;
}
