/* Byte-level BPE encoding (text/bpe.h): added tokens, pieces, merges, framing, truncation. */
#include "text/bpe.h"
#include "text/bpe_model.h"

#include "common/bs_error.h"
#include "common/buffer.h"
#include "text/byte_level.h"
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Where one text's tokens go: ids, their byte spans, and the count at the first piece boundary
 * at which the text reached `limit` tokens (see truncate_pair). */
struct seq_out {
    struct int_list *ids, *scratch;
    struct span_list *spans;
    int limit;       /* max_len, 0 for none */
    int early_count; /* -1 until reached */
};

static int list_push(struct int_list *l, int32_t x)
{
    if ((size_t)l->n == l->cap && grow_array(&l->v, &l->cap, (size_t)l->n + 1, sizeof *l->v))
        return -1;
    l->v[l->n++] = x;
    return 0;
}

static int span_push(struct span_list *l, struct token_span span)
{
    if ((size_t)l->n == l->cap && grow_array(&l->v, &l->cap, (size_t)l->n + 1, sizeof *l->v))
        return -1;
    l->v[l->n++] = span;
    return 0;
}

/* A token of the text (never special, as in WordPiece: an added token's literal found in the
 * text is not marked special either). */
static int push_token(struct seq_out *out, int32_t id, size_t start, size_t end)
{
    return list_push(out->ids, id) ||
           span_push(out->spans, (struct token_span){.start = (int32_t)start, .end = (int32_t)end, .special = false});
}

/* HF tokenizes a text of a truncated pair only until it holds max_len tokens, at a piece
 * boundary (tokenizers 0.23's tokenize_with_limit); remember where that was. */
static void piece_done(struct seq_out *out)
{
    if (out->limit > 0 && out->early_count < 0 && out->ids->n >= out->limit)
        out->early_count = out->ids->n;
}

/* ---- BPE of one piece --------------------------------------------------------------- */

/* A candidate merge of the symbols at pos and after it; the lowest rank goes first, then the
 * leftmost, as in HF's Word::merge_all. A candidate whose symbols changed since is skipped: a rank
 * names one pair, so it is current exactly when the pair at pos still has that rank. Two ints,
 * not the pair's ids too: a piece of m bytes needs up to 3m candidates, and a 2 MB one-word text
 * took 144 MB of scratch with five. */
struct candidate {
    int32_t rank, pos;
};

static bool cand_before(const struct candidate *a, const struct candidate *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(struct candidate *heap, int *n, struct candidate c)
{
    int i = (*n)++;
    while (i > 0 && cand_before(&c, &heap[(i - 1) / 2])) {
        heap[i] = heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    heap[i] = c;
}

static struct candidate heap_pop(struct candidate *heap, int *n)
{
    struct candidate top = heap[0], last = heap[--*n];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= *n)
            break;
        if (child + 1 < *n && cand_before(&heap[child + 1], &heap[child]))
            child++;
        if (!cand_before(&heap[child], &last))
            break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n > 0)
        heap[i] = last;
    return top;
}

/* Symbols of a piece of m bytes: one per byte at first; a merge keeps the left position, so the
 * symbol at pos spans bytes [pos, next[pos]) (m for the last). */
struct symbols {
    int32_t *id, *next, *prev;
    struct candidate *heap;
    int n_heap;
};

static void push_candidate(const bpe_tokenizer *t, struct symbols *s, int32_t pos, int m)
{
    int32_t right = s->next[pos], merged;
    if (pos < 0 || right >= m)
        return;
    int32_t rank = bpe_merge_rank(t, s->id[pos], s->id[right], &merged);
    if (rank >= 0)
        heap_push(s->heap, &s->n_heap, (struct candidate){.rank = rank, .pos = pos});
}

static void merge_all(const bpe_tokenizer *t, struct symbols *s, int m)
{
    for (int32_t i = 0; i + 1 < m; i++)
        push_candidate(t, s, i, m);
    while (s->n_heap > 0) {
        struct candidate c = heap_pop(s->heap, &s->n_heap);
        int32_t right = s->next[c.pos], merged = -1;
        if (s->id[c.pos] < 0 || right >= m || bpe_merge_rank(t, s->id[c.pos], s->id[right], &merged) != c.rank)
            continue; /* stale: one of its symbols was merged away since */
        s->id[c.pos] = merged;
        s->id[right] = -1; /* dead */
        s->next[c.pos] = s->next[right];
        if (s->next[c.pos] < m)
            s->prev[s->next[c.pos]] = c.pos;
        push_candidate(t, s, s->prev[c.pos], m);
        push_candidate(t, s, c.pos, m);
    }
}

static uint32_t word_hash(const unsigned char *p, int m)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < m; i++)
        h = (h ^ p[i]) * 16777619u;
    return h | 1; /* never 0, the empty slot's */
}

/* The id of the token whose bytes are p[0..m) if BPE makes it of them, else -1. */
static int32_t whole_word(const bpe_tokenizer *t, const unsigned char *p, int m)
{
    if (!t->whole_words)
        return -1;
    uint32_t h = word_hash(p, m);
    for (size_t i = h & t->word_mask;; i = (i + 1) & t->word_mask) {
        const struct bpe_word *w = &t->whole_words[i];
        if (w->id < 0)
            return -1;
        if (w->hash == h && w->len == (uint32_t)m && memcmp(t->word_bytes + w->start, p, (size_t)m) == 0)
            return w->id;
    }
}

/* Encodes the piece text[start, start + m). */
static int encode_piece(const bpe_tokenizer *t, const char *text, size_t start, int m, struct seq_out *out)
{
    const unsigned char *p = (const unsigned char *)text + start;
    if (m == 1) /* a lone byte: most punctuation */
        return push_token(out, t->byte_id[p[0]], start, start + 1);
    int32_t id = whole_word(t, p, m);
    if (id >= 0)
        return push_token(out, id, start, start + (size_t)m);
    /* at most m - 1 merges, each adding at most 2 candidates to the m - 1 first ones */
    size_t ints = (size_t)m * 3 + (size_t)m * 3 * (sizeof(struct candidate) / sizeof(int32_t));
    if (grow_array(&out->scratch->v, &out->scratch->cap, ints, sizeof(int32_t)))
        return -1;
    struct symbols s = {.id = out->scratch->v, .next = out->scratch->v + m, .prev = out->scratch->v + 2 * m,
                        .heap = (struct candidate *)(out->scratch->v + 3 * m)};
    for (int i = 0; i < m; i++) {
        s.id[i] = t->byte_id[p[i]];
        s.next[i] = i + 1;
        s.prev[i] = i - 1;
    }
    merge_all(t, &s, m);
    for (int32_t i = 0; i < m; i = s.next[i])
        if (push_token(out, s.id[i], start + (size_t)i, start + (size_t)s.next[i]))
            return -1;
    return 0;
}

/* ---- the whole-word index ----------------------------------------------------------- */

/* The token's bytes into out (room for strlen(text) bytes): each character of its text must be
 * one of the 256 byte symbols. Their number, or -1 if one is not. */
static int token_bytes(const char *text, unsigned char *out)
{
    int n = 0;
    for (size_t i = 0, len = strlen(text); i < len;) {
        int32_t cp;
        int k = utf8_decode((const unsigned char *)text + i, len - i, &cp), b = k ? byte_level_byte(cp) : -1;
        if (b < 0)
            return -1;
        out[n++] = (unsigned char)b;
        i += (size_t)k;
    }
    return n;
}

/* Whether BPE turns bytes p[0..m) into the one token id. */
static bool merges_to_itself(const bpe_tokenizer *t, const unsigned char *p, int m, int32_t id, encoding *e)
{
    struct seq_out out = {.ids = &e->seg_a, .spans = &e->seg_a_spans, .scratch = &e->scratch, .early_count = -1};
    e->seg_a.n = e->seg_a_spans.n = 0;
    return encode_piece(t, (const char *)p, 0, m, &out) == 0 && e->seg_a.n == 1 && e->seg_a.v[0] == id;
}

static void word_insert(struct bpe_word *words, size_t mask, const unsigned char *p, int m, int32_t id,
                        uint32_t start)
{
    uint32_t h = word_hash(p, m);
    size_t i = h & mask;
    while (words[i].id >= 0)
        i = (i + 1) & mask;
    words[i] = (struct bpe_word){.hash = h, .id = id, .start = start, .len = (uint32_t)m};
}

int bpe_index_whole_words(bpe_tokenizer *t)
{
    size_t slots = 16, text_bytes = 0;
    int count = 0;
    for (int32_t id = 0; id < t->n_ids; id++)
        if (t->token_start[id] >= 0) {
            count++;
            text_bytes += strlen(t->token_text + t->token_start[id]);
        }
    while (slots < (size_t)count * 2)
        slots *= 2;
    t->word_mask = slots - 1;
    struct bpe_word *words = malloc(slots * sizeof *words);
    t->word_bytes = malloc(text_bytes + 1);
    encoding e = {0};
    int rc = -1;
    if (!words || !t->word_bytes || text_bytes > UINT32_MAX)
        goto out;
    for (size_t i = 0; i < slots; i++)
        words[i] = (struct bpe_word){.id = -1};
    uint32_t used = 0;
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (t->token_start[id] < 0)
            continue;
        unsigned char *p = (unsigned char *)t->word_bytes + used;
        int m = token_bytes(t->token_text + t->token_start[id], p);
        /* BPE runs without the index while it is being built (t->whole_words is still NULL) */
        if (m >= 2 && merges_to_itself(t, p, m, id, &e)) {
            word_insert(words, t->word_mask, p, m, id, used);
            used += (uint32_t)m;
        }
    }
    t->whole_words = words;
    words = NULL;
    rc = 0;
out:
    free(words);
    encoding_free(&e);
    return rc;
}

/* Pre-tokenizes text[start, end), which holds no added token, and encodes each piece. */
static int encode_plain(const bpe_tokenizer *t, const char *text, size_t start, size_t end, struct seq_out *out)
{
    while (start < end) {
        size_t len = byte_level_piece_len(text + start, end - start);
        if (encode_piece(t, text, start, (int)len, out))
            return -1;
        piece_done(out);
        start += len;
    }
    return 0;
}

/* ---- added tokens ------------------------------------------------------------------- */

/* The start of the whitespace run that ends at `end` (not before `floor`). */
static size_t space_before(const char *text, size_t floor, size_t end)
{
    const unsigned char *s = (const unsigned char *)text;
    while (end > floor) {
        size_t c = end - 1;
        while (c > floor && (s[c] & 0xC0) == 0x80) /* back to the character's first byte */
            c--;
        int32_t cp;
        if (utf8_decode(s + c, end - c, &cp) == 0 || !byte_level_is_space(cp))
            break;
        end = c;
    }
    return end;
}

/* The end of the whitespace run that starts at `start`. */
static size_t space_after(const char *text, size_t start, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    while (start < n) {
        int32_t cp;
        int len = utf8_decode(s + start, n - start, &cp);
        if (len == 0 || !byte_level_is_space(cp))
            break;
        start += (size_t)len;
    }
    return start;
}

/* The longest added token whose literal starts at text[i], or NULL. */
static const struct bpe_added *added_at(const bpe_tokenizer *t, const char *text, size_t i, size_t n)
{
    const struct bpe_added *match = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const struct bpe_added *a = &t->added[k];
        if (a->len <= n - i && text[i] == a->text[0] && memcmp(text + i, a->text, a->len) == 0 &&
            (!match || a->len > match->len))
            match = a;
    }
    return match;
}

/* Splits one text at its added-token literals (leftmost, longest first, case-sensitive, in the
 * raw text, as HF's added vocabulary does) and encodes the plain runs between them. An added
 * token with lstrip (RoBERTa's <mask>) also takes the whitespace before it, rstrip after it. */
static int encode_sequence(const bpe_tokenizer *t, const char *text, size_t n, struct seq_out *out)
{
    size_t plain = 0;
    for (size_t i = 0; i < n; i++) {
        const struct bpe_added *a = added_at(t, text, i, n);
        if (!a)
            continue;
        size_t start = a->lstrip ? space_before(text, plain, i) : i;
        size_t end = a->rstrip ? space_after(text, i + a->len, n) : i + a->len;
        if (encode_plain(t, text, plain, start, out) || push_token(out, a->id, start, end))
            return -1;
        piece_done(out);
        plain = end;
        i = end - 1;
    }
    return encode_plain(t, text, plain, n, out);
}

/* ---- framing and truncation --------------------------------------------------------- */

/* HF's longest_first for a pair as tokenizers 0.23 does it, budget = max_len - 4. la and lb are
 * the lengths HF sees: a text that reached max_len tokens counts only up to the piece where it
 * did. With n1 the shorter (the first on a tie), n1 is kept and the longer gets
 * max(n1, budget - n1); if both still exceed the budget, the shorter gets floor(budget / 2) and
 * the longer the rest. The golden rows with an odd budget tell this rule apart (ENCODERS.md). */
static void truncate_pair(int *na, int *nb, int la, int lb, int budget)
{
    bool a_shorter = la <= lb;
    int n1 = a_shorter ? la : lb;
    int n2 = n1 > budget ? n1 : (n1 > budget - n1 ? n1 : budget - n1);
    if (n1 + n2 > budget) {
        n1 = budget / 2;
        n2 = budget - n1;
    }
    int keep_a = a_shorter ? n1 : n2, keep_b = a_shorter ? n2 : n1;
    if (keep_a < *na)
        *na = keep_a;
    if (keep_b < *nb)
        *nb = keep_b;
}

/* Appends `keep` tokens of a text, from index `skip`, to the output. */
static int append_segment(encoding *e, const struct int_list *ids, const struct span_list *spans, int skip,
                          int keep)
{
    for (int i = skip; i < skip + keep; i++)
        if (list_push(&e->out_ids, ids->v[i]) || list_push(&e->out_types, 0) || span_push(&e->out_spans, spans->v[i]))
            return -1;
    return 0;
}

/* A token the template adds: (0, 0) and special, as WordPiece's [CLS] and [SEP]. */
static int append_special(encoding *e, int32_t id)
{
    return list_push(&e->out_ids, id) || list_push(&e->out_types, 0) ||
           span_push(&e->out_spans, (struct token_span){.start = 0, .end = 0, .special = true});
}

/* <s> A </s> or <s> A </s></s> B </s>, every type id 0 (RoBERTa has one token type). */
static int assemble(const bpe_tokenizer *t, encoding *e, bool pair, int na, int nb, enum truncation_side side)
{
    int skip_a = side == TRUNCATE_LEFT ? e->seg_a.n - na : 0, skip_b = side == TRUNCATE_LEFT ? e->seg_b.n - nb : 0;
    if (append_special(e, t->cls_id) || append_segment(e, &e->seg_a, &e->seg_a_spans, skip_a, na) ||
        append_special(e, t->sep_id))
        return -1;
    e->pair_start = e->out_ids.n;
    if (pair) {
        if (append_special(e, t->sep_id))
            return -1;
        e->pair_start = e->out_ids.n;
        if (append_segment(e, &e->seg_b, &e->seg_b_spans, skip_b, nb) || append_special(e, t->sep_id))
            return -1;
    }
    return 0;
}

static void reset(encoding *e)
{
    e->n = e->n_untruncated = e->pair_start = 0;
    e->truncated = false;
    e->ids = e->type_ids = NULL;
    e->spans = NULL;
    e->seg_a.n = e->seg_b.n = e->seg_a_spans.n = e->seg_b_spans.n = 0;
    e->out_ids.n = e->out_types.n = e->out_spans.n = 0;
}

static int check_input(const char *text, size_t len, const char *pair, size_t pair_len, int max_len,
                       char *err)
{
    int n_special = pair ? 4 : 2;
    if (max_len > 0 && max_len < n_special)
        return bs_fail(err, "max length %d is too small: the special tokens alone need %d", max_len, n_special);
    size_t bad = utf8_validate(text, len);
    if (bad != len)
        return bs_fail(err, "%s is not valid UTF-8 (at byte offset %zu)", pair ? "the first text" : "the text", bad);
    if (pair && (bad = utf8_validate(pair, pair_len)) != pair_len)
        return bs_fail(err, "the second text is not valid UTF-8 (at byte offset %zu)", bad);
    if (len > INT32_MAX || pair_len > INT32_MAX)
        return bs_fail(err, "the text is too long: at most %d bytes", INT32_MAX);
    return 0;
}

int bpe_encode(const bpe_tokenizer *t, const char *text, size_t len, const char *pair, size_t pair_len,
               int max_len, enum truncation_side side, encoding *e, char *err)
{
    reset(e);
    if (check_input(text, len, pair, pair_len, max_len, err))
        return -1;
    struct seq_out a = {.ids = &e->seg_a, .spans = &e->seg_a_spans, .scratch = &e->scratch, .limit = max_len,
                        .early_count = -1};
    struct seq_out b = {.ids = &e->seg_b, .spans = &e->seg_b_spans, .scratch = &e->scratch, .limit = max_len,
                        .early_count = -1};
    if (encode_sequence(t, text, len, &a) || (pair && encode_sequence(t, pair, pair_len, &b)))
        goto oom;
    int n_special = pair ? 4 : 2, na = e->seg_a.n, nb = e->seg_b.n;
    e->n_untruncated = na + nb + n_special;
    if (max_len > 0 && e->n_untruncated > max_len) {
        e->truncated = true;
        if (pair)
            truncate_pair(&na, &nb, a.early_count >= 0 ? a.early_count : na,
                          b.early_count >= 0 ? b.early_count : nb, max_len - n_special);
        else
            na = max_len - n_special;
    }
    if (assemble(t, e, pair != NULL, na, nb, side))
        goto oom;
    e->ids = e->out_ids.v;
    e->type_ids = e->out_types.v;
    e->spans = e->out_spans.v;
    e->n = e->out_ids.n;
    return 0;
oom:
    reset(e);
    return bs_fail(err, "out of memory while tokenizing");
}
