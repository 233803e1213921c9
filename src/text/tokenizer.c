#include "text/tokenizer.h"

#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/fileio.h"
#include "text/mark_run.h"
#include "text/normalizer.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* HF's WordPiece max_input_chars_per_word: longer words become one [UNK]. */
#define WORD_MAX_CHARS 100

/* BERT's special tokens. Their literals default to BERT's and may be renamed by
 * tokenizer_config.json; each found in the vocabulary is also matched in the raw text. */
enum special_slot { SPECIAL_PAD, SPECIAL_UNK, SPECIAL_CLS, SPECIAL_SEP, SPECIAL_MASK, SPECIAL_COUNT };

static const char *const special_config_keys[SPECIAL_COUNT] = {
    [SPECIAL_PAD] = "pad_token", [SPECIAL_UNK] = "unk_token", [SPECIAL_CLS] = "cls_token",
    [SPECIAL_SEP] = "sep_token", [SPECIAL_MASK] = "mask_token",
};

struct special {
    char text[32];
    size_t len;
    int id;
};

struct tokenizer {
    vocab *vocab;
    bool lowercase;
    int special_id[SPECIAL_COUNT]; /* -1 for [PAD] or [MASK] missing from the vocabulary */
    struct special specials[SPECIAL_COUNT]; /* literals matched in the raw text */
    int n_specials;
};

/* ---- loading ---------------------------------------------------------------------- */

/* Reads a string field of tokenizer_config.json into out; keeps the default if absent. */
static int config_token(const cJSON *cfg, const char *key, char out[32], const char *path, char *err)
{
    const cJSON *item = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    if (!item || cJSON_IsNull(item))
        return 0;
    /* transformers also writes special tokens as {"content": "[UNK]", ...} objects */
    if (cJSON_IsObject(item))
        item = cJSON_GetObjectItemCaseSensitive(item, "content");
    if (!cJSON_IsString(item) || strlen(item->valuestring) == 0 || strlen(item->valuestring) >= 32)
        return bs_fail(err, "%s: \"%s\" must be a non-empty string of at most 31 bytes", path, key);
    strcpy(out, item->valuestring);
    return 0;
}

static int read_tokenizer_config(tokenizer *t, const char *model_dir, char names[SPECIAL_COUNT][32],
                                 char *err)
{
    char path[BS_PATH_LEN];
    if (path_join(path, model_dir, "tokenizer_config.json", err))
        return -1;
    /* Optional: BERT's defaults apply when it is missing, and only then. A file that is there
     * but cannot be read fails the load: a cased model must not silently become uncased. */
    struct stat sb;
    if (lstat(path, &sb) && errno == ENOENT) /* a dangling link is there, and fails below */
        return 0;
    size_t len;
    char *text = read_whole_file(path, CONFIG_MAX_BYTES, &len, err);
    if (!text)
        return -1;
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    free(text);
    int rc = -1;
    if (!cJSON_IsObject(cfg)) {
        bs_fail(err, "%s: not a JSON object", path);
        goto out;
    }
    const cJSON *lower = cJSON_GetObjectItemCaseSensitive(cfg, "do_lower_case");
    if (lower && !cJSON_IsBool(lower)) {
        bs_fail(err, "%s: \"do_lower_case\" must be true or false", path);
        goto out;
    }
    t->lowercase = !lower || cJSON_IsTrue(lower);
    /* HF strips accents exactly when it lower-cases unless strip_accents says otherwise;
     * the other combinations are refused rather than tokenized differently from HF. */
    const cJSON *strip = cJSON_GetObjectItemCaseSensitive(cfg, "strip_accents");
    if (strip && !cJSON_IsNull(strip) && (!cJSON_IsBool(strip) || cJSON_IsTrue(strip) != t->lowercase)) {
        bs_fail(err, "%s: \"strip_accents\" must be null or equal to do_lower_case (%s): other "
                     "combinations are not supported", path, t->lowercase ? "true" : "false");
        goto out;
    }
    const cJSON *chinese = cJSON_GetObjectItemCaseSensitive(cfg, "tokenize_chinese_chars");
    if (chinese && !cJSON_IsTrue(chinese)) {
        bs_fail(err, "%s: \"tokenize_chinese_chars\" must be true: false is not supported", path);
        goto out;
    }
    for (int slot = 0; slot < SPECIAL_COUNT; slot++)
        if (config_token(cfg, special_config_keys[slot], names[slot], path, err))
            goto out;
    rc = 0;
out:
    cJSON_Delete(cfg);
    return rc;
}

tokenizer *tokenizer_load(const char *model_dir, char *err)
{
    tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return bs_fail(err, "out of memory"), NULL;
    t->lowercase = true;
    char names[SPECIAL_COUNT][32] = {
        [SPECIAL_PAD] = "[PAD]", [SPECIAL_UNK] = "[UNK]", [SPECIAL_CLS] = "[CLS]",
        [SPECIAL_SEP] = "[SEP]", [SPECIAL_MASK] = "[MASK]",
    };
    char path[BS_PATH_LEN];
    if (read_tokenizer_config(t, model_dir, names, err) || path_join(path, model_dir, "vocab.txt", err))
        goto fail;
    t->vocab = vocab_load(path, err);
    if (!t->vocab)
        goto fail;
    for (int slot = 0; slot < SPECIAL_COUNT; slot++) {
        int id = vocab_find(t->vocab, false, names[slot], strlen(names[slot]));
        t->special_id[slot] = id;
        bool required = slot == SPECIAL_UNK || slot == SPECIAL_CLS || slot == SPECIAL_SEP;
        if (id < 0 && required) {
            bs_fail(err, "%s: the special token %s is not in the vocabulary", path, names[slot]);
            goto fail;
        }
        if (id < 0)
            continue;
        struct special *s = &t->specials[t->n_specials++];
        strcpy(s->text, names[slot]);
        s->len = strlen(names[slot]);
        s->id = id;
    }
    return t;
fail:
    tokenizer_free(t);
    return NULL;
}

void tokenizer_free(tokenizer *t)
{
    if (!t)
        return;
    vocab_free(t->vocab);
    free(t);
}

const vocab *tokenizer_vocab(const tokenizer *t) { return t->vocab; }
bool tokenizer_lowercases(const tokenizer *t) { return t->lowercase; }

int tokenizer_unk_id(const tokenizer *t) { return t->special_id[SPECIAL_UNK]; }

/* ---- encoding --------------------------------------------------------------------- */

static int list_push(struct int_list *l, int32_t x)
{
    if ((size_t)l->n == l->cap && grow_array(&l->v, &l->cap, (size_t)l->n + 1, sizeof *l->v))
        return -1;
    l->v[l->n++] = x;
    return 0;
}

static int span_push(struct span_list *l, int32_t start, int32_t end, bool special)
{
    if ((size_t)l->n == l->cap && grow_array(&l->v, &l->cap, (size_t)l->n + 1, sizeof *l->v))
        return -1;
    l->v[l->n++] = (struct token_span){.start = start, .end = end, .special = special};
    return 0;
}

/* A segment's tokens being encoded: the ids and, beside each, where it came from. */
struct segment {
    struct int_list *ids;
    struct span_list *spans;
};

static int segment_push(struct segment *seg, int32_t id, int32_t start, int32_t end)
{
    return list_push(seg->ids, id) || span_push(seg->spans, start, end, false) ? -1 : 0;
}

int packed_tokens_append(struct packed_tokens *p, const encoding *e)
{
    size_t need = (size_t)p->n + (size_t)e->n;
    if (grow_array(&p->ids, &p->cap_ids, need, sizeof *p->ids) ||
        grow_array(&p->type_ids, &p->cap_type_ids, need, sizeof *p->type_ids))
        return -1;
    memcpy(p->ids + p->n, e->ids, (size_t)e->n * sizeof *e->ids);
    memcpy(p->type_ids + p->n, e->type_ids, (size_t)e->n * sizeof *e->type_ids);
    p->n += e->n;
    return 0;
}

void packed_tokens_free(struct packed_tokens *p)
{
    free(p->ids);
    free(p->type_ids);
    memset(p, 0, sizeof *p);
}

void encoding_free(encoding *e)
{
    free(e->out_ids.v);
    free(e->out_types.v);
    free(e->seg_a.v);
    free(e->seg_b.v);
    free(e->out_spans.v);
    free(e->seg_a_spans.v);
    free(e->seg_b_spans.v);
    free(e->scratch.v);
    memset(e, 0, sizeof *e);
}

/* One pre-tokenized word being collected. Only the first WORD_MAX_CHARS + 1 characters are
 * kept: a longer word is [UNK] whatever it holds. Each normalised character remembers the
 * bytes of the original character it came from (all the characters one original character
 * becomes share its bytes, as in HF's alignments), so a piece maps back to the text. */
struct word {
    int32_t cps[WORD_MAX_CHARS + 1];
    int32_t from[WORD_MAX_CHARS + 1], to[WORD_MAX_CHARS + 1]; /* each character's bytes */
    int n_chars;        /* may exceed what cps holds */
    int32_t start, end; /* the bytes of the whole word (for one too long to hold) */
};

/* Adds the n characters one original character [from, to) normalised to. */
static void word_add(struct word *w, const int32_t *cps, int n, int32_t from, int32_t to)
{
    if (w->n_chars == 0)
        w->start = from;
    w->end = to;
    for (int i = 0; i < n; i++, w->n_chars++)
        if (w->n_chars <= WORD_MAX_CHARS) {
            w->cps[w->n_chars] = cps[i];
            w->from[w->n_chars] = from;
            w->to[w->n_chars] = to;
        }
}

/* Greedy longest-match-first WordPiece of one word; appends its ids and spans to out. */
static int wordpiece_encode(const tokenizer *t, struct word *w, struct segment *out)
{
    if (w->n_chars == 0)
        return 0;
    int n = w->n_chars;
    w->n_chars = 0;
    if (n > WORD_MAX_CHARS)
        return segment_push(out, t->special_id[SPECIAL_UNK], w->start, w->end);

    bert_canonical_order(w->cps, n);
    char bytes[WORD_MAX_CHARS * 4];
    int offset[WORD_MAX_CHARS + 1]; /* byte offset of each character */
    offset[0] = 0;
    for (int i = 0; i < n; i++)
        offset[i + 1] = offset[i] + utf8_encode(w->cps[i], bytes + offset[i]);

    size_t max_bytes = vocab_max_token_bytes(t->vocab);
    int first = out->ids->n;
    for (int start = 0; start < n;) {
        int id = -1, end = n;
        for (; end > start; end--) {
            size_t len = (size_t)(offset[end] - offset[start]);
            if (len + (start > 0 ? 2 : 0) > max_bytes)
                continue;
            id = vocab_find(t->vocab, start > 0, bytes + offset[start], len);
            if (id >= 0)
                break;
        }
        if (id < 0) { /* some position has no piece: the whole word is unknown */
            out->ids->n = out->spans->n = first;
            return segment_push(out, t->special_id[SPECIAL_UNK], w->from[0], w->to[n - 1]);
        }
        /* Canonical ordering moved marks but not their bytes (see mark_run.h): a piece covers
         * from its first position's bytes to its last's. */
        if (segment_push(out, id, w->from[start], w->to[end - 1]))
            return -1;
        start = end;
    }
    return 0;
}

/* Hands character cp [from, to) to the mark run, which may rewrite the bytes of marks already
 * in the word. Its kept pieces land in the word at w->n_chars on if it is a word character
 * whose pieces match its n_norm outputs; elsewhere a kept mark's position is not known. */
static void feed_marks(struct mark_run *run, struct word *w, int32_t cp, enum cp_class cls, int n_norm,
                       int32_t from, int32_t to)
{
    struct nfd_piece pieces[NORM_MAX_CPS];
    int n = bert_nfd_pieces(cp, pieces), kept = 0;
    for (int k = 0; k < n; k++)
        kept += pieces[k].kept;
    int pos = cls == CP_WORD && kept == n_norm ? w->n_chars : -1;
    mark_run_feed(run, pieces, n, from, to, pos, w->from, w->to, WORD_MAX_CHARS);
}

/* Normalizes, pre-tokenizes and WordPiece-encodes s[begin..n), which holds no special
 * literal; spans count from s. */
static int encode_plain(const tokenizer *t, const char *s, size_t begin, size_t n, struct segment *out)
{
    struct word w = {.n_chars = 0};
    struct mark_run run = {.n = 0};
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = begin; i < n;) {
        int32_t cp, norm[NORM_MAX_CPS];
        int len = utf8_decode(p + i, n - i, &cp), n_norm;
        int32_t from = (int32_t)i, to = (int32_t)(i + (size_t)len);
        i += (size_t)len; /* the whole text was validated before */
        enum cp_class cls = bert_normalize_cp(cp, t->lowercase, norm, &n_norm);
        if (t->lowercase) /* NFD only when lower-casing: only then can marks move */
            feed_marks(&run, &w, cp, cls, n_norm, from, to);
        switch (cls) {
        case CP_DROP:
            break;
        case CP_WORD:
            word_add(&w, norm, n_norm, from, to);
            break;
        case CP_SPACE:
            if (wordpiece_encode(t, &w, out))
                return -1;
            break;
        case CP_CJK: /* a word of its own */
            if (wordpiece_encode(t, &w, out))
                return -1;
            word_add(&w, norm, n_norm, from, to);
            if (wordpiece_encode(t, &w, out))
                return -1;
            break;
        case CP_PUNCT: /* each punctuation character is a word of its own */
            for (int k = 0; k < n_norm; k++) {
                if (wordpiece_encode(t, &w, out))
                    return -1;
                word_add(&w, norm + k, 1, from, to);
            }
            if (wordpiece_encode(t, &w, out))
                return -1;
            break;
        }
    }
    mark_run_end(&run, w.from, w.to, WORD_MAX_CHARS);
    return wordpiece_encode(t, &w, out);
}

/* Splits s at the special-token literals (leftmost, longest first, case-sensitive, in the
 * raw text as HF's added tokens are), encoding the pieces between them. */
static int encode_sequence(const tokenizer *t, const char *s, size_t n, struct int_list *ids,
                           struct span_list *spans)
{
    struct segment seg = {.ids = ids, .spans = spans};
    struct segment *out = &seg;
    size_t plain_start = 0;
    for (size_t i = 0; i < n; i++) {
        const struct special *match = NULL;
        for (int k = 0; k < t->n_specials; k++) {
            const struct special *sp = &t->specials[k];
            if (sp->len <= n - i && memcmp(s + i, sp->text, sp->len) == 0 &&
                (!match || sp->len > match->len))
                match = sp;
        }
        if (!match)
            continue;
        if (encode_plain(t, s, plain_start, i, out) ||
            segment_push(out, match->id, (int32_t)i, (int32_t)(i + match->len)))
            return -1;
        i += match->len - 1;
        plain_start = i + 1;
    }
    return encode_plain(t, s, plain_start, n, out);
}

/* HF's longest_first for a pair (tokenizers 0.23), budget = max_len minus the special
 * tokens. HF compares the lengths capped at the budget (the golden rows show it: two long
 * sequences count as equal), then: if the shorter fits in what the longer leaves, only the
 * longer is cut; otherwise each gets half, the odd token going to the longer (the second
 * on a tie). */
static void truncate_pair(int *na, int *nb, int budget)
{
    int la = *na < budget ? *na : budget, lb = *nb < budget ? *nb : budget;
    bool b_longer = lb >= la;
    int n1 = b_longer ? la : lb; /* the shorter */
    int n2 = n1 > budget ? n1 : (n1 > budget - n1 ? n1 : budget - n1);
    if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = n1 + budget % 2;
    }
    int keep_a = b_longer ? n1 : n2, keep_b = b_longer ? n2 : n1;
    if (keep_a < *na) *na = keep_a;
    if (keep_b < *nb) *nb = keep_b;
}

/* Appends one token to e's output. */
static int emit(encoding *e, int32_t id, int32_t type, struct token_span span)
{
    if (list_push(&e->out_ids, id) || list_push(&e->out_types, type))
        return -1;
    return span_push(&e->out_spans, span.start, span.end, span.special);
}

/* Appends a token the template adds: no place in the text. */
static int emit_special(encoding *e, int32_t id, int32_t type)
{
    return emit(e, id, type, (struct token_span){.start = 0, .end = 0, .special = true});
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t len, const char *pair,
                     size_t pair_len, int max_len, encoding *e, char *err)
{
    return tokenizer_encode_truncating(t, text, len, pair, pair_len, max_len, TRUNCATE_RIGHT, e, err);
}

int tokenizer_encode_truncating(const tokenizer *t, const char *text, size_t len, const char *pair,
                                size_t pair_len, int max_len, enum truncation_side side, encoding *e,
                                char *err)
{
    e->n = e->n_untruncated = e->pair_start = 0;
    e->truncated = false;
    e->seg_a.n = e->seg_b.n = e->out_ids.n = e->out_types.n = 0;
    e->seg_a_spans.n = e->seg_b_spans.n = e->out_spans.n = 0;
    int n_special = pair ? 3 : 2;
    if (max_len > 0 && max_len < n_special)
        return bs_fail(err, "max length %d is too small: the special tokens alone need %d",
                       max_len, n_special);
    if (len > INT32_MAX || pair_len > INT32_MAX) /* spans count bytes in int32_t */
        return bs_fail(err, "a text over 2 GiB cannot be tokenized");
    size_t bad = utf8_validate(text, len);
    if (bad != len)
        return bs_fail(err, "%s is not valid UTF-8 (at byte offset %zu)", pair ? "the first text" : "the text", bad);
    if (pair && (bad = utf8_validate(pair, pair_len)) != pair_len)
        return bs_fail(err, "the second text is not valid UTF-8 (at byte offset %zu)", bad);

    if (encode_sequence(t, text, len, &e->seg_a, &e->seg_a_spans) ||
        (pair && encode_sequence(t, pair, pair_len, &e->seg_b, &e->seg_b_spans)))
        goto oom;

    int na = e->seg_a.n, nb = e->seg_b.n;
    e->n_untruncated = na + nb + n_special;
    if (max_len > 0 && e->n_untruncated > max_len) {
        e->truncated = true;
        int budget = max_len - n_special;
        if (pair)
            truncate_pair(&na, &nb, budget);
        else
            na = budget;
    }

    /* Truncating on the left keeps each segment's last tokens instead of its first (the
     * lengths kept are the same). */
    int skip_a = side == TRUNCATE_LEFT ? e->seg_a.n - na : 0, skip_b = side == TRUNCATE_LEFT ? e->seg_b.n - nb : 0;
    int cls = t->special_id[SPECIAL_CLS], sep = t->special_id[SPECIAL_SEP];
    bool ok = emit_special(e, cls, 0) == 0;
    for (int i = 0; ok && i < na; i++)
        ok = emit(e, e->seg_a.v[skip_a + i], 0, e->seg_a_spans.v[skip_a + i]) == 0;
    ok = ok && emit_special(e, sep, 0) == 0;
    e->pair_start = e->out_ids.n;
    if (pair) {
        for (int i = 0; ok && i < nb; i++)
            ok = emit(e, e->seg_b.v[skip_b + i], 1, e->seg_b_spans.v[skip_b + i]) == 0;
        ok = ok && emit_special(e, sep, 1) == 0;
    }
    if (!ok)
        goto oom;
    e->ids = e->out_ids.v;
    e->type_ids = e->out_types.v;
    e->spans = e->out_spans.v;
    e->n = e->out_ids.n;
    return 0;
oom:
    e->n = 0;
    return bs_fail(err, "out of memory while tokenizing");
}
