#include "text/vocab.h"

#include "common/bs_error.h"
#include "common/fileio.h"
#include "text/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct vocab {
    char *text;        /* the file's bytes, each line's '\n' replaced by NUL */
    char **tokens;     /* id -> token text (points into text) */
    size_t *lengths;   /* id -> token length in bytes */
    int n_tokens;
    int32_t *slots;    /* open-addressing hash table of ids, -1 = empty */
    size_t mask;       /* number of slots - 1 (a power of two) */
    size_t max_bytes;
};

/* FNV-1a, fed in two parts so "##" + piece hashes without building the key. */
static uint64_t fnv1a(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}
#define FNV_OFFSET 0xcbf29ce484222325ULL

static bool token_equals(const vocab *v, int id, bool continuation, const char *s, size_t n)
{
    const char *t = v->tokens[id];
    size_t tn = v->lengths[id];
    if (continuation) {
        if (tn != n + 2 || t[0] != '#' || t[1] != '#')
            return false;
        t += 2;
    } else if (tn != n) {
        return false;
    }
    return memcmp(t, s, n) == 0;
}

int vocab_find(const vocab *v, bool continuation, const char *s, size_t n)
{
    uint64_t h = fnv1a(FNV_OFFSET, continuation ? "##" : "", continuation ? 2 : 0);
    h = fnv1a(h, s, n);
    for (size_t i = h & v->mask;; i = (i + 1) & v->mask) {
        int32_t id = v->slots[i];
        if (id < 0)
            return -1;
        if (token_equals(v, id, continuation, s, n))
            return id;
    }
}

/* Duplicate tokens keep the last id, as HF's vocabulary map does. */
static void insert(vocab *v, int id)
{
    uint64_t h = fnv1a(FNV_OFFSET, v->tokens[id], v->lengths[id]);
    for (size_t i = h & v->mask;; i = (i + 1) & v->mask) {
        int32_t other = v->slots[i];
        if (other < 0 || token_equals(v, other, false, v->tokens[id], v->lengths[id])) {
            v->slots[i] = id;
            return;
        }
    }
}

vocab *vocab_load(const char *path, char *err)
{
    vocab *v = calloc(1, sizeof *v);
    if (!v)
        return bs_fail(err, "%s: out of memory", path), NULL;
    size_t len;
    v->text = read_whole_file(path, VOCAB_MAX_BYTES, &len, err);
    if (!v->text)
        goto fail;
    if (len == 0) {
        bs_fail(err, "%s: the vocabulary is empty", path);
        goto fail;
    }
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += v->text[i] == '\n';
    lines += v->text[len - 1] != '\n'; /* a last line without newline */
    if (lines > INT32_MAX / 4) {
        bs_fail(err, "%s: too many lines (%zu)", path, lines);
        goto fail;
    }
    v->tokens = malloc(lines * sizeof *v->tokens);
    v->lengths = malloc(lines * sizeof *v->lengths);
    size_t slots = 1;
    while (slots < 2 * lines)
        slots <<= 1;
    v->slots = malloc(slots * sizeof *v->slots);
    if (!v->tokens || !v->lengths || !v->slots) {
        bs_fail(err, "%s: out of memory", path);
        goto fail;
    }
    memset(v->slots, 0xFF, slots * sizeof *v->slots);
    v->mask = slots - 1;

    char *p = v->text, *end = v->text + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *eol = nl ? nl : end;
        int line = v->n_tokens + 1;
        if (eol > p && eol[-1] == '\r') /* CRLF files */
            eol--;
        size_t n = (size_t)(eol - p);
        if (n == 0) {
            bs_fail(err, "%s:%d: empty line (every line must hold one token)", path, line);
            goto fail;
        }
        size_t bad = utf8_validate(p, n);
        if (bad != n) {
            bs_fail(err, "%s:%d: invalid UTF-8 at byte %zu of the line", path, line, bad + 1);
            goto fail;
        }
        if (memchr(p, '\0', n)) {
            bs_fail(err, "%s:%d: NUL byte in token", path, line);
            goto fail;
        }
        *eol = '\0';
        v->tokens[v->n_tokens] = p;
        v->lengths[v->n_tokens] = n;
        if (n > v->max_bytes)
            v->max_bytes = n;
        insert(v, v->n_tokens);
        v->n_tokens++;
        p = nl ? nl + 1 : end;
    }
    return v;
fail:
    vocab_free(v);
    return NULL;
}

void vocab_free(vocab *v)
{
    if (!v)
        return;
    free(v->text);
    free(v->tokens);
    free(v->lengths);
    free(v->slots);
    free(v);
}

int vocab_size(const vocab *v) { return v->n_tokens; }

const char *vocab_token(const vocab *v, int id)
{
    return id >= 0 && id < v->n_tokens ? v->tokens[id] : NULL;
}

size_t vocab_max_token_bytes(const vocab *v) { return v->max_bytes; }
