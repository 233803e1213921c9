#include "text/any_tokenizer.h"

#include "common/bs_error.h"
#include "common/fileio.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

struct any_tokenizer {
    tokenizer *wordpiece; /* exactly one of the two is set */
    bpe_tokenizer *bpe;
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
    if (bpe)
        t->bpe = bpe_load(model_dir, err);
    else
        t->wordpiece = tokenizer_load(model_dir, err);
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
