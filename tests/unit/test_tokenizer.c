/* Tokenizer behaviour the golden files do not cover: errors (invalid UTF-8, bad vocab and
 * config files), cased vocabularies, and reuse of one encoding across calls. */
#include "check.h"
#include "common/bs_error.h"
#include "text/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[] = "/tmp/bertserve-test-XXXXXX";

/* Writes a model directory holding the given vocab.txt and tokenizer_config.json (either
 * may be NULL to leave it out) and returns its path. */
static const char *make_model(const char *name, const char *vocab_txt, const char *config)
{
    static char dir[512];
    char path[600];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    snprintf(path, sizeof path, "mkdir -p '%s'", dir);
    if (system(path) != 0)
        CHECK(0, "cannot create %s", dir);
    if (vocab_txt) {
        snprintf(path, sizeof path, "%s/vocab.txt", dir);
        FILE *f = fopen(path, "wb");
        fputs(vocab_txt, f);
        fclose(f);
    }
    if (config) {
        snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
        FILE *f = fopen(path, "wb");
        fputs(config, f);
        fclose(f);
    }
    return dir;
}

static void expect_load_error(const char *name, const char *vocab_txt, const char *config,
                              const char *needle1, const char *needle2)
{
    char err[BS_ERR_LEN] = "";
    tokenizer *t = tokenizer_load(make_model(name, vocab_txt, config), err);
    CHECK(t == NULL, "%s: loaded although it is broken", name);
    CHECK(strstr(err, needle1) && strstr(err, needle2), "%s: message \"%s\" lacks \"%s\"/\"%s\"",
          name, err, needle1, needle2);
    tokenizer_free(t);
}

/* Encodes text and compares the token strings with the space-separated expectation. */
static void expect_tokens(const tokenizer *t, encoding *e, const char *text, const char *pair,
                          int max_len, const char *want)
{
    char err[BS_ERR_LEN] = "", got[1024] = "";
    int rc = tokenizer_encode(t, text, strlen(text), pair, pair ? strlen(pair) : 0, max_len, e, err);
    CHECK(rc == 0, "\"%s\": %s", text, err);
    for (int i = 0; rc == 0 && i < e->n; i++) {
        if (i)
            strcat(got, " ");
        strncat(got, vocab_token(tokenizer_vocab(t), e->ids[i]), 64);
    }
    CHECK(strcmp(got, want) == 0, "\"%s\": got \"%s\", want \"%s\"", text, got, want);
}

static const char *SPECIALS = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";

static void test_invalid_utf8(const tokenizer *t)
{
    encoding e = {0};
    char err[BS_ERR_LEN];
    static const struct { const char *s; size_t n; size_t offset; } bad[] = {
        {"profit \xC0\xAF", 9, 7},             /* overlong '/' */
        {"\xED\xA0\x80 loss", 8, 0},           /* surrogate */
        {"rose \xE2\x82", 7, 5},               /* truncated at the end */
        {"\xF4\x90\x80\x80", 4, 0},            /* above U+10FFFF */
        {"ok\xFF", 3, 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tokenizer_encode(t, bad[i].s, bad[i].n, NULL, 0, 512, &e, err);
        char offset[64];
        snprintf(offset, sizeof offset, "offset %zu", bad[i].offset);
        CHECK(rc == -1 && strstr(err, "not valid UTF-8") && strstr(err, offset),
              "case %zu: rc %d, message \"%s\"", i, rc, rc ? err : "");
        CHECK(e.n == 0, "case %zu: an encoding was left behind", i);
    }
    int rc = tokenizer_encode(t, "fine", 4, "bad \xC3", 5, 512, &e, err);
    CHECK(rc == -1 && strstr(err, "second text"), "pair: rc %d, \"%s\"", rc, err);
    rc = tokenizer_encode(t, "a b c", 5, NULL, 0, 1, &e, err);
    CHECK(rc == -1 && strstr(err, "too small"), "max_len 1: rc %d", rc);
    rc = tokenizer_encode(t, "a", 1, "b", 1, 2, &e, err);
    CHECK(rc == -1 && strstr(err, "too small"), "pair max_len 2: rc %d", rc);
    encoding_free(&e);
}

static void test_cased(void)
{
    char vocab[512];
    snprintf(vocab, sizeof vocab, "%sH\n##é\n##llo\nHéllo\nhello\n,\n!\nWORLD\n中\n##e\n", SPECIALS);
    char err[BS_ERR_LEN];
    tokenizer *t = tokenizer_load(make_model("cased", vocab, "{\"do_lower_case\": false}"), err);
    CHECK(t != NULL, "cased: %s", err);
    if (!t)
        return;
    CHECK(!tokenizer_lowercases(t), "do_lower_case false was ignored");
    encoding e = {0};
    /* no lower-casing, no accent stripping; control characters still dropped, CJK split */
    expect_tokens(t, &e, "Héllo, WORLD!", NULL, 0, "[CLS] Héllo , WORLD ! [SEP]");
    expect_tokens(t, &e, "Hé\x01llo中hello", NULL, 0, "[CLS] Héllo 中 hello [SEP]");
    expect_tokens(t, &e, "Hello", NULL, 0, "[CLS] H ##e ##llo [SEP]");
    /* a decomposed accent stays (it is only stripped when lower-casing) */
    expect_tokens(t, &e, "He\xCC\x81llo", NULL, 0, "[CLS] [UNK] [SEP]");
    encoding_free(&e);
    tokenizer_free(t);

    /* the same vocabulary lower-cased: "Héllo" becomes "hello" */
    t = tokenizer_load(make_model("uncased", vocab, NULL), err);
    CHECK(t != NULL && tokenizer_lowercases(t), "uncased by default: %s", t ? "" : err);
    if (t) {
        expect_tokens(t, &e, "HÉLLO, He\xCC\x81llo", NULL, 0, "[CLS] hello , hello [SEP]");
        encoding_free(&e);
        tokenizer_free(t);
    }
}

static void test_reuse_and_truncation(const tokenizer *t)
{
    encoding e = {0};
    char err[BS_ERR_LEN], long_text[4096] = "";
    for (int i = 0; i < 300; i++)
        strcat(long_text, "profit ");
    CHECK(tokenizer_encode(t, long_text, strlen(long_text), NULL, 0, 0, &e, err) == 0, "%s", err);
    CHECK(e.n == 302 && !e.truncated, "no limit: %d tokens", e.n);
    CHECK(tokenizer_encode(t, long_text, strlen(long_text), NULL, 0, 128, &e, err) == 0, "%s", err);
    CHECK(e.n == 128 && e.truncated && e.n_untruncated == 302 && e.ids[127] == 102,
          "truncated to 128: n %d untruncated %d last %d", e.n, e.n_untruncated, e.ids[e.n - 1]);
    expect_tokens(t, &e, "Profit rose.", NULL, 128, "[CLS] profit rose . [SEP]");
    CHECK(!e.truncated && e.n_untruncated == 5, "short text after long: %d", e.n_untruncated);
    expect_tokens(t, &e, "", "", 0, "[CLS] [SEP] [SEP]");
    CHECK(e.type_ids[0] == 0 && e.type_ids[1] == 0 && e.type_ids[2] == 1, "pair type ids");
    encoding_free(&e);
}

/* Left truncation keeps the same number of tokens of each segment as right truncation, taken
 * from the segment's end: compared with the untruncated encoding's segments. */
static void test_truncate_left(const tokenizer *t)
{
    static const struct { const char *a, *b; int max_len; } cases[] = {
        {"one two three four five six seven eight nine ten", NULL, 6},
        {"one two three four five six seven eight nine ten", "alpha beta", 8},
        {"one two", "alpha beta gamma delta epsilon zeta eta theta", 9},
        {"one two three four five six", "alpha beta gamma delta epsilon zeta", 10},
    };
    encoding full = {0}, right = {0}, left = {0};
    char err[BS_ERR_LEN];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *a = cases[i].a, *b = cases[i].b;
        size_t bl = b ? strlen(b) : 0;
        int rc = tokenizer_encode(t, a, strlen(a), b, bl, 0, &full, err) |
                 tokenizer_encode(t, a, strlen(a), b, bl, cases[i].max_len, &right, err) |
                 tokenizer_encode_truncating(t, a, strlen(a), b, bl, cases[i].max_len, TRUNCATE_LEFT, &left, err);
        CHECK(rc == 0, "case %zu: %s", i, err);
        if (rc)
            continue;
        CHECK(left.n == cases[i].max_len && right.n == left.n && left.truncated && left.n_untruncated == full.n,
              "case %zu: left %d right %d tokens of %d", i, left.n, right.n, full.n);
        /* Segment lengths: positions of the first [SEP] agree; each kept run is a suffix. */
        int sep_full = 1, sep_left = 1;
        while (full.ids[sep_full] != 102)
            sep_full++;
        while (left.ids[sep_left] != 102)
            sep_left++;
        CHECK(right.ids[sep_left] == 102, "case %zu: first segment lengths differ", i);
        int kept_a = sep_left - 1, kept_b = left.n - sep_left - 2;
        CHECK(memcmp(left.ids + 1, full.ids + sep_full - kept_a, (size_t)kept_a * sizeof *left.ids) == 0,
              "case %zu: first segment is not the untruncated one's last %d tokens", i, kept_a);
        /* The spans go with their tokens: the kept tokens' places in the text are unchanged. */
        bool same_spans = true;
        for (int k = 0; k < kept_a; k++) {
            const struct token_span *l = &left.spans[1 + k], *f = &full.spans[sep_full - kept_a + k];
            same_spans = same_spans && l->start == f->start && l->end == f->end && !l->special;
        }
        CHECK(same_spans, "case %zu: the first segment's spans did not follow its tokens", i);
        if (b)
            CHECK(memcmp(left.ids + sep_left + 1, full.ids + full.n - 1 - kept_b, (size_t)kept_b * sizeof *left.ids) == 0 &&
                      memcmp(left.type_ids, right.type_ids, (size_t)left.n * sizeof *left.ids) == 0,
                  "case %zu: second segment is not the untruncated one's last %d tokens", i, kept_b);
    }
    encoding_free(&full);
    encoding_free(&right);
    encoding_free(&left);
}

/* Offsets the golden comparison with HF (ctest tokenizer_offsets) cannot reach: a word over
 * 100 characters, a cased vocabulary's text, and steady-state reuse of the buffers. */
static void test_offsets(const tokenizer *t)
{
    char err[BS_ERR_LEN], text[400] = "Net ";
    for (int i = 0; i < 150; i++)
        strcat(text, "\xc3\xa9"); /* é x 150: one [UNK] covering 300 bytes */
    strcat(text, " [SEP]x");
    encoding e = {0};
    CHECK(tokenizer_encode(t, text, strlen(text), NULL, 0, 0, &e, err) == 0, "%s", err);
    CHECK(e.n == 6 && e.ids[2] == 100 && e.spans[2].start == 4 && e.spans[2].end == 304 && !e.spans[2].special,
          "long word: %d tokens, [UNK] at %d..%d", e.n, e.n > 2 ? e.spans[2].start : -1, e.n > 2 ? e.spans[2].end : -1);
    CHECK(e.n == 6 && e.ids[3] == 102 && e.spans[3].start == 305 && e.spans[3].end == 310 && !e.spans[3].special,
          "a [SEP] literal covers itself and is not special");
    CHECK(e.n == 6 && e.spans[0].special && e.spans[5].special && e.spans[5].start == 0 && e.spans[5].end == 0,
          "the template's [CLS]/[SEP] are special and (0, 0)");
    /* Reuse: a shorter text after a longer one keeps the buffers (no reallocation). */
    const struct token_span *spans = e.spans;
    CHECK(tokenizer_encode(t, "Profit rose", 11, NULL, 0, 0, &e, err) == 0 && e.spans == spans &&
              e.spans[2].start == 7 && e.spans[2].end == 11,
          "reuse: the spans moved or are wrong");
    encoding_free(&e);
}

int main(void)
{
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    char err[BS_ERR_LEN];
    tokenizer *t = tokenizer_load(shared_path("models/finbert"), err);
    CHECK(t != NULL, "%s", err);
    if (t) {
        test_invalid_utf8(t);
        test_reuse_and_truncation(t);
        test_truncate_left(t);
        test_offsets(t);
    }
    tokenizer_free(t);
    test_cased();

    char vocab[256];
    snprintf(vocab, sizeof vocab, "%sprofit\n", SPECIALS);
    expect_load_error("no-vocab", NULL, NULL, "no-vocab/vocab.txt", "No such file");
    expect_load_error("empty-vocab", "", NULL, "vocab.txt", "empty");
    expect_load_error("blank-line", "[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n", NULL, "vocab.txt:3", "empty line");
    expect_load_error("bad-utf8", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nab\xFF\n", NULL, "vocab.txt:5", "UTF-8");
    expect_load_error("no-unk", "[PAD]\n[CLS]\n[SEP]\nprofit\n", NULL, "vocab.txt", "[UNK]");
    expect_load_error("no-sep", "[PAD]\n[UNK]\n[CLS]\nprofit\n", NULL, "vocab.txt", "[SEP]");
    expect_load_error("bad-config", vocab, "{\"do_lower_case\": tru", "tokenizer_config.json", "JSON");
    expect_load_error("bad-lower", vocab, "{\"do_lower_case\": \"yes\"}", "tokenizer_config.json",
                      "do_lower_case");
    expect_load_error("bad-strip", vocab, "{\"do_lower_case\": true, \"strip_accents\": false}",
                      "tokenizer_config.json", "strip_accents");
    expect_load_error("bad-unk", vocab, "{\"unk_token\": \"<unk>\"}", "vocab.txt", "<unk>");

    /* Only a missing tokenizer_config.json means "absent": one that cannot be read fails the load
     * (a cased model must not silently become uncased), and no model file may hang the load. */
    char path[600];
    const char *dir = make_model("config-dir", vocab, NULL);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    CHECK(mkdir(path, 0700) == 0, "mkdir %s", path);
    expect_load_error("config-dir", vocab, NULL, "tokenizer_config.json", "not a regular file");
    dir = make_model("config-fifo", vocab, NULL);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    expect_load_error("config-fifo", vocab, NULL, "tokenizer_config.json", "not a regular file");
    dir = make_model("config-dangling", vocab, NULL);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    CHECK(symlink("/nonexistent/tokenizer_config.json", path) == 0, "symlink %s", path);
    expect_load_error("config-dangling", vocab, NULL, "tokenizer_config.json", "No such file");
    dir = make_model("vocab-fifo", NULL, NULL);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    expect_load_error("vocab-fifo", NULL, NULL, "vocab.txt", "not a regular file");

    /* CRLF vocabularies load with the same tokens */
    t = tokenizer_load(make_model("crlf", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nprofit\r\n", NULL), err);
    CHECK(t != NULL, "crlf: %s", err);
    if (t) {
        encoding e = {0};
        expect_tokens(t, &e, "Profit", NULL, 0, "[CLS] profit [SEP]");
        encoding_free(&e);
        tokenizer_free(t);
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmp_root);
    return test_finish("test_tokenizer");
}
