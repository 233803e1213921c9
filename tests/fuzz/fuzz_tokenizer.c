/* Fuzz target: the WordPiece tokenizer on arbitrary bytes, single texts and pairs, with and
 * without truncation, lower-casing and cased. Input layout:
 *   byte 0   bit 0: a sentence pair (the text splits at its first NUL byte), bit 1: cased
 *   byte 1   max_len: 0 none, 255 means 512, else that many tokens (1 and 2 are too small)
 *   rest     the text (any bytes: invalid UTF-8 must be an error, never a crash)
 * Beyond memory safety it checks the encoding's invariants: [CLS] ... [SEP] framing, ids in
 * the vocabulary, type ids, the length limit, truncation keeping a prefix of the untruncated
 * tokens, and that an error happens exactly when the input is invalid.
 * The vocabulary is tiny-bert's (bert-base-uncased) from $BERTSERVE_SHARED. */
#include "common/bs_error.h"
#include "fuzz_target.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tokenizer *uncased, *cased;

/* A copy of the model's vocabulary with "do_lower_case": false, in a temporary directory
 * removed once loaded. */
static tokenizer *load_cased(const char *model_dir, char *err)
{
    const char *tmp = getenv("TMPDIR");
    char dir[4096], vocab[4096 + 16], conf[4096 + 32], src[4096 + 16];
    snprintf(dir, sizeof dir, "%s/fuzz-cased-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return bs_fail(err, "mkdtemp %s failed", dir), NULL;
    snprintf(src, sizeof src, "%s/vocab.txt", model_dir);
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", dir);
    snprintf(conf, sizeof conf, "%s/tokenizer_config.json", dir);
    tokenizer *t = NULL;
    FILE *f = fopen(conf, "w");
    if (f && fputs("{\"do_lower_case\": false}\n", f) >= 0 && fclose(f) == 0 && symlink(src, vocab) == 0)
        t = tokenizer_load(dir, err);
    else
        bs_fail(err, "cannot write %s", conf);
    unlink(vocab);
    unlink(conf);
    rmdir(dir);
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char model[4096], err[BS_ERR_LEN];
    fuzz_model_dir("tiny-bert", model);
    uncased = tokenizer_load(model, err);
    cased = uncased ? load_cased(model, err) : NULL;
    if (!cased) {
        fprintf(stderr, "fuzz_tokenizer: cannot load the vocabulary (set BERTSERVE_SHARED): %s\n", err);
        exit(1);
    }
    return 0;
}

/* The type-0 part's length (the first segment with [CLS] and its [SEP]). */
static int first_segment(const encoding *e)
{
    int k = 0;
    while (k < e->n && e->type_ids[k] == 0)
        k++;
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool is_pair = data[0] & 1;
    const tokenizer *t = data[0] & 2 ? cased : uncased;
    int max_len = data[1] == 255 ? 512 : data[1];
    const char *text = (const char *)data + 2, *pair = NULL;
    size_t len = size - 2, pair_len = 0;
    if (is_pair) {
        const char *nul = memchr(text, '\0', len);
        size_t a = nul ? (size_t)(nul - text) : len;
        pair = text + a + (nul != NULL); /* an empty second text when there is no NUL */
        pair_len = len - a - (nul != NULL);
        len = a;
    }
    const vocab *v = tokenizer_vocab(t);
    int cls = vocab_find(v, false, "[CLS]", 5), sep = vocab_find(v, false, "[SEP]", 5);
    int n_special = pair ? 3 : 2;

    char err[BS_ERR_LEN] = "";
    encoding full = {0}, e = {0};
    int rc_full = tokenizer_encode(t, text, len, pair, pair_len, 0, &full, err);
    int rc = tokenizer_encode(t, text, len, pair, pair_len, max_len, &e, err);

    bool valid = utf8_validate(text, len) == len && (!pair || utf8_validate(pair, pair_len) == pair_len);
    FUZZ_ASSERT((rc_full == 0) == valid, "untruncated: rc %d for %s UTF-8 (%s)", rc_full,
                valid ? "valid" : "invalid", err);
    bool limit_ok = max_len == 0 || max_len >= n_special;
    FUZZ_ASSERT((rc == 0) == (valid && limit_ok), "rc %d, valid %d, max_len %d: %s", rc, valid, max_len, err);
    if (rc != 0) {
        FUZZ_ASSERT(err[0] && e.n == 0, "an error has a message and an empty encoding");
        goto out;
    }

    FUZZ_ASSERT(full.n == full.n_untruncated && !full.truncated, "no limit, no truncation");
    FUZZ_ASSERT(e.n_untruncated == full.n, "n_untruncated %d != untruncated n %d", e.n_untruncated, full.n);
    FUZZ_ASSERT(e.n >= n_special && (max_len == 0 || e.n <= max_len), "n %d, max_len %d", e.n, max_len);
    FUZZ_ASSERT(e.truncated == (e.n < full.n), "truncated %d but n %d of %d", e.truncated, e.n, full.n);
    FUZZ_ASSERT(!e.truncated || e.n == max_len, "truncated to %d tokens, not max_len %d", e.n, max_len);
    FUZZ_ASSERT(e.ids[0] == cls && e.ids[e.n - 1] == sep, "framing: %d ... %d", e.ids[0], e.ids[e.n - 1]);
    for (int i = 0; i < e.n; i++) {
        FUZZ_ASSERT(e.ids[i] >= 0 && e.ids[i] < vocab_size(v), "id %d at %d", e.ids[i], i);
        FUZZ_ASSERT(e.type_ids[i] == (pair ? e.type_ids[i] : 0) && (e.type_ids[i] == 0 || e.type_ids[i] == 1),
                    "type id %d at %d", e.type_ids[i], i);
        FUZZ_ASSERT(i == 0 || e.type_ids[i] >= e.type_ids[i - 1], "type ids decrease at %d", i);
        /* Spans: the template's tokens are (0, 0); every other token covers bytes of its own
         * segment's text, starting where a character starts, and tokens never go backwards. */
        const struct token_span *sp = &e.spans[i];
        size_t seg_len = e.type_ids[i] ? pair_len : len;
        const char *seg = e.type_ids[i] ? pair : text;
        bool framing = i == 0 || i == e.n - 1 || (e.ids[i] == sep && e.type_ids[i] == 0 && e.type_ids[i + 1] == 1);
        if (sp->special) {
            FUZZ_ASSERT(framing && sp->start == 0 && sp->end == 0, "special span %d..%d at %d", sp->start, sp->end, i);
        } else {
            FUZZ_ASSERT(!framing && 0 <= sp->start && sp->start < sp->end && (size_t)sp->end <= seg_len &&
                            (seg[sp->start] & 0xC0) != 0x80,
                        "span %d..%d at %d of a %zu-byte text", sp->start, sp->end, i, seg_len);
            FUZZ_ASSERT(e.spans[i - 1].special || e.type_ids[i - 1] != e.type_ids[i] || e.spans[i - 1].start <= sp->start,
                        "spans go backwards at %d", i);
        }
    }
    /* Truncation drops tokens from the end of each segment: what is kept is a prefix. */
    int ka = first_segment(&e), fa = first_segment(&full);
    FUZZ_ASSERT(ka >= 2 && e.ids[ka - 1] == sep && ka <= fa, "first segment %d of %d", ka, fa);
    FUZZ_ASSERT(!memcmp(e.ids, full.ids, (size_t)(ka - 1) * sizeof *e.ids), "first segment is not a prefix");
    if (pair) {
        int kb = e.n - ka, fb = full.n - fa;
        FUZZ_ASSERT(kb >= 1 && kb <= fb, "second segment %d of %d", kb, fb);
        FUZZ_ASSERT(!memcmp(e.ids + ka, full.ids + fa, (size_t)(kb - 1) * sizeof *e.ids),
                    "second segment is not a prefix");
    }

    /* Encoding again into the used buffers gives the same tokens. */
    int n = e.n;
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    FUZZ_ASSERT(copy, "out of memory");
    memcpy(copy, e.ids, (size_t)n * sizeof *copy);
    rc = tokenizer_encode(t, text, len, pair, pair_len, max_len, &e, err);
    FUZZ_ASSERT(rc == 0 && e.n == n && !memcmp(copy, e.ids, (size_t)n * sizeof *copy), "re-encoding differs");
    free(copy);

    struct packed_tokens p = {0};
    FUZZ_ASSERT(packed_tokens_append(&p, &e) == 0 && packed_tokens_append(&p, &full) == 0 && p.n == e.n + full.n,
                "packed tokens");
    packed_tokens_free(&p);
out:
    encoding_free(&e);
    encoding_free(&full);
    return 0;
}
