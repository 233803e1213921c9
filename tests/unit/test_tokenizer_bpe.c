/* Byte-level BPE behaviour beyond the goldens: GPT-2's pieces (contractions, digits, whitespace
 * runs, Unicode classes), merges by rank with the leftmost first, edge texts (empty, spaces,
 * emoji), invalid UTF-8, limits too small, truncation on either side, reuse without growth,
 * spans, and files that fail to load with their name and the problem. */
#include "check.h"
#include "common/bs_error.h"
#include "common/buffer.h"
#include "text/bpe.h"
#include "text/byte_level.h"
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmp_root[] = "/tmp/bertserve-bpe-test-XXXXXX";

/* The pieces of text joined by '|'. */
static void expect_pieces(const char *text, const char *want)
{
    char got[512] = "";
    size_t n = strlen(text), o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = byte_level_piece_len(text + i, n - i);
        CHECK(len > 0 && len <= n - i, "\"%s\": piece length %zu at %zu", text, len, i);
        if (len == 0 || len > n - i)
            return;
        o += (size_t)snprintf(got + o, sizeof got - o, "%s%.*s", i ? "|" : "", (int)len, text + i);
        i += len;
    }
    CHECK(strcmp(got, want) == 0, "pieces of \"%s\": got \"%s\", want \"%s\"", text, got, want);
}

static void test_pieces(void)
{
    expect_pieces("don't", "don|'t");
    expect_pieces("we're they'll I'd you've I'm it's", "we|'re| they|'ll| I|'d| you|'ve| I|'m| it|'s");
    expect_pieces("IT'S", "IT|'|S"); /* contractions are case-sensitive */
    expect_pieces("'sam", "'s|am");
    expect_pieces("rose 25% to 13.1", "rose| 25|%| to| 13|.|1");
    expect_pieces("a   b", "a|  | b"); /* the last space of a run goes with the word */
    expect_pieces("a  ", "a|  ");      /* a run at the end stays whole */
    expect_pieces("a\n\nb", "a|\n|\n|b");
    expect_pieces(" ", " ");
    expect_pieces("  !!x", " | !!|x");
    expect_pieces("caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9| na\xc3\xafve");
    expect_pieces("e\xcc\x81", "e|\xcc\x81");                    /* a combining mark is not \p{L} */
    expect_pieces("\xe2\x85\xa0\xe2\x85\xa1x", "\xe2\x85\xa0\xe2\x85\xa1|x"); /* Nl is \p{N} */
    expect_pieces("a\xc2\x85" "b", "a|\xc2\x85|b");              /* U+0085 is \s */
    expect_pieces("a\xe2\x80\x8b" "b", "a|\xe2\x80\x8b|b");      /* U+200B is not \s: punctuation-like */
    expect_pieces("\xf0\x9f\x93\x88\xf0\x9f\x9a\x80 x", "\xf0\x9f\x93\x88\xf0\x9f\x9a\x80| x");
    CHECK(byte_level_char(' ') == 0x120 && byte_level_char('\n') == 0x10A && byte_level_char('A') == 'A' &&
              byte_level_char(0xAD) == 0x143 && byte_level_char(0x7F) == 0x121,
          "bytes_to_unicode");
    for (int b = 0; b < 256; b++)
        CHECK(byte_level_byte(byte_level_char((unsigned char)b)) == b, "byte 0x%02X does not round-trip", b);
}

/* Encodes and compares the token texts, space-separated. */
static void expect_tokens(const bpe_tokenizer *t, encoding *e, const char *text, const char *pair, int max_len,
                          enum truncation_side side, const char *want)
{
    char err[BS_ERR_LEN] = "", got[1024] = "";
    int rc = bpe_encode(t, text, strlen(text), pair, pair ? strlen(pair) : 0, max_len, side, e, err);
    CHECK(rc == 0, "\"%s\": %s", text, err);
    for (int i = 0; rc == 0 && i < e->n; i++) {
        if (i)
            strcat(got, " ");
        strncat(got, bpe_token(t, e->ids[i]), 64);
    }
    CHECK(strcmp(got, want) == 0, "\"%s\": got \"%s\", want \"%s\"", text, got, want);
}

static void expect_error(const bpe_tokenizer *t, const char *text, size_t len, const char *pair, int max_len,
                         const char *needle)
{
    encoding e = {0};
    char err[BS_ERR_LEN] = "";
    int rc = bpe_encode(t, text, len, pair, pair ? strlen(pair) : 0, max_len, TRUNCATE_RIGHT, &e, err);
    CHECK(rc == -1 && e.n == 0, "\"%s\": no error", text);
    CHECK(strstr(err, needle), "\"%s\": message \"%s\" lacks \"%s\"", text, err, needle);
    encoding_free(&e);
}

/* A token the template added: (0, 0) and special, as WordPiece's [CLS] and [SEP]. */
static bool is_framing(const encoding *e, int i)
{
    return e->spans[i].special && e->spans[i].start == 0 && e->spans[i].end == 0;
}

/* Field by field: a struct token_span has padding that memcmp would compare. */
static bool same_spans(const encoding *a, const encoding *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->spans[i].start != b->spans[i].start || a->spans[i].end != b->spans[i].end ||
            a->spans[i].special != b->spans[i].special)
            return false;
    return true;
}

static void test_roberta(const bpe_tokenizer *t)
{
    encoding e = {0};
    char err[BS_ERR_LEN];
    CHECK(bpe_encode(t, "Hello world", 11, NULL, 0, 0, TRUNCATE_RIGHT, &e, err) == 0 && e.n == 4 &&
              e.ids[0] == 0 && e.ids[1] == 15500 && e.ids[2] == 999 && e.ids[3] == 2,
          "\"Hello world\" is [0, 15500, 999, 2] with roberta-tiny's vocabulary (ENCODERS.md)");
    expect_tokens(t, &e, "", NULL, 0, TRUNCATE_RIGHT, "<s> </s>");
    CHECK(e.n_untruncated == 2 && !e.truncated && e.pair_start == 2, "empty text");
    expect_tokens(t, &e, "   ", NULL, 0, TRUNCATE_RIGHT, "<s> Ġ Ġ Ġ </s>"); /* GPT-2 has no ĠĠ merge */
    expect_tokens(t, &e, "don't", NULL, 0, TRUNCATE_RIGHT, "<s> don 't </s>");
    expect_tokens(t, &e, "2007 13.1", NULL, 0, TRUNCATE_RIGHT, "<s> 2007 Ġ13 . 1 </s>");
    expect_tokens(t, &e, "Hello <mask>!", NULL, 0, TRUNCATE_RIGHT, "<s> Hello <mask> ! </s>"); /* lstrip */
    CHECK(e.spans[2].start == 5 && e.spans[2].end == 12 && !e.spans[2].special,
          "<mask>'s span takes the space it strips, not special: [%d, %d)", e.spans[2].start, e.spans[2].end);
    CHECK(is_framing(&e, 0) && is_framing(&e, 4) && !e.spans[1].special && !e.spans[3].special,
          "<s> and </s> are (0, 0) and special, the text's tokens not");
    expect_tokens(t, &e, "a<s>b", "c", 0, TRUNCATE_RIGHT, "<s> a <s> b </s> </s> c </s>");
    CHECK(e.pair_start == 6 && e.spans[6].start == 0 && e.spans[6].end == 1, "the pair's spans are into the pair");
    CHECK(e.spans[2].start == 1 && e.spans[2].end == 4 && !e.spans[2].special, "a <s> in the text is its literal");
    CHECK(is_framing(&e, 0) && is_framing(&e, 4) && is_framing(&e, 5) && is_framing(&e, 7), "the pair's framing");
    /* an emoji is 4 byte-level symbols; its tokens' spans are whole bytes, tiling the text */
    const char *emoji = "\xf0\x9f\x93\x88";
    CHECK(bpe_encode(t, emoji, 4, NULL, 0, 0, TRUNCATE_RIGHT, &e, err) == 0 && e.n >= 3, "emoji: %s", err);
    CHECK(e.spans[1].start == 0 && e.spans[e.n - 2].end == 4, "emoji spans");
    /* truncation: a single text keeps max_len - 2, cutting the emoji's byte tokens apart */
    CHECK(bpe_encode(t, emoji, 4, NULL, 0, 3, TRUNCATE_RIGHT, &e, err) == 0 && e.n == 3 && e.truncated &&
              e.n_untruncated > 3,
          "emoji cut to 3");
    expect_tokens(t, &e, "one two three four", NULL, 4, TRUNCATE_RIGHT, "<s> one Ġtwo </s>");
    expect_tokens(t, &e, "one two three four", NULL, 4, TRUNCATE_LEFT, "<s> Ġthree Ġfour </s>");
    expect_tokens(t, &e, "one two three", "four five", 7, TRUNCATE_RIGHT, "<s> one Ġtwo </s> </s> four </s>");
    expect_tokens(t, &e, "x", NULL, 2, TRUNCATE_RIGHT, "<s> </s>");
    expect_tokens(t, &e, "x", "y", 4, TRUNCATE_RIGHT, "<s> </s> </s> </s>");
    CHECK(e.truncated && e.n_untruncated == 6, "both texts cut away");
    expect_error(t, "x", 1, NULL, 1, "max length 1 is too small: the special tokens alone need 2");
    expect_error(t, "x", 1, "y", 3, "max length 3 is too small: the special tokens alone need 4");
    expect_error(t, "ab\xff", 3, NULL, 0, "the text is not valid UTF-8 (at byte offset 2)");
    expect_error(t, "ab\xc3", 3, NULL, 0, "at byte offset 2");        /* truncated sequence */
    expect_error(t, "\xed\xa0\x80", 3, NULL, 0, "at byte offset 0");   /* a surrogate */
    expect_error(t, "ok", 2, "b\xc0\xaf", 0, "the second text is not valid UTF-8 (at byte offset 1)");
    CHECK(bpe_encode(t, "a\0b", 3, NULL, 0, 0, TRUNCATE_RIGHT, &e, err) == 0 && e.n == 5, "a NUL is a byte token");
    encoding_free(&e);
}

/* Once an encoding has held the longest input, encoding anything no longer grows it. */
static void test_reuse(const bpe_tokenizer *t)
{
    struct buffer long_text = {0};
    for (int i = 0; i < 200; i++)
        buffer_appendf(&long_text, "Operating profit rose %d%% to EUR %d.%d mn \xf0\x9f\x93\x88 ", i, i * 7, i % 10);
    buffer_appendf(&long_text, "%s", "supercalifragilisticexpialidocious");
    encoding e = {0}, fresh = {0};
    char err[BS_ERR_LEN];
    CHECK(bpe_encode(t, long_text.data, long_text.len, "a pair", 6, 0, TRUNCATE_RIGHT, &e, err) == 0, "%s", err);
    int32_t *ids = e.out_ids.v, *scratch = e.scratch.v;
    struct token_span *spans = e.out_spans.v;
    size_t caps = e.out_ids.cap + e.out_types.cap + e.out_spans.cap + e.seg_a.cap + e.seg_b.cap + e.seg_a_spans.cap +
                  e.seg_b_spans.cap + e.scratch.cap;
    static const char *const texts[] = {"", "Profit rose.", "\xe4\xb8\xad\xe6\x96\x87 don't", "   "};
    for (int i = 0; i < 4; i++) {
        CHECK(bpe_encode(t, texts[i], strlen(texts[i]), NULL, 0, 0, TRUNCATE_RIGHT, &e, err) == 0, "%s", err);
        CHECK(bpe_encode(t, texts[i], strlen(texts[i]), NULL, 0, 0, TRUNCATE_RIGHT, &fresh, err) == 0, "%s", err);
        CHECK(e.n == fresh.n && memcmp(e.ids, fresh.ids, (size_t)e.n * sizeof *e.ids) == 0 &&
                  same_spans(&e, &fresh),
              "\"%s\": a used encoding gives another answer", texts[i]);
        encoding_free(&fresh);
    }
    CHECK(bpe_encode(t, long_text.data, long_text.len, "a pair", 6, 0, TRUNCATE_RIGHT, &e, err) == 0, "%s", err);
    size_t caps_after = e.out_ids.cap + e.out_types.cap + e.out_spans.cap + e.seg_a.cap + e.seg_b.cap +
                        e.seg_a_spans.cap + e.seg_b_spans.cap + e.scratch.cap;
    CHECK(ids == e.out_ids.v && spans == e.out_spans.v && scratch == e.scratch.v && caps == caps_after,
          "steady-state encoding reallocated its buffers");
    encoding_free(&e);
    buffer_free(&long_text);
}

/* ---- a small made-up vocabulary, and broken copies of it ---------------------------- */

/* vocab.json: the 256 byte symbols (ids 0-255 in byte order), then `extra` ("\"tok\": id, ..."). */
static void write_vocab(struct buffer *b, const char *extra)
{
    b->len = 0;
    buffer_append(b, "{", 1);
    for (int byte = 0; byte < 256; byte++) {
        char s[4];
        int n = utf8_encode(byte_level_char((unsigned char)byte), s);
        bool escape = s[0] == '"' || s[0] == '\\';
        buffer_appendf(b, "%s\"%s%.*s\": %d", byte ? ", " : "", escape ? "\\" : "", n, s, byte);
    }
    buffer_appendf(b, "%s%s}", extra[0] ? ", " : "", extra);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A model directory with the given files (NULL: left out). */
static const char *make_model(const char *name, const char *vocab_json, const char *merges, const char *config)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp_root, name);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    CHECK(system(cmd) == 0, "cannot create %s", dir);
    if (vocab_json)
        write_file(dir, "vocab.json", vocab_json);
    if (merges)
        write_file(dir, "merges.txt", merges);
    if (config)
        write_file(dir, "tokenizer_config.json", config);
    return dir;
}

static const char *EXTRA = "\"<s>\": 256, \"<pad>\": 257, \"</s>\": 258, \"<unk>\": 259, \"<mask>\": 260, "
                           "\"he\": 261, \"\\u0120t\": 262, \"\\u0120the\": 263, \"aa\": 264";
static const char *MERGES = "#version: 0.2\nh e\n\xc4\xa0 t\n\xc4\xa0t he\na a\n";

static void expect_load_error(const char *name, const char *vocab_json, const char *merges, const char *config,
                              const char *needle1, const char *needle2)
{
    char err[BS_ERR_LEN] = "";
    bpe_tokenizer *t = bpe_load(make_model(name, vocab_json, merges, config), err);
    CHECK(t == NULL, "%s: loaded although it is broken", name);
    CHECK(strstr(err, needle1) && strstr(err, needle2), "%s: message \"%s\" lacks \"%s\"/\"%s\"", name, err,
          needle1, needle2);
    bpe_free(t);
}

static void test_small_vocabulary(void)
{
    struct buffer v = {0};
    write_vocab(&v, EXTRA);
    char err[BS_ERR_LEN];
    bpe_tokenizer *t = bpe_load(make_model("small", v.data, MERGES, NULL), err);
    CHECK(t != NULL, "small: %s", err);
    if (t) {
        encoding e = {0};
        expect_tokens(t, &e, "the the", NULL, 0, TRUNCATE_RIGHT, "<s> t he Ġthe </s>");
        /* equal ranks merge the leftmost pair first, as HF does: aaa -> aa a */
        expect_tokens(t, &e, "aaa aaaa", NULL, 0, TRUNCATE_RIGHT, "<s> aa a Ġ aa aa </s>");
        expect_tokens(t, &e, "x <mask>", NULL, 0, TRUNCATE_RIGHT, "<s> x <mask> </s>"); /* default lstrip */
        CHECK(bpe_vocab_size(t) == 265 && bpe_cls_id(t) == 256 && bpe_sep_id(t) == 258 && !bpe_token(t, 265),
              "sizes and ids");
        encoding_free(&e);
        bpe_free(t);
    }
    /* tokenizer_config.json's added tokens replace the defaults: here <mask> strips nothing */
    t = bpe_load(make_model("config", v.data, MERGES,
                            "{\"added_tokens_decoder\": {\"256\": {\"content\": \"<s>\"}, \"258\": {\"content\": "
                            "\"</s>\"}, \"260\": {\"content\": \"<mask>\", \"lstrip\": false, \"rstrip\": true}}}"),
                 err);
    CHECK(t != NULL, "config: %s", err);
    if (t) {
        encoding e = {0};
        expect_tokens(t, &e, "x <mask> he", NULL, 0, TRUNCATE_RIGHT, "<s> x Ġ <mask> he </s>");
        encoding_free(&e);
        bpe_free(t);
    }

    expect_load_error("no-vocab", NULL, MERGES, NULL, "no-vocab/vocab.json", "No such file");
    expect_load_error("no-merges", v.data, NULL, NULL, "no-merges/merges.txt", "No such file");
    expect_load_error("vocab-array", "[1, 2]", MERGES, NULL, "vocab.json", "not a JSON object");
    expect_load_error("vocab-broken", "{\"a\": 1", MERGES, NULL, "vocab.json", "not valid JSON");
    expect_load_error("no-byte", "{\"a\": 0, \"<s>\": 1, \"</s>\": 2}", "", NULL, "vocab.json", "byte 0x00");
    struct buffer bad = {0};
    write_vocab(&bad, "\"<s>\": 256, \"</s>\": 258, \"x1\": -3");
    expect_load_error("negative-id", bad.data, MERGES, NULL, "vocab.json", "\"x1\" must have an integer id");
    write_vocab(&bad, "\"<s>\": 256, \"</s>\": 97");
    expect_load_error("duplicate-id", bad.data, "", NULL, "vocab.json", "id 97 is given to both");
    write_vocab(&bad, "\"<pad>\": 257");
    expect_load_error("no-cls", bad.data, "", NULL, "vocab.json", "<s> is not in vocab.json");
    expect_load_error("merge-unknown", v.data, "#version: 0.2\nh e\nq z\n", NULL, "merges.txt: line 3",
                      "\"qz\" is not in the vocabulary");
    expect_load_error("merge-three", v.data, "h e x\n", NULL, "merges.txt: line 1", "two tokens");
    expect_load_error("merge-blank", v.data, "h e\n\n\xc4\xa0 t\n", NULL, "merges.txt: line 2", "two tokens");
    expect_load_error("config-json", v.data, MERGES, "{\"add_prefix_space\": ", "tokenizer_config.json",
                      "not a JSON object");
    expect_load_error("prefix-space", v.data, MERGES, "{\"add_prefix_space\": true}", "tokenizer_config.json",
                      "add_prefix_space");
    expect_load_error("single-word", v.data, MERGES,
                      "{\"added_tokens_decoder\": {\"260\": {\"content\": \"<mask>\", \"single_word\": true}}}",
                      "tokenizer_config.json", "single_word");
    expect_load_error("added-bad-id", v.data, MERGES, "{\"added_tokens_decoder\": {\"x\": {\"content\": \"<m>\"}}}",
                      "tokenizer_config.json", "added token \"x\"");
    expect_load_error("bad-sep", v.data, MERGES, "{\"sep_token\": \"[SEP]\"}", "tokenizer_config.json",
                      "[SEP] is not in vocab.json");
    buffer_free(&bad);
    buffer_free(&v);
}

/* tokenizer.json alone: RoBERTa's pipeline around the small vocabulary, with `merges` (a JSON
 * array) and the given normalizer, pre-tokenizer, model type and post-processor. */
static const char *tokenizer_json(struct buffer *out, const char *vocab_json, const char *merges,
                                  const char *normalizer, const char *pre, const char *type, const char *post)
{
    out->len = 0;
    buffer_appendf(out,
                   "{\"version\": \"1.0\", \"added_tokens\": [{\"id\": 256, \"content\": \"<s>\"}, {\"id\": 258, "
                   "\"content\": \"</s>\"}, {\"id\": 260, \"content\": \"<mask>\", \"lstrip\": true}], "
                   "\"normalizer\": %s, \"pre_tokenizer\": %s, \"post_processor\": %s, \"model\": {\"type\": \"%s\", "
                   "\"dropout\": null, \"continuing_subword_prefix\": \"\", \"vocab\": %s, \"merges\": %s}}",
                   normalizer, pre, post, type, vocab_json, merges);
    return out->data;
}

static void test_tokenizer_json(void)
{
    static const char *PRE = "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": true}";
    static const char *POST = "{\"type\": \"RobertaProcessing\", \"sep\": [\"</s>\", 258], \"cls\": [\"<s>\", 256]}";
    static const char *STRINGS = "[\"h e\", \"\\u0120 t\", \"\\u0120t he\", \"a a\"]";
    static const char *ARRAYS = "[[\"h\", \"e\"], [\"\\u0120\", \"t\"], [\"\\u0120t\", \"he\"], [\"a\", \"a\"]]";
    struct buffer v = {0}, j = {0};
    write_vocab(&v, EXTRA);
    char err[BS_ERR_LEN];
    const char *forms[] = {STRINGS, ARRAYS};
    for (int f = 0; f < 2; f++) {
        const char *dir = make_model(f ? "json-arrays" : "json-strings", NULL, NULL, NULL);
        write_file(dir, "tokenizer.json", tokenizer_json(&j, v.data, forms[f], "null", PRE, "BPE", POST));
        bpe_tokenizer *t = bpe_load(dir, err);
        CHECK(t != NULL, "tokenizer.json (%s merges): %s", f ? "array" : "string", err);
        if (!t)
            continue;
        encoding e = {0};
        expect_tokens(t, &e, "the the aaa x <mask>", NULL, 0, TRUNCATE_RIGHT, "<s> t he Ġthe Ġ aa a Ġ x <mask> </s>");
        encoding_free(&e);
        bpe_free(t);
    }
    struct {
        const char *name, *merges, *normalizer, *pre, *type, *post, *needle;
    } bad[] = {
        {"json-normalizer", ARRAYS, "{\"type\": \"NFC\"}", PRE, "BPE", POST, "\"normalizer\" is not supported"},
        {"json-pre", ARRAYS, "null", "{\"type\": \"Whitespace\"}", "BPE", POST, "\"pre_tokenizer\" must be ByteLevel"},
        {"json-prefix", ARRAYS, "null", "{\"type\": \"ByteLevel\", \"add_prefix_space\": true}", "BPE", POST,
         "without add_prefix_space"},
        {"json-model", ARRAYS, "null", PRE, "WordPiece", POST, "\"model\" must be a plain BPE"},
        {"json-merge", "[[\"h\", \"e\"], [\"a\"]]", "null", PRE, "BPE", POST, "merge 1: neither"},
        {"json-merge-oov", "[\"h e\", \"q z\"]", "null", PRE, "BPE", POST, "merge 1: \"qz\" is not in the vocabulary"},
        {"json-post", ARRAYS, "null", PRE, "BPE", "{\"type\": \"TemplateProcessing\"}", "must be RobertaProcessing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *dir = make_model(bad[i].name, NULL, NULL, NULL);
        write_file(dir, "tokenizer.json",
                   tokenizer_json(&j, v.data, bad[i].merges, bad[i].normalizer, bad[i].pre, bad[i].type, bad[i].post));
        expect_load_error(bad[i].name, NULL, NULL, NULL, "tokenizer.json", bad[i].needle);
    }
    buffer_free(&j);
    buffer_free(&v);
}

int main(void)
{
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    test_pieces();
    char err[BS_ERR_LEN];
    bpe_tokenizer *t = bpe_load(shared_path("models/roberta-tiny"), err);
    CHECK(t != NULL, "%s", err);
    if (t) {
        test_roberta(t);
        test_reuse(t);
    }
    bpe_free(t);
    test_small_vocabulary();
    test_tokenizer_json();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", tmp_root);
    return test_finish("test_tokenizer_bpe");
}
