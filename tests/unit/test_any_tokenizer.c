/* The family-neutral tokenizer (text/any_tokenizer.h): the model directory's files pick the
 * family, and each call gives what the family's own API gives. */
#include "check.h"
#include "common/bs_error.h"
#include "text/any_tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const texts[] = {"", "Operating profit rose 25% to EUR 10 million.", "don't <mask> [MASK]",
                                    "\xf0\x9f\x93\x88 \xe4\xb8\xad\xe6\x96\x87  x"};

static bool same(const encoding *a, const encoding *b)
{
    if (!(a->n == b->n && a->n_untruncated == b->n_untruncated && a->truncated == b->truncated &&
          a->pair_start == b->pair_start && memcmp(a->ids, b->ids, (size_t)a->n * sizeof *a->ids) == 0 &&
          memcmp(a->type_ids, b->type_ids, (size_t)a->n * sizeof *a->type_ids) == 0))
        return false;
    for (int i = 0; i < a->n; i++) /* field by field: a struct token_span has padding */
        if (a->spans[i].start != b->spans[i].start || a->spans[i].end != b->spans[i].end ||
            a->spans[i].special != b->spans[i].special)
            return false;
    return true;
}

static void test_family(const char *model, enum tokenizer_family family)
{
    char err[BS_ERR_LEN];
    any_tokenizer *t = any_tokenizer_load(shared_path(model), err);
    CHECK(t != NULL, "%s: %s", model, err);
    if (!t)
        return;
    bool bpe = family == TOKENIZER_BPE;
    CHECK(any_tokenizer_family(t) == family && strcmp(any_tokenizer_family_name(t), bpe ? "bpe" : "wordpiece") == 0,
          "%s: family %s", model, any_tokenizer_family_name(t));
    CHECK(any_tokenizer_special_tokens(t, false) == 2 && any_tokenizer_special_tokens(t, true) == (bpe ? 4 : 3),
          "%s: special token counts", model);
    CHECK((any_tokenizer_bpe(t) != NULL) == bpe && (any_tokenizer_wordpiece(t) != NULL) == !bpe, "%s: accessors", model);
    CHECK(any_tokenizer_vocab_size(t) == (bpe ? 50265 : 30522), "%s: vocabulary size %d", model,
          any_tokenizer_vocab_size(t));
    CHECK(strcmp(any_tokenizer_token(t, bpe ? 0 : 101), bpe ? "<s>" : "[CLS]") == 0 && !any_tokenizer_token(t, -1),
          "%s: token names", model);
    encoding got = {0}, want = {0};
    for (int i = 0; i < 4; i++)
        for (int side = TRUNCATE_RIGHT; side <= TRUNCATE_LEFT; side++) {
            const char *s = texts[i];
            int rc = any_tokenizer_encode(t, s, strlen(s), "pair", 4, 8, (enum truncation_side)side, &got, err);
            int rc_want = bpe ? bpe_encode(any_tokenizer_bpe(t), s, strlen(s), "pair", 4, 8, (enum truncation_side)side,
                                           &want, err)
                              : tokenizer_encode_truncating(any_tokenizer_wordpiece(t), s, strlen(s), "pair", 4, 8,
                                                            (enum truncation_side)side, &want, err);
            CHECK(rc == 0 && rc_want == 0 && same(&got, &want), "%s: \"%s\" differs from the family's own API", model,
                  s);
            /* both families fill the spans alike: the template's first and last tokens (0, 0) and
             * special, the pair's text from pair_start on */
            CHECK(got.spans && got.spans[0].special && got.spans[0].end == 0 && got.spans[got.n - 1].special &&
                      got.spans[got.n - 1].end == 0 && got.pair_start > 1 && got.pair_start < got.n,
                  "%s: \"%s\": spans or pair_start %d", model, s, got.pair_start);
            /* pair_start is the pair's first token ("pair" is one in both vocabularies), right after
             * the separator(s): A's [SEP] where the type ids turn 1, or A's </s></s> (all type ids 0) */
            int p = got.pair_start;
            CHECK(p > 1 && p < got.n && got.spans[p].start == 0 && got.spans[p].end == 4 && !got.spans[p].special &&
                      got.spans[p - 1].special &&
                      (bpe ? got.spans[p - 2].special && got.ids[p - 1] == got.ids[p - 2] && got.type_ids[p] == 0
                           : got.type_ids[p - 1] == 0 && got.type_ids[p] == 1),
                  "%s: \"%s\": pair_start %d is not the pair's first token", model, s, p);
        }
    CHECK(any_tokenizer_encode(t, texts[1], strlen(texts[1]), NULL, 0, 0, TRUNCATE_RIGHT, &got, err) == 0 &&
              got.pair_start == got.n,
          "%s: a single text's pair_start %d is n %d", model, got.pair_start, got.n);
    encoding_free(&got);
    encoding_free(&want);
    any_tokenizer_free(t);
}

int main(void)
{
    test_family("models/roberta-tiny", TOKENIZER_BPE);
    test_family("models/tiny-bert", TOKENIZER_WORDPIECE);

    char dir[] = "/tmp/bertserve-any-XXXXXX", path[64], err[BS_ERR_LEN] = "";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    any_tokenizer *t = any_tokenizer_load(dir, err); /* neither file: WordPiece's vocab.txt is missing */
    CHECK(!t && strstr(err, "vocab.txt"), "an empty directory: \"%s\"", err);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    CHECK(symlink("/nonexistent/merges.txt", path) == 0, "symlink");
    t = any_tokenizer_load(dir, err); /* a merges.txt that is there means BPE, and its problem is named */
    CHECK(!t && strstr(err, "vocab.json"), "a dangling merges.txt: \"%s\"", err);
    unlink(path);
    /* tokenizer.json and no vocab.txt: BPE read from it */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK(symlink(shared_path("golden/tokenizer-bpe/tokenizer.json"), path) == 0, "symlink");
    t = any_tokenizer_load(dir, err);
    CHECK(t && any_tokenizer_family(t) == TOKENIZER_BPE, "tokenizer.json alone: %s", t ? "WordPiece" : err);
    any_tokenizer_free(t);
    unlink(path);
    rmdir(dir);
    return test_finish("test_any_tokenizer");
}
