/* Byte-level BPE: token ids identical to HuggingFace tokenizers 0.23.2 on every golden case of
 * golden/tokenizer-bpe, counted per category, loaded once from roberta-tiny's vocab.json +
 * merges.txt and once from golden/tokenizer-bpe/tokenizer.json alone, and the spans rule
 * checked on every case: the tokens of a text tile it, [0, len) end to end in order, none
 * special, and each ordinary token's bytes, shown as GPT-2 characters, are its vocabulary text
 * (an added token's span is its literal plus the whitespace it strips); the <s> and </s> around
 * the texts are (0, 0) and special, as WordPiece's [CLS] and [SEP]. */
#include "check.h"
#include "common/bs_error.h"
#include "common/buffer.h"
#include "text/bpe.h"
#include "text/byte_level.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CATEGORIES 32

struct category {
    char name[48];
    int cases, mismatches;
};

struct run {
    const char *file;
    const bpe_tokenizer *tok;
    encoding enc;
    struct buffer text, pair;
    struct category cats[MAX_CATEGORIES];
    int n_cats, cases, mismatches, span_failures;
};

/* Decodes the JSON string after "key": in line into out (cJSON would stop at a \u0000, and the
 * goldens hold NUL bytes, which byte-level BPE encodes). 0 if found, -1 if absent or broken. */
static int hex4(const char *s, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                   : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16)
            return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

static int json_string_field(const char *line, const char *key, struct buffer *out)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr(line, pattern);
    out->len = 0;
    if (!p)
        return -1;
    for (p += strlen(pattern); *p != '"'; p++) {
        char c = *p;
        if (c == '\0')
            return -1;
        if (c != '\\') {
            buffer_append(out, p, 1);
            continue;
        }
        c = *++p;
        const char *simple = strchr("\"\\/bfnrt", c);
        if (simple && c) {
            static const char decoded[] = "\"\\/\b\f\n\r\t";
            buffer_append(out, &decoded[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        unsigned u, lo;
        if (c != 'u' || hex4(p + 1, &u))
            return -1;
        p += 4;
        if (u >= 0xD800 && u <= 0xDBFF) {
            if (p[1] != '\\' || p[2] != 'u' || hex4(p + 3, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                return -1;
            u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            p += 6;
        } else if (u >= 0xDC00 && u <= 0xDFFF) {
            return -1;
        }
        char bytes[4];
        buffer_append(out, bytes, (size_t)utf8_encode((int32_t)u, bytes));
    }
    if (!out->data)
        buffer_append(out, "", 0);
    return 0;
}

/* bytes s[0..n) shown as GPT-2 characters equal the token text */
static bool bytes_spell(const char *s, size_t n, const char *token)
{
    char buf[4];
    for (size_t i = 0; i < n; i++) {
        int len = utf8_encode(byte_level_char((unsigned char)s[i]), buf);
        if (strncmp(token, buf, (size_t)len) != 0)
            return false;
        token += len;
    }
    return *token == '\0';
}

/* s[0..n) is the token text t with whitespace around it (an added token that strips it) */
static bool is_literal(const char *s, size_t n, const char *t)
{
    size_t tn = strlen(t);
    for (size_t i = 0; i + tn <= n; i++) {
        if (memcmp(s + i, t, tn) != 0)
            continue;
        for (size_t j = 0; j < n;) { /* everything else must be whitespace */
            int32_t cp;
            int len = utf8_decode((const unsigned char *)s + j, n - j, &cp);
            if (j == i) {
                j += tn;
                continue;
            }
            if (len == 0 || !byte_level_is_space(cp))
                return false;
            j += (size_t)len;
        }
        return true;
    }
    return false;
}

/* The spans rule on the tokens [from, to) of one text (truncated on the right: a prefix). */
static bool spans_tile(const bpe_tokenizer *tok, const encoding *e, int from, int to, const char *s, size_t n,
                       bool whole)
{
    int32_t pos = 0;
    for (int i = from; i < to; i++) {
        int32_t start = e->spans[i].start, end = e->spans[i].end;
        if (e->spans[i].special || start != pos || end <= start || (size_t)end > n)
            return false;
        const char *t = bpe_token(tok, e->ids[i]);
        if (!t || !(is_literal(s + start, (size_t)(end - start), t) || bytes_spell(s + start, (size_t)(end - start), t)))
            return false;
        pos = end;
    }
    return !whole || (size_t)pos == n;
}

/* A token the template added: (0, 0) and special. */
static bool framing(const encoding *e, int i)
{
    return e->spans[i].special && e->spans[i].start == 0 && e->spans[i].end == 0;
}

static struct category *category(struct run *r, const char *name)
{
    for (int i = 0; i < r->n_cats; i++)
        if (strcmp(r->cats[i].name, name) == 0)
            return &r->cats[i];
    if (r->n_cats == MAX_CATEGORIES)
        return &r->cats[MAX_CATEGORIES - 1];
    struct category *c = &r->cats[r->n_cats++];
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

static void report_mismatch(struct run *r, const char *id, const cJSON *ids)
{
    if (++r->mismatches > 10)
        return;
    char *want = cJSON_PrintUnformatted(ids);
    fprintf(stderr, "%s %s: text \"%.*s\"\n  want %s\n  got  ", r->file, id, (int)r->text.len, r->text.data, want);
    for (int i = 0; i < r->enc.n; i++)
        fprintf(stderr, "%s%d", i ? "," : "[", r->enc.ids[i]);
    fprintf(stderr, "] untruncated %d truncated %d\n", r->enc.n_untruncated, r->enc.truncated);
    free(want);
}

static void check_case(char *line, size_t len, void *ctx)
{
    (void)len;
    struct run *r = ctx;
    cJSON *c = cJSON_Parse(line); /* the ids and numbers; the texts are decoded by hand */
    const cJSON *id = cJSON_GetObjectItem(c, "id"), *cat = cJSON_GetObjectItem(c, "category"),
                *ids = cJSON_GetObjectItem(c, "ids"), *types = cJSON_GetObjectItem(c, "type_ids"),
                *max = cJSON_GetObjectItem(c, "max_length"), *untrunc = cJSON_GetObjectItem(c, "untruncated_length");
    bool has_pair = strstr(line, "\"text_pair\":\"") != NULL;
    if (!cJSON_IsString(id) || !cJSON_IsString(cat) || !cJSON_IsArray(ids) ||
        json_string_field(line, "text", &r->text) || (has_pair && json_string_field(line, "text_pair", &r->pair))) {
        CHECK(0, "%s: malformed golden line: %.80s", r->file, line);
        cJSON_Delete(c);
        return;
    }
    struct category *k = category(r, cat->valuestring);
    r->cases++;
    k->cases++;
    int max_len = cJSON_IsNumber(max) ? max->valueint : 0;
    char err[BS_ERR_LEN];
    int rc = bpe_encode(r->tok, r->text.data, r->text.len, has_pair ? r->pair.data : NULL, has_pair ? r->pair.len : 0,
                        max_len, TRUNCATE_RIGHT, &r->enc, err);
    CHECK(rc == 0, "%s %s: %s", r->file, id->valuestring, err);
    const encoding *e = &r->enc;
    bool ok = rc == 0 && json_ids_equal(ids, e->ids, e->n);
    for (int i = 0; ok && i < e->n; i++)
        ok = e->type_ids[i] == 0;
    if (types)
        ok = ok && json_ids_equal(types, e->type_ids, e->n);
    int expect_untrunc = cJSON_IsNumber(untrunc) ? untrunc->valueint : cJSON_GetArraySize(ids);
    ok = ok && e->n_untruncated == expect_untrunc && e->truncated == (expect_untrunc > e->n);
    if (!ok) {
        k->mismatches++;
        report_mismatch(r, id->valuestring, ids);
    }
    if (rc == 0) {
        int end_a = has_pair ? e->pair_start - 2 : e->n - 1;
        bool tiles = spans_tile(r->tok, e, 1, end_a, r->text.data, r->text.len, !e->truncated) &&
                     (!has_pair || spans_tile(r->tok, e, e->pair_start, e->n - 1, r->pair.data, r->pair.len,
                                              !e->truncated)) &&
                     framing(e, 0) && framing(e, end_a) && (!has_pair || framing(e, end_a + 1)) &&
                     framing(e, e->n - 1) && e->pair_start == (has_pair ? end_a + 2 : e->n);
        if (!tiles && ++r->span_failures <= 5)
            fprintf(stderr, "%s %s: the token spans do not tile the text\n", r->file, id->valuestring);
    }
    cJSON_Delete(c);
}

/* Every golden file through the tokenizer loaded from model_dir; the number of cases. */
static int check_all(const char *model_dir, const char *source)
{
    char err[BS_ERR_LEN];
    bpe_tokenizer *tok = bpe_load(model_dir, err);
    CHECK(tok != NULL, "%s", err);
    if (!tok)
        return 0;
    static const struct {
        const char *file;
        int cases; /* guards against a golden file that silently shrank */
    } files[] = {
        {"golden/tokenizer-bpe/cases.jsonl", 3692},
        {"golden/tokenizer-bpe/pairs.jsonl", 156},
        {"golden/tokenizer-bpe/truncation.jsonl", 200},
        {"golden/tokenizer-bpe/special_literals.jsonl", 39},
        {"golden/tokenizer-bpe/phrasebank.jsonl", 500},
    };
    int total = 0;
    printf("== loaded from %s\n", source);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct run r = {.file = files[i].file, .tok = tok};
        for_each_line(shared_path(files[i].file), check_case, &r);
        CHECK(r.cases == files[i].cases, "%s: %d cases read, expected %d", r.file, r.cases, files[i].cases);
        CHECK(r.mismatches == 0, "%s (%s): %d of %d cases differ from HF", r.file, source, r.mismatches, r.cases);
        CHECK(r.span_failures == 0, "%s (%s): %d cases break the spans rule", r.file, source, r.span_failures);
        printf("%s: %d cases, %d identical, %d spans failures\n", r.file, r.cases, r.cases - r.mismatches,
               r.span_failures);
        for (int c = 0; c < r.n_cats; c++)
            printf("  %-20s %5d / %5d identical\n", r.cats[c].name, r.cats[c].cases - r.cats[c].mismatches,
                   r.cats[c].cases);
        total += r.cases;
        encoding_free(&r.enc);
        buffer_free(&r.text);
        buffer_free(&r.pair);
    }
    bpe_free(tok);
    return total;
}

int main(void)
{
    int total = check_all(shared_path("models/roberta-tiny"), "models/roberta-tiny: vocab.json, merges.txt");
    /* the same tokenizer from HF's tokenizer.json alone, in a directory holding nothing else */
    char dir[] = "/tmp/bertserve-bpe-json-XXXXXX", link[64];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(link, sizeof link, "%s/tokenizer.json", dir);
    CHECK(symlink(shared_path("golden/tokenizer-bpe/tokenizer.json"), link) == 0, "symlink %s", link);
    total += check_all(dir, "golden/tokenizer-bpe/tokenizer.json");
    unlink(link);
    rmdir(dir);
    printf("%d golden cases in all\n", total);
    CHECK(total == 2 * 4587, "%d cases run, expected %d", total, 2 * 4587);
    return test_finish("test_tokenizer_bpe_golden");
}
