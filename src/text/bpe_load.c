/* Loading a byte-level BPE tokenizer: vocab.json, merges.txt and tokenizer_config.json. */
#include "text/bpe.h"
#include "text/bpe_model.h"

#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/fileio.h"
#include "text/byte_level.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Ids are bounded so that a lying vocab.json cannot make us allocate gigabytes
 * (roberta-base has 50,265; the largest public BPE vocabularies about 260,000). */
#define BPE_MAX_ID (1 << 24)

/* ---- token text -> id, used while loading ------------------------------------------ */

struct token_index {
    int32_t *slots; /* ids, -1 = empty */
    size_t mask;
};

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h;
}

static const char *token_text(const bpe_tokenizer *t, int32_t id)
{
    return t->token_text + t->token_start[id];
}

static int32_t index_find(const struct token_index *x, const bpe_tokenizer *t, const char *s, size_t n)
{
    for (size_t i = fnv1a(s, n) & x->mask;; i = (i + 1) & x->mask) {
        int32_t id = x->slots[i];
        if (id < 0)
            return -1;
        const char *tt = token_text(t, id);
        if (strlen(tt) == n && memcmp(tt, s, n) == 0)
            return id;
    }
}

static int index_build(struct token_index *x, const bpe_tokenizer *t, int n_tokens)
{
    size_t slots = 16;
    while (slots < (size_t)n_tokens * 2)
        slots *= 2;
    x->mask = slots - 1;
    x->slots = malloc(slots * sizeof *x->slots);
    if (!x->slots)
        return -1;
    memset(x->slots, 0xff, slots * sizeof *x->slots);
    for (int32_t id = 0; id < t->n_ids; id++) {
        if (t->token_start[id] < 0)
            continue;
        const char *s = token_text(t, id);
        size_t i = fnv1a(s, strlen(s)) & x->mask;
        while (x->slots[i] >= 0)
            i = (i + 1) & x->mask;
        x->slots[i] = id;
    }
    return 0;
}

/* ---- vocab.json --------------------------------------------------------------------- */

/* Gives id the text s, appended to the arena that token_text points into. */
static int set_token(bpe_tokenizer *t, struct buffer *arena, int32_t id, const char *s)
{
    if (arena->len > INT32_MAX / 2)
        return -1;
    t->token_start[id] = (int32_t)arena->len;
    int rc = buffer_append(arena, s, strlen(s) + 1);
    t->token_text = arena->data;
    return rc;
}

/* Parses a JSON file (at most max_bytes); NULL with err naming it. */
static cJSON *read_json(const char *path, size_t max_bytes, char *err)
{
    size_t len;
    char *text = read_whole_file(path, max_bytes, &len, err);
    if (!text)
        return NULL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root)
        bs_fail(err, "%s: not valid JSON", path);
    return root;
}

/* {"token": id, ...}: vocab.json, or the "model.vocab" of tokenizer.json (`where`). */
static int vocab_from_json(bpe_tokenizer *t, const cJSON *vocab, struct buffer *arena, const char *where,
                           char *err)
{
    int max_id = -1;
    if (!cJSON_IsObject(vocab) || !vocab->child)
        return bs_fail(err, "%s: not a JSON object of tokens and ids", where);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (v < 0 || v >= BPE_MAX_ID || v != (int)v || !e->string[0])
            return bs_fail(err, "%s: token \"%.40s\" must have an integer id in [0, %d)", where, e->string,
                           BPE_MAX_ID);
        if ((int)v > max_id)
            max_id = (int)v;
    }
    t->n_ids = max_id + 1;
    t->token_start = malloc((size_t)t->n_ids * sizeof *t->token_start);
    if (!t->token_start)
        return bs_fail(err, "%s: out of memory", where);
    memset(t->token_start, 0xff, (size_t)t->n_ids * sizeof *t->token_start);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int id = e->valueint;
        if (t->token_start[id] >= 0)
            return bs_fail(err, "%s: id %d is given to both \"%.40s\" and \"%.40s\"", where, id,
                           token_text(t, id), e->string);
        if (set_token(t, arena, id, e->string))
            return bs_fail(err, "%s: out of memory", where);
    }
    return 0;
}

/* Every byte's one-character symbol must be a token: BPE starts from them. */
static int find_byte_ids(bpe_tokenizer *t, const struct token_index *x, const char *path, char *err)
{
    for (int b = 0; b < 256; b++) {
        char s[4];
        int n = utf8_encode(byte_level_char((unsigned char)b), s);
        t->byte_id[b] = index_find(x, t, s, (size_t)n);
        if (t->byte_id[b] < 0)
            return bs_fail(err, "%s: the symbol \"%.*s\" of byte 0x%02X is missing: not a byte-level "
                                "BPE vocabulary", path, n, s, b);
    }
    return 0;
}

/* ---- merges.txt --------------------------------------------------------------------- */

static void merge_insert(bpe_tokenizer *t, int32_t left, int32_t right, int32_t rank, int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint64_t h = key * 0x9E3779B97F4A7C15ULL;
    size_t i = (size_t)(h >> 32) & t->merge_mask;
    /* a pair listed twice keeps its last rank, as HF's merge map does */
    while (t->merges[i].key != BPE_NO_MERGE && t->merges[i].key != key)
        i = (i + 1) & t->merge_mask;
    t->merges[i] = (struct bpe_merge){.key = key, .rank = rank, .merged = merged};
}

/* Sizes the merge table for n merges. */
static int merges_alloc(bpe_tokenizer *t, size_t n)
{
    size_t slots = 16;
    while (slots < n * 2)
        slots *= 2;
    t->merge_mask = slots - 1;
    t->merges = malloc(slots * sizeof *t->merges);
    if (!t->merges)
        return -1;
    for (size_t i = 0; i < slots; i++)
        t->merges[i].key = BPE_NO_MERGE;
    return 0;
}

/* The merge of left (ln bytes) and right (rn bytes) with its rank: both and their concatenation
 * must be tokens. `where` and `item` name it in a message ("merges.txt: line 3"). */
static int add_merge(bpe_tokenizer *t, const struct token_index *x, const char *left_text, size_t ln,
                     const char *right_text, size_t rn, int32_t rank, const char *where, const char *item,
                     int number, char *err)
{
    char joined[1024];
    if (ln + rn >= sizeof joined)
        return bs_fail(err, "%s: %s %d: a merge of more than %zu bytes", where, item, number, sizeof joined - 1);
    memcpy(joined, left_text, ln);
    memcpy(joined + ln, right_text, rn);
    int32_t left = index_find(x, t, left_text, ln), right = index_find(x, t, right_text, rn);
    int32_t merged = index_find(x, t, joined, ln + rn);
    if (left < 0 || right < 0 || merged < 0)
        return bs_fail(err, "%s: %s %d: \"%.*s\" is not in the vocabulary", where, item, number,
                       (int)(left < 0 ? ln : right < 0 ? rn : ln + rn),
                       left < 0 ? left_text : right < 0 ? right_text : joined);
    merge_insert(t, left, right, rank, merged);
    return 0;
}

/* One merge "left right" (a line of merges.txt, or a string of tokenizer.json's model.merges). */
static int parse_merge(bpe_tokenizer *t, const struct token_index *x, const char *line, size_t n, int32_t rank,
                       const char *path, const char *item, int number, char *err)
{
    const char *space = memchr(line, ' ', n);
    if (!space || memchr(space + 1, ' ', n - (size_t)(space + 1 - line)))
        return bs_fail(err, "%s: %s %d: a merge is two tokens separated by one space", path, item, number);
    size_t ln = (size_t)(space - line);
    return add_merge(t, x, line, ln, space + 1, n - ln - 1, rank, path, item, number, err);
}

static int read_merges(bpe_tokenizer *t, const struct token_index *x, const char *path, char *err)
{
    size_t len;
    char *text = read_whole_file(path, VOCAB_MAX_BYTES, &len, err);
    if (!text)
        return -1;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    int rc = -1;
    if (merges_alloc(t, lines)) {
        bs_fail(err, "%s: out of memory", path);
        goto out;
    }
    int32_t rank = 0;
    int line_no = 0;
    for (char *p = text, *end = text + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        line_no++;
        if (n > 0 && p[n - 1] == '\r')
            n--;
        /* HF skips "#version" lines; the file's last newline ends the list */
        if (!(n >= 8 && memcmp(p, "#version", 8) == 0) &&
            parse_merge(t, x, p, n, rank++, path, "line", line_no, err))
            goto out;
        p = nl ? nl + 1 : end;
    }
    rc = 0;
out:
    free(text);
    return rc;
}

/* ---- tokenizer_config.json ---------------------------------------------------------- */

/* A special token's name: a string, or {"content": "..."} as transformers also writes it. */
static const char *config_name(const cJSON *cfg, const char *key, const char *fallback)
{
    const cJSON *item = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    if (cJSON_IsObject(item))
        item = cJSON_GetObjectItemCaseSensitive(item, "content");
    return cJSON_IsString(item) ? item->valuestring : fallback;
}

static bool config_flag(const cJSON *obj, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, key));
}

static int add_literal(bpe_tokenizer *t, const char *text, int32_t id, bool lstrip, bool rstrip)
{
    struct bpe_added *a = &t->added[t->n_added];
    a->text = strdup(text);
    if (!a->text)
        return -1;
    a->len = strlen(text);
    a->id = id;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    t->n_added++;
    return 0;
}

/* One added token, {"content": "<mask>", "lstrip": true, ...}, with the id `name` gives it
 * (ok false: no valid id). */
static int add_token_entry(bpe_tokenizer *t, struct buffer *arena, long id, bool ok, const char *name,
                           const cJSON *e, const char *path, char *err)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(e, "content");
    if (!ok || id < 0 || id >= t->n_ids || !cJSON_IsString(content) || !content->valuestring[0])
        return bs_fail(err, "%s: added token \"%.40s\" needs an id of the vocabulary and a non-empty "
                            "\"content\"", path, name);
    if (config_flag(e, "single_word"))
        return bs_fail(err, "%s: added token \"%.40s\": \"single_word\" is not supported", path,
                       content->valuestring);
    if (t->token_start[id] < 0 && set_token(t, arena, (int32_t)id, content->valuestring))
        return bs_fail(err, "%s: out of memory", path);
    if (add_literal(t, content->valuestring, (int32_t)id, config_flag(e, "lstrip"), config_flag(e, "rstrip")))
        return bs_fail(err, "%s: out of memory", path);
    return 0;
}

/* "added_tokens_decoder": {"50264": {"content": "<mask>", "lstrip": true, ...}, ...} */
static int read_added_tokens(bpe_tokenizer *t, struct buffer *arena, const cJSON *dec, const char *path,
                             char *err)
{
    t->added = calloc((size_t)cJSON_GetArraySize(dec) + 1, sizeof *t->added);
    if (!t->added)
        return bs_fail(err, "%s: out of memory", path);
    for (const cJSON *e = dec->child; e; e = e->next) {
        char *end;
        long id = strtol(e->string, &end, 10);
        if (add_token_entry(t, arena, id, !*end && end != e->string, e->string, e, path, err))
            return -1;
    }
    return 0;
}

/* RoBERTa's added tokens when the config does not list them (RobertaTokenizer's defaults). */
static int default_added_tokens(bpe_tokenizer *t, const struct token_index *x, char *err)
{
    static const char *const names[] = {"<s>", "<pad>", "</s>", "<unk>", "<mask>"};
    t->added = calloc(5, sizeof *t->added);
    if (!t->added)
        return bs_fail(err, "out of memory");
    for (int i = 0; i < 5; i++) {
        int32_t id = index_find(x, t, names[i], strlen(names[i]));
        if (id >= 0 && add_literal(t, names[i], id, strcmp(names[i], "<mask>") == 0, false))
            return bs_fail(err, "out of memory");
    }
    return 0;
}

/* Reads the optional tokenizer_config.json (NULL *cfg when it is absent). */
static int read_config(const char *model_dir, cJSON **cfg, char path[BS_PATH_LEN], char *err)
{
    *cfg = NULL;
    if (path_join(path, model_dir, "tokenizer_config.json", err))
        return -1;
    struct stat sb;
    if (lstat(path, &sb) && errno == ENOENT) /* only absence means "defaults" */
        return 0;
    size_t len;
    char *text = read_whole_file(path, CONFIG_MAX_BYTES, &len, err);
    if (!text)
        return -1;
    *cfg = cJSON_ParseWithLength(text, len);
    free(text);
    if (!cJSON_IsObject(*cfg))
        return bs_fail(err, "%s: not a JSON object", path);
    if (config_flag(*cfg, "add_prefix_space"))
        return bs_fail(err, "%s: \"add_prefix_space\": true is not supported", path);
    return 0;
}

static int apply_config(bpe_tokenizer *t, struct buffer *arena, const struct token_index *x,
                        const cJSON *cfg, const char *path, char *err)
{
    const cJSON *dec = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "added_tokens_decoder") : NULL;
    if (dec && !cJSON_IsObject(dec))
        return bs_fail(err, "%s: \"added_tokens_decoder\" must be an object", path);
    if (dec ? read_added_tokens(t, arena, dec, path, err) : default_added_tokens(t, x, err))
        return -1;
    const char *cls = config_name(cfg, "cls_token", "<s>"), *sep = config_name(cfg, "sep_token", "</s>");
    t->cls_id = index_find(x, t, cls, strlen(cls));
    t->sep_id = index_find(x, t, sep, strlen(sep));
    if (t->cls_id < 0 || t->sep_id < 0)
        return bs_fail(err, "%s: the special token %s is not in vocab.json", cfg ? path : "vocab.json",
                       t->cls_id < 0 ? cls : sep);
    return 0;
}

/* ---- tokenizer.json ----------------------------------------------------------------- */

static bool is_type(const cJSON *obj, const char *type)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "type");
    return cJSON_IsString(item) && strcmp(item->valuestring, type) == 0;
}

/* Null, absent or equal to the given string. */
static bool string_or_null(const cJSON *obj, const char *key, const char *value)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return !item || cJSON_IsNull(item) || (cJSON_IsString(item) && strcmp(item->valuestring, value) == 0);
}

/* Only what RoBERTa's tokenizer.json holds is accepted: anything else would tokenize differently
 * from HF without a word. */
static int check_pipeline(const cJSON *root, const cJSON *model, const char *path, char *err)
{
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *regex = cJSON_GetObjectItemCaseSensitive(pre, "use_regex");
    if (norm && !cJSON_IsNull(norm))
        return bs_fail(err, "%s: a \"normalizer\" is not supported (byte-level BPE has none)", path);
    if (!is_type(pre, "ByteLevel") || config_flag(pre, "add_prefix_space") || cJSON_IsFalse(regex))
        return bs_fail(err, "%s: \"pre_tokenizer\" must be ByteLevel without add_prefix_space, with use_regex",
                       path);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
    if (!is_type(model, "BPE") || !string_or_null(model, "continuing_subword_prefix", "") ||
        !string_or_null(model, "end_of_word_suffix", "") || config_flag(model, "byte_fallback") ||
        config_flag(model, "ignore_merges") || (dropout && !cJSON_IsNull(dropout)))
        return bs_fail(err, "%s: \"model\" must be a plain BPE (no subword prefix or suffix, byte_fallback, "
                            "ignore_merges or dropout)", path);
    return 0;
}

/* "model": {"merges": ["Ġ t", ...]} or, since tokenizers 0.20, [["Ġ", "t"], ...] */
static int merges_from_json(bpe_tokenizer *t, const struct token_index *x, const cJSON *merges, const char *path,
                            char *err)
{
    if (!cJSON_IsArray(merges) || merges_alloc(t, (size_t)cJSON_GetArraySize(merges)))
        return bs_fail(err, "%s: \"model.merges\" must be an array", path);
    int32_t rank = 0;
    for (const cJSON *m = merges->child; m; m = m->next, rank++) {
        const cJSON *l = cJSON_GetArrayItem(m, 0), *r = cJSON_GetArrayItem(m, 1);
        int rc;
        if (cJSON_IsString(m))
            rc = parse_merge(t, x, m->valuestring, strlen(m->valuestring), rank, path, "merge", rank, err);
        else if (cJSON_GetArraySize(m) == 2 && cJSON_IsString(l) && cJSON_IsString(r))
            rc = add_merge(t, x, l->valuestring, strlen(l->valuestring), r->valuestring, strlen(r->valuestring),
                           rank, path, "merge", rank, err);
        else
            rc = bs_fail(err, "%s: merge %d: neither \"left right\" nor [left, right]", path, rank);
        if (rc)
            return -1;
    }
    return 0;
}

/* "added_tokens": [{"id": 0, "content": "<s>", ...}, ...]; "post_processor": RobertaProcessing's
 * "cls": ["<s>", 0] and "sep": ["</s>", 2]. */
static int specials_from_json(bpe_tokenizer *t, struct buffer *arena, const cJSON *root, const char *path,
                              char *err)
{
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
    t->added = calloc((size_t)cJSON_GetArraySize(added) + 1, sizeof *t->added);
    if (!t->added)
        return bs_fail(err, "%s: out of memory", path);
    for (const cJSON *e = cJSON_IsArray(added) ? added->child : NULL; e; e = e->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (add_token_entry(t, arena, cJSON_IsNumber(id) ? (long)id->valuedouble : -1, cJSON_IsNumber(id),
                            cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "content"))
                                ? cJSON_GetObjectItemCaseSensitive(e, "content")->valuestring : "?",
                            e, path, err))
            return -1;
    }
    const cJSON *post = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    const cJSON *cls = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(post, "cls"), 1);
    const cJSON *sep = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(post, "sep"), 1);
    if (!is_type(post, "RobertaProcessing") || !cJSON_IsNumber(cls) || !cJSON_IsNumber(sep) ||
        !bpe_token(t, cls->valueint) || !bpe_token(t, sep->valueint))
        return bs_fail(err, "%s: \"post_processor\" must be RobertaProcessing with the ids of \"cls\" and "
                            "\"sep\"", path);
    t->cls_id = cls->valueint;
    t->sep_id = sep->valueint;
    return 0;
}

static int load_tokenizer_json(bpe_tokenizer *t, const char *model_dir, struct buffer *arena,
                               struct token_index *x, char *err)
{
    char path[BS_PATH_LEN];
    if (path_join(path, model_dir, "tokenizer.json", err))
        return -1;
    cJSON *root = read_json(path, VOCAB_MAX_BYTES, err);
    if (!root)
        return -1;
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int rc = -1;
    if (check_pipeline(root, model, path, err) ||
        vocab_from_json(t, cJSON_GetObjectItemCaseSensitive(model, "vocab"), arena, path, err))
        goto out;
    if (index_build(x, t, t->n_ids)) {
        bs_fail(err, "%s: out of memory", path);
        goto out;
    }
    if (find_byte_ids(t, x, path, err) ||
        merges_from_json(t, x, cJSON_GetObjectItemCaseSensitive(model, "merges"), path, err) ||
        specials_from_json(t, arena, root, path, err))
        goto out;
    rc = 0;
out:
    cJSON_Delete(root);
    return rc;
}

/* ---- vocab.json + merges.txt + tokenizer_config.json -------------------------------- */

static int load_vocab_files(bpe_tokenizer *t, const char *model_dir, struct buffer *arena,
                            struct token_index *x, char *err)
{
    char vocab_path[BS_PATH_LEN], merges_path[BS_PATH_LEN], config_path[BS_PATH_LEN];
    if (path_join(vocab_path, model_dir, "vocab.json", err) || path_join(merges_path, model_dir, "merges.txt", err))
        return -1;
    cJSON *vocab = read_json(vocab_path, VOCAB_MAX_BYTES, err), *cfg = NULL;
    int rc = !vocab || vocab_from_json(t, vocab, arena, vocab_path, err) ? -1 : 0;
    cJSON_Delete(vocab); /* the tokens are copied */
    if (rc == 0 && index_build(x, t, t->n_ids))
        rc = bs_fail(err, "%s: out of memory", vocab_path);
    if (rc == 0 && (find_byte_ids(t, x, vocab_path, err) || read_merges(t, x, merges_path, err) ||
                    read_config(model_dir, &cfg, config_path, err) ||
                    apply_config(t, arena, x, cfg, config_path, err)))
        rc = -1;
    cJSON_Delete(cfg);
    return rc;
}

/* ---- the whole tokenizer ------------------------------------------------------------ */

/* vocab.json + merges.txt when vocab.json is there (or neither file is: then its absence is the
 * error), else tokenizer.json. */
static bool has_file(const char *model_dir, const char *name)
{
    char path[BS_PATH_LEN];
    struct stat sb;
    return path_join(path, model_dir, name, NULL) == 0 && (lstat(path, &sb) == 0 || errno != ENOENT);
}

bpe_tokenizer *bpe_load(const char *model_dir, char *err)
{
    bpe_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return bs_fail(err, "out of memory"), NULL;
    struct buffer arena = {0};
    struct token_index x = {0};
    bool json = !has_file(model_dir, "vocab.json") && has_file(model_dir, "tokenizer.json");
    if (json ? load_tokenizer_json(t, model_dir, &arena, &x, err) : load_vocab_files(t, model_dir, &arena, &x, err))
        goto fail;
    if (bpe_index_whole_words(t)) {
        bs_fail(err, "%s: out of memory while indexing the vocabulary", model_dir);
        goto fail;
    }
    free(x.slots);
    return t;
fail:
    free(x.slots);
    if (!t->token_text)
        free(arena.data);
    bpe_free(t);
    return NULL;
}

void bpe_free(bpe_tokenizer *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n_added; i++)
        free(t->added[i].text);
    free(t->added);
    free(t->merges);
    free(t->whole_words);
    free(t->word_bytes);
    free(t->token_start);
    free(t->token_text);
    free(t);
}

int bpe_vocab_size(const bpe_tokenizer *t) { return t->n_ids; }
int bpe_cls_id(const bpe_tokenizer *t) { return t->cls_id; }
int bpe_sep_id(const bpe_tokenizer *t) { return t->sep_id; }

const char *bpe_token(const bpe_tokenizer *t, int id)
{
    return id >= 0 && id < t->n_ids && t->token_start[id] >= 0 ? token_text(t, id) : NULL;
}
