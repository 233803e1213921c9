/* Fuzz target: the byte-level BPE tokenizer (roberta-tiny's vocab.json + merges.txt from
 * $BERTSERVE_SHARED) on arbitrary bytes, single texts and pairs. Input layout:
 *   byte 0   bit 0: a sentence pair (the text splits at its first NUL byte), bit 1: truncate left
 *   byte 1   max_len: 0 none, 255 means 512, else that many tokens (1 and 3 are too small)
 *   rest     the text (any bytes: invalid UTF-8 must be an error, never a crash)
 * Beyond memory safety it checks: an error exactly when the input is invalid; <s> A </s>
 * (</s> B </s>) framing, its spans (0, 0) and special, pair_start, type ids 0, ids with a token;
 * the length limit; truncation keeping a prefix (right) or suffix (left) of each text's tokens;
 * the spans tiling each text kept, none special, every ordinary token's bytes spelling its
 * vocabulary text; the heap-ordered merges equal to a naive lowest-rank-first BPE (for texts
 * without added-token literals); re-encoding identical; HF's offsets (any_tokenizer_hf_span, what
 * /tokenize and the CLI report) inside the text, near the token's own bytes, on character
 * boundaries. */
#include "common/bs_error.h"
#include "fuzz_target.h"
#include "text/any_tokenizer.h"
#include "text/bpe.h"
#include "text/bpe_model.h"
#include "text/byte_level.h"
#include "text/utf8.h"

#include <stdint.h>
#include <string.h>

static any_tokenizer *any; /* for any_tokenizer_hf_span */
static const bpe_tokenizer *tok; /* its BPE tokenizer */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char model[4096], err[BS_ERR_LEN];
    fuzz_model_dir("roberta-tiny", model);
    any = any_tokenizer_load(model, err);
    tok = any ? any_tokenizer_bpe(any) : NULL;
    if (!tok) {
        fprintf(stderr, "fuzz_tokenizer_bpe: cannot load the tokenizer (set BERTSERVE_SHARED): %s\n", err);
        exit(1);
    }
    return 0;
}

/* The naive BPE of one piece: merge the lowest-ranked adjacent pair (the leftmost on a tie) until
 * none is left; the ids go to out, their count is returned. */
static int naive_bpe(const unsigned char *p, int m, int32_t *out)
{
    for (int i = 0; i < m; i++)
        out[i] = tok->byte_id[p[i]];
    for (;;) {
        int best = -1;
        int32_t best_rank = INT32_MAX, merged = 0, best_merged = 0;
        for (int i = 0; i + 1 < m; i++) {
            int32_t r = bpe_merge_rank(tok, out[i], out[i + 1], &merged);
            if (r >= 0 && r < best_rank) {
                best_rank = r;
                best = i;
                best_merged = merged;
            }
        }
        if (best < 0)
            return m;
        out[best] = best_merged;
        memmove(out + best + 1, out + best + 2, (size_t)(m - best - 2) * sizeof *out);
        m--;
    }
}

/* Tokens [from, to) of a text s of n bytes: contiguous spans, none special, each ordinary token
 * spelling its bytes (`plain`: the text holds no added-token literal), starting at 0 (right
 * truncation keeps the start) or ending at n (left keeps the end). */
static void check_spans(const encoding *e, int from, int to, const unsigned char *s, size_t n, bool left,
                        bool plain)
{
    if (to == from)
        return;
    int32_t pos = left ? e->spans[from].start : 0;
    for (int i = from; i < to; i++) {
        int32_t start = e->spans[i].start, end = e->spans[i].end;
        FUZZ_ASSERT(start == pos && end > start && (size_t)end <= n && !e->spans[i].special,
                    "token %d spans [%d, %d) special %d, expected from %d", i, start, end, e->spans[i].special, pos);
        const char *text = bpe_token(tok, e->ids[i]);
        char buf[4];
        bool spelled = true;
        for (int32_t b = start; b < end && spelled; b++) {
            int len = utf8_encode(byte_level_char(s[b]), buf);
            spelled = strncmp(text, buf, (size_t)len) == 0;
            text += len;
        }
        FUZZ_ASSERT(!plain || (spelled && *text == '\0'), "token %d (%s) does not spell its bytes", i,
                    bpe_token(tok, e->ids[i]));
        pos = end;
    }
    FUZZ_ASSERT(!left || (size_t)pos == n, "left truncation keeps the end: %d of %zu", pos, n);
}

/* The untruncated tokens [from, to) of a plain text against the naive BPE of its pieces. */
static void check_merges(const encoding *full, int from, int to, const unsigned char *s, size_t n)
{
    static int32_t naive[4096];
    int i = from;
    for (size_t at = 0; at < n;) {
        size_t len = byte_level_piece_len((const char *)s + at, n - at);
        if (len > sizeof naive / sizeof naive[0])
            return; /* the naive BPE is quadratic: long pieces are left to the goldens */
        int k = naive_bpe(s + at, (int)len, naive);
        FUZZ_ASSERT(i + k <= to, "piece at %zu: naive BPE has %d tokens, %d left", at, k, to - i);
        for (int j = 0; j < k; j++, i++)
            FUZZ_ASSERT(full->ids[i] == naive[j], "piece at %zu, token %d: %d, naive BPE %d", at, j, full->ids[i],
                        naive[j]);
        at += len;
        FUZZ_ASSERT(i == to || full->spans[i].start == (int32_t)at, "tokens cross the piece end %zu", at);
    }
    FUZZ_ASSERT(i == to, "%d tokens beyond the naive BPE's", to - i);
}

/* HF's offsets of tokens [from, to) of a text s of n bytes: within the text and within 3 bytes of
 * the token's own span (a character is at most 4 bytes), on character boundaries, so that what
 * they cover is valid UTF-8 (/tokenize's "text"). */
static void check_hf_spans(const encoding *e, int from, int to, const char *s, size_t n)
{
    for (int i = from; i < to; i++) {
        struct token_span hf = any_tokenizer_hf_span(any, e, i, s, n), own = e->spans[i];
        FUZZ_ASSERT(hf.start >= 0 && hf.start <= hf.end && (size_t)hf.end <= n && !hf.special,
                    "token %d: HF span [%d, %d) of %zu bytes", i, hf.start, hf.end, n);
        FUZZ_ASSERT(hf.start >= own.start - 3 && hf.end <= own.end + 3 && hf.start <= own.end && hf.end >= own.start,
                    "token %d: HF span [%d, %d) far from its bytes [%d, %d)", i, hf.start, hf.end, own.start, own.end);
        size_t width = (size_t)(hf.end - hf.start);
        FUZZ_ASSERT(utf8_validate(s + hf.start, width) == width, "token %d: HF span [%d, %d) splits a character", i,
                    hf.start, hf.end);
    }
}

/* Whether s holds one of the added tokens' literals (then spans may hold stripped spaces). */
static bool has_literal(const char *s, size_t n)
{
    for (int k = 0; k < tok->n_added; k++)
        for (size_t i = 0; i + tok->added[k].len <= n; i++)
            if (memcmp(s + i, tok->added[k].text, tok->added[k].len) == 0)
                return true;
    return false;
}

/* A token the template added: (0, 0) and special, as WordPiece's [CLS] and [SEP]. */
static bool is_framing(const encoding *e, int i)
{
    return e->spans[i].special && e->spans[i].start == 0 && e->spans[i].end == 0;
}

static bool same_ids(const encoding *a, int fa, int ta, const encoding *b, int fb, int tb)
{
    return ta - fa == tb - fb && memcmp(a->ids + fa, b->ids + fb, (size_t)(ta - fa) * sizeof *a->ids) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool is_pair = data[0] & 1, left = data[0] & 2;
    int max_len = data[1] == 255 ? 512 : data[1];
    const char *text = (const char *)data + 2, *pair = NULL;
    size_t len = size - 2, pair_len = 0;
    if (is_pair) {
        const char *nul = memchr(text, '\0', len);
        size_t a = nul ? (size_t)(nul - text) : len;
        pair = text + a + (nul != NULL);
        pair_len = len - a - (nul != NULL);
        len = a;
    }
    int n_special = pair ? 4 : 2, cls = bpe_cls_id(tok), sep = bpe_sep_id(tok);
    enum truncation_side side = left ? TRUNCATE_LEFT : TRUNCATE_RIGHT;
    char err[BS_ERR_LEN] = "";
    encoding full = {0}, e = {0};
    int rc_full = bpe_encode(tok, text, len, pair, pair_len, 0, TRUNCATE_RIGHT, &full, err);
    int rc = bpe_encode(tok, text, len, pair, pair_len, max_len, side, &e, err);

    bool valid = utf8_validate(text, len) == len && (!pair || utf8_validate(pair, pair_len) == pair_len);
    FUZZ_ASSERT((rc_full == 0) == valid, "untruncated: rc %d for %s UTF-8 (%s)", rc_full, valid ? "valid" : "invalid",
                err);
    FUZZ_ASSERT((rc == 0) == (valid && (max_len == 0 || max_len >= n_special)), "rc %d, valid %d, max_len %d: %s", rc,
                valid, max_len, err);
    if (rc != 0) {
        FUZZ_ASSERT(err[0] && e.n == 0, "an error has a message and an empty encoding");
        goto out;
    }
    FUZZ_ASSERT(full.n == full.n_untruncated && !full.truncated, "no limit, no truncation");
    FUZZ_ASSERT(e.n_untruncated == full.n, "n_untruncated %d != untruncated n %d", e.n_untruncated, full.n);
    FUZZ_ASSERT(e.n >= n_special && (max_len == 0 || e.n <= max_len), "n %d, max_len %d", e.n, max_len);
    FUZZ_ASSERT(e.truncated == (e.n < full.n) && (!e.truncated || e.n == max_len), "truncated %d: n %d of %d",
                e.truncated, e.n, full.n);
    for (int i = 0; i < e.n; i++)
        FUZZ_ASSERT(e.type_ids[i] == 0 && bpe_token(tok, e.ids[i]), "token %d: id %d type %d", i, e.ids[i],
                    e.type_ids[i]);
    /* <s> A </s> or <s> A </s></s> B </s>; pair_start is B's first token */
    int end_a = pair ? e.pair_start - 2 : e.n - 1, full_end_a = pair ? full.pair_start - 2 : full.n - 1;
    FUZZ_ASSERT(e.ids[0] == cls && e.ids[e.n - 1] == sep && e.ids[end_a] == sep && end_a >= 1, "framing");
    FUZZ_ASSERT(!pair || (e.ids[end_a + 1] == sep && e.pair_start <= e.n - 1), "pair framing");
    FUZZ_ASSERT(is_framing(&e, 0) && is_framing(&e, end_a) && is_framing(&e, e.n - 1) &&
                    (!pair || is_framing(&e, end_a + 1)) && (pair || e.pair_start == e.n),
                "the framing tokens' spans are not (0, 0) and special, or pair_start %d of %d", e.pair_start, e.n);
    /* what truncation keeps of each text is a prefix (right) or a suffix (left) of its tokens */
    int ka = end_a - 1, fa = full_end_a - 1;
    FUZZ_ASSERT(ka <= fa && same_ids(&e, 1, end_a, &full, left ? full_end_a - ka : 1, left ? full_end_a : 1 + ka),
                "the first text's tokens are not a %s of its untruncated ones", left ? "suffix" : "prefix");
    bool plain_a = !has_literal(text, len), plain_b = pair && !has_literal(pair, pair_len);
    check_spans(&e, 1, end_a, (const unsigned char *)text, len, left, plain_a);
    check_hf_spans(&e, 1, end_a, text, len);
    if (plain_a)
        check_merges(&full, 1, full_end_a, (const unsigned char *)text, len);
    if (pair) {
        int kb = e.n - 1 - e.pair_start, fb = full.n - 1 - full.pair_start;
        int fb_from = left ? full.n - 1 - kb : full.pair_start;
        FUZZ_ASSERT(kb <= fb && same_ids(&e, e.pair_start, e.n - 1, &full, fb_from, fb_from + kb),
                    "the second text's tokens are not a %s of its untruncated ones", left ? "suffix" : "prefix");
        check_spans(&e, e.pair_start, e.n - 1, (const unsigned char *)pair, pair_len, left, plain_b);
        check_hf_spans(&e, e.pair_start, e.n - 1, pair, pair_len);
        if (plain_b)
            check_merges(&full, full.pair_start, full.n - 1, (const unsigned char *)pair, pair_len);
    }
    /* encoding again into the used buffers gives the same tokens */
    int n = e.n;
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    FUZZ_ASSERT(copy, "out of memory");
    memcpy(copy, e.ids, (size_t)n * sizeof *copy);
    rc = bpe_encode(tok, text, len, pair, pair_len, max_len, side, &e, err);
    FUZZ_ASSERT(rc == 0 && e.n == n && !memcmp(copy, e.ids, (size_t)n * sizeof *copy), "re-encoding differs");
    free(copy);
out:
    encoding_free(&e);
    encoding_free(&full);
    return 0;
}
