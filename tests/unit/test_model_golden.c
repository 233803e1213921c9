/* The forward pass against the golden logits, probabilities, padded batches and hidden states
 * of every golden model, within the tolerances of shared/golden/README.md (BERT) and
 * shared/golden/ENCODERS.md (DistilBERT, RoBERTa). */
#include "check.h"
#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/fileio.h"
#include "common/sha256.h"
#include "engine/bert.h"
#include "engine/model.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    float logit_tol;
    int phrasebank; /* rows of phrasebank_logits.jsonl, 0: none */
} golden_model;

static const golden_model MODELS[] = {
    {"tiny-bert", 1e-5f, 4846},      {"tiny-bert-f16", 1e-5f, 0},      {"tiny-bert-bf16", 1e-5f, 0},
    {"tiny-bert-512", 1e-5f, 0},     {"finsent-mini", 2e-5f, 4846},    {"distilbert-tiny", 1e-5f, 500},
    {"roberta-tiny", 1e-5f, 500},
};
#define PROB_TOL 1e-5f
#define HIDDEN_TOL 1e-5f

/* A growable packed batch, plus the expected logits of each sequence. */
typedef struct {
    int32_t *ids, *types;
    int *lens;
    float *want;        /* n_seqs x n_labels */
    char **labels;      /* expected label per sequence, or NULL */
    size_t n_tokens;
    int n_seqs;
    size_t cap_ids, cap_types, cap_lens, cap_want, cap_labels; /* elements each has room for */
} packed;

static void packed_reset(packed *p)
{
    for (int i = 0; i < p->n_seqs; i++)
        free(p->labels[i]);
    p->n_tokens = 0;
    p->n_seqs = 0;
}

static void packed_free(packed *p)
{
    packed_reset(p);
    free(p->ids);
    free(p->types);
    free(p->lens);
    free(p->want);
    free(p->labels);
    memset(p, 0, sizeof *p);
}

static void out_of_memory(void)
{
    fprintf(stderr, "FAIL: out of memory\n");
    exit(1);
}

static void *grow(void *ptr, size_t n, size_t size)
{
    void *q = realloc(ptr, n * size);
    if (!q)
        out_of_memory();
    return q;
}

/* Adds one sequence from JSON arrays; types may be NULL (all zero); only the first len
 * tokens are taken (len < 0: all). want: n_labels floats or NULL. */
static void packed_add(packed *p, const cJSON *ids, const cJSON *types, int len, const cJSON *want,
                       int n_labels, const char *label)
{
    if (len < 0)
        len = cJSON_GetArraySize(ids);
    size_t tokens = p->n_tokens + (size_t)len, seqs = (size_t)p->n_seqs + 1;
    if (grow_array(&p->ids, &p->cap_ids, tokens, sizeof *p->ids) ||
        grow_array(&p->types, &p->cap_types, tokens, sizeof *p->types) ||
        grow_array(&p->lens, &p->cap_lens, seqs, sizeof *p->lens) ||
        grow_array(&p->want, &p->cap_want, seqs * (size_t)n_labels, sizeof *p->want) ||
        grow_array(&p->labels, &p->cap_labels, seqs, sizeof *p->labels))
        out_of_memory();
    const cJSON *id = ids->child, *ty = types ? types->child : NULL;
    for (int t = 0; t < len; t++) {
        p->ids[p->n_tokens + t] = id ? (int32_t)id->valueint : -1;
        p->types[p->n_tokens + t] = ty ? (int32_t)ty->valueint : 0;
        id = id ? id->next : NULL;
        ty = ty ? ty->next : NULL;
    }
    int i = 0;
    for (const cJSON *w = want ? want->child : NULL; w && i < n_labels; w = w->next)
        p->want[(size_t)p->n_seqs * n_labels + i++] = (float)w->valuedouble;
    CHECK(!want || i == n_labels, "golden logits have %d values, the model %d labels", i, n_labels);
    p->labels[p->n_seqs] = label ? strdup(label) : NULL;
    p->lens[p->n_seqs++] = len;
    p->n_tokens += (size_t)len;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

typedef struct {
    const golden_model *g;
    bert_model *m;
    bert_scratch scratch;
    packed all;          /* every logits.jsonl row, for the mixed batch */
    float *single;       /* our own one-at-a-time logits, same order */
    int rows;
    float max_logit, max_prob, max_batch, max_mixed, max_hidden, max_phrase;
    int label_mismatches;
} run;

/* Runs p as one batch and compares with its expected logits and labels; returns the logits
 * (n_seqs x n_labels, free() them). */
static float *run_packed(run *r, const packed *p, const char *what, float *max_diff)
{
    int L = r->m->cfg.n_labels;
    float *out = grow(NULL, (size_t)p->n_seqs * L, sizeof *out);
    bert_batch b = {p->ids, p->types, p->lens, p->n_seqs};
    char err[BS_ERR_LEN];
    int rc = bert_forward(r->m, &b, out, &r->scratch, err);
    CHECK(rc == 0, "%s %s: bert_forward failed: %s", r->g->name, what, err);
    if (rc != 0) {
        memset(out, 0, (size_t)p->n_seqs * L * sizeof *out);
        return out;
    }
    for (int s = 0; s < p->n_seqs; s++) {
        const float *got = out + (size_t)s * L, *want = p->want + (size_t)s * L;
        float d = 0;
        for (int i = 0; i < L; i++)
            d = fmaxf(d, fabsf(got[i] - want[i]));
        *max_diff = fmaxf(*max_diff, d);
        CHECK(d <= r->g->logit_tol, "%s %s seq %d: |logit - golden| = %.3g > %.3g", r->g->name, what,
              s, d, r->g->logit_tol);
        if (p->labels[s]) {
            const char *label = r->m->cfg.labels[argmax(got, L)];
            if (strcmp(label, p->labels[s]))
                r->label_mismatches++;
            CHECK(!strcmp(label, p->labels[s]), "%s %s seq %d: label %s, golden %s", r->g->name,
                  what, s, label, p->labels[s]);
        }
    }
    return out;
}

static void logits_row(char *line, size_t len, void *ctx)
{
    run *r = ctx;
    int L = r->m->cfg.n_labels;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *ids = cJSON_GetObjectItem(j, "input_ids"), *types = cJSON_GetObjectItem(j, "token_type_ids"),
                *logits = cJSON_GetObjectItem(j, "logits"), *probs = cJSON_GetObjectItem(j, "probs"),
                *label = cJSON_GetObjectItem(j, "label"), *id = cJSON_GetObjectItem(j, "id");
    if (!cJSON_IsArray(ids) || !cJSON_IsArray(logits) || !cJSON_IsArray(probs) || !cJSON_IsString(label)) {
        CHECK(0, "%s: malformed logits.jsonl row %.80s", r->g->name, line);
        cJSON_Delete(j);
        return;
    }
    packed one = {0};
    packed_add(&one, ids, types, -1, logits, L, label->valuestring);
    char what[96];
    snprintf(what, sizeof what, "logits.jsonl %s", id->valuestring);
    float *got = run_packed(r, &one, what, &r->max_logit);

    float p[BERT_MAX_LABELS];
    memcpy(p, got, (size_t)L * sizeof *p);
    bert_probabilities(r->m, p);
    int i = 0;
    for (const cJSON *w = probs->child; w && i < L; w = w->next, i++) {
        float d = fabsf(p[i] - (float)w->valuedouble);
        r->max_prob = fmaxf(r->max_prob, d);
        CHECK(d <= PROB_TOL, "%s %s: |prob[%d] - golden| = %.3g", r->g->name, what, i, d);
    }

    packed_add(&r->all, ids, types, -1, logits, L, label->valuestring);
    r->single = grow(r->single, (size_t)(r->rows + 1) * L, sizeof *r->single);
    memcpy(r->single + (size_t)r->rows * L, got, (size_t)L * sizeof *got);
    r->rows++;
    free(got);
    packed_free(&one);
    cJSON_Delete(j);
}

/* A padded reference batch, run packed: padding is stripped using the attention mask. */
static void batch_row(char *line, size_t len, void *ctx)
{
    run *r = ctx;
    int L = r->m->cfg.n_labels;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *ids = cJSON_GetObjectItem(j, "input_ids"), *mask = cJSON_GetObjectItem(j, "attention_mask"),
                *types = cJSON_GetObjectItem(j, "token_type_ids"),
                *batched = cJSON_GetObjectItem(j, "logits_batched"),
                *single = cJSON_GetObjectItem(j, "logits_single"), *bid = cJSON_GetObjectItem(j, "batch_id");
    if (!cJSON_IsArray(ids) || !cJSON_IsArray(mask) || !cJSON_IsArray(batched) || !cJSON_IsArray(single)) {
        CHECK(0, "%s: malformed batch.jsonl row", r->g->name);
        cJSON_Delete(j);
        return;
    }
    packed pb = {0}, ps = {0};
    const cJSON *row = ids->child, *m = mask->child, *t = types ? types->child : NULL,
                *wb = batched->child, *ws = single->child;
    for (; row && m; row = row->next, m = m->next, wb = wb->next, ws = ws->next) {
        /* The reference pads on the right: the mask is n ones, then zeros. */
        int n = 0, k = 0, prefix = 1;
        for (const cJSON *x = m->child; x; x = x->next, k++) {
            n += x->valueint != 0;
            prefix &= (x->valueint != 0) == (k < n);
        }
        CHECK(prefix, "%s batch %d: the attention mask is not ones then zeros", r->g->name, bid->valueint);
        packed_add(&pb, row, t, n, wb, L, NULL);
        packed_add(&ps, row, t, n, ws, L, NULL);
        t = t ? t->next : NULL;
    }
    char what[64];
    snprintf(what, sizeof what, "batch.jsonl batch %d", bid->valueint);
    float *got = run_packed(r, &pb, what, &r->max_batch);
    /* The same result against the single-sequence references. */
    for (int s = 0; s < ps.n_seqs; s++)
        for (int i = 0; i < L; i++) {
            float d = fabsf(got[(size_t)s * L + i] - ps.want[(size_t)s * L + i]);
            r->max_batch = fmaxf(r->max_batch, d);
            CHECK(d <= r->g->logit_tol, "%s %s seq %d: |logit - logits_single| = %.3g", r->g->name, what, s, d);
        }
    free(got);
    packed_free(&pb);
    packed_free(&ps);
    cJSON_Delete(j);
}

static void check_intermediates(run *r)
{
    char rel[256], err[BS_ERR_LEN];
    snprintf(rel, sizeof rel, "golden/%s/intermediates.json", r->g->name);
    size_t len;
    char *text = read_whole_file(shared_path(rel), SIZE_MAX, &len, err);
    CHECK(text, "%s", err);
    cJSON *root = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    CHECK(cJSON_IsArray(root) && cJSON_GetArraySize(root) > 0, "%s: malformed intermediates.json", r->g->name);
    const bert_config *c = &r->m->cfg;
    int H = c->hidden, L = c->n_labels, cases = 0;
    for (const cJSON *item = root ? root->child : NULL; item; item = item->next) {
        const cJSON *ids = cJSON_GetObjectItem(item, "input_ids"), *hs = cJSON_GetObjectItem(item, "hidden_states");
        packed one = {0};
        packed_add(&one, ids, cJSON_GetObjectItem(item, "token_type_ids"), -1,
                   cJSON_GetObjectItem(item, "logits"), L, NULL);
        int T = one.lens[0];
        float *hidden = grow(NULL, (size_t)(c->n_layers + 1) * T * H, sizeof *hidden);
        float logits[BERT_MAX_LABELS];
        bert_batch b = {one.ids, one.types, one.lens, 1};
        CHECK(bert_forward_debug(r->m, &b, logits, hidden, &r->scratch, err) == 0, "%s", err);
        CHECK(cJSON_GetArraySize(hs) == c->n_layers + 1, "%s: %d hidden states", r->g->name,
              cJSON_GetArraySize(hs));
        int l = 0, values = 0;
        for (const cJSON *layer = hs->child; layer && l <= c->n_layers; layer = layer->next, l++) {
            int t = 0;
            for (const cJSON *tok = layer->child; tok && t < T; tok = tok->next, t++) {
                int h = 0;
                for (const cJSON *v = tok->child; v && h < H; v = v->next, h++, values++) {
                    float d = fabsf(hidden[((size_t)l * T + t) * H + h] - (float)v->valuedouble);
                    r->max_hidden = fmaxf(r->max_hidden, d);
                    CHECK(d <= HIDDEN_TOL, "%s intermediates case %d: hidden state %d token %d dim %d off by %.3g",
                          r->g->name, cases, l, t, h, d);
                }
            }
        }
        CHECK(values == (c->n_layers + 1) * T * H, "%s intermediates case %d: %d values compared",
              r->g->name, cases, values);
        for (int i = 0; i < L; i++)
            CHECK(fabsf(logits[i] - one.want[i]) <= r->g->logit_tol, "%s intermediates case %d: logit %d",
                  r->g->name, cases, i);
        free(hidden);
        packed_free(&one);
        cases++;
    }
    cJSON_Delete(root);
}

/* PhraseBank in packed batches of 64: end-to-end coverage with realistic lengths. */
typedef struct {
    run *r;
    packed p;
} phrase_ctx;

static void phrase_flush(phrase_ctx *pc)
{
    if (pc->p.n_seqs == 0)
        return;
    free(run_packed(pc->r, &pc->p, "phrasebank_logits.jsonl", &pc->r->max_phrase));
    packed_reset(&pc->p);
}

static void phrase_row(char *line, size_t len, void *ctx)
{
    phrase_ctx *pc = ctx;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const cJSON *ids = cJSON_GetObjectItem(j, "input_ids"), *logits = cJSON_GetObjectItem(j, "logits"),
                *label = cJSON_GetObjectItem(j, "label");
    if (cJSON_IsArray(ids) && cJSON_IsArray(logits) && cJSON_IsString(label))
        packed_add(&pc->p, ids, NULL, -1, logits, pc->r->m->cfg.n_labels, label->valuestring);
    else
        CHECK(0, "%s: malformed phrasebank row", pc->r->g->name);
    cJSON_Delete(j);
    if (pc->p.n_seqs == 64)
        phrase_flush(pc);
}

static void check_meta(run *r, const char *dir)
{
    char rel[256], err[BS_ERR_LEN], path[BS_PATH_LEN], hex[65];
    snprintf(rel, sizeof rel, "golden/%s/meta.json", r->g->name);
    size_t len;
    char *text = read_whole_file(shared_path(rel), SIZE_MAX, &len, err);
    cJSON *meta = text ? cJSON_ParseWithLength(text, len) : NULL;
    free(text);
    const cJSON *sha = cJSON_GetObjectItem(meta, "weights_sha256"), *labels = cJSON_GetObjectItem(meta, "labels");
    CHECK(cJSON_IsString(sha), "%s: meta.json has no weights_sha256", r->g->name);
    path_join(path, dir, "model.safetensors", err);
    CHECK(sha256_file(path, hex, err) == 0, "%s", err);
    if (cJSON_IsString(sha))
        CHECK(!strcmp(hex, sha->valuestring), "%s: sha256 %s, meta.json says %s", r->g->name, hex,
              sha->valuestring);
    CHECK(cJSON_GetArraySize(labels) == r->m->cfg.n_labels, "%s: label count", r->g->name);
    int i = 0;
    for (const cJSON *l = labels ? labels->child : NULL; l && i < r->m->cfg.n_labels; l = l->next, i++)
        CHECK(!strcmp(l->valuestring, r->m->cfg.labels[i]), "%s: label %d is %s, meta.json says %s",
              r->g->name, i, r->m->cfg.labels[i], l->valuestring);
    cJSON_Delete(meta);
}

static void check_model(const golden_model *g)
{
    char rel[256], dir[BS_PATH_LEN], err[BS_ERR_LEN];
    snprintf(rel, sizeof rel, "models/%s", g->name);
    snprintf(dir, sizeof dir, "%s", shared_path(rel));
    run r = {.g = g};
    r.m = bert_model_load(dir, err);
    CHECK(r.m, "%s: %s", g->name, err);
    if (!r.m)
        return;
    check_meta(&r, dir);
    int L = r.m->cfg.n_labels;

    snprintf(rel, sizeof rel, "golden/%s/logits.jsonl", g->name);
    int rows = for_each_line(shared_path(rel), logits_row, &r);
    CHECK(rows == r.rows && rows > 0, "%s: %d logits rows, %d run", g->name, rows, r.rows);

    /* Every golden row in one packed batch: each sequence as if it ran alone. */
    float *mixed = run_packed(&r, &r.all, "mixed batch of all rows", &r.max_mixed);
    for (int s = 0; s < r.rows; s++)
        for (int i = 0; i < L; i++) {
            float d = fabsf(mixed[(size_t)s * L + i] - r.single[(size_t)s * L + i]);
            CHECK(d <= g->logit_tol, "%s mixed batch seq %d: |batched - single| = %.3g", g->name, s, d);
        }
    free(mixed);

    snprintf(rel, sizeof rel, "golden/%s/batch.jsonl", g->name);
    CHECK(for_each_line(shared_path(rel), batch_row, &r) > 0, "%s: no batches", g->name);
    check_intermediates(&r);
    if (g->phrasebank) {
        phrase_ctx pc = {.r = &r};
        snprintf(rel, sizeof rel, "golden/%s/phrasebank_logits.jsonl", g->name);
        CHECK(for_each_line(shared_path(rel), phrase_row, &pc) == g->phrasebank, "%s: phrasebank rows", g->name);
        phrase_flush(&pc);
        packed_free(&pc.p);
    }
    char phrase[32] = "n/a";
    if (g->phrasebank)
        snprintf(phrase, sizeof phrase, "%.2e", r.max_phrase);
    printf("%-15s %-10s %-4s max |dlogit| single %.2e  padded batches %.2e  mixed batch %.2e  phrasebank %s  "
           "max |dprob| %.2e  max |dhidden| %.2e  label mismatches %d\n",
           g->name, bert_family_name(r.m->cfg.family), r.m->weights_dtype, r.max_logit, r.max_batch, r.max_mixed, phrase, r.max_prob,
           r.max_hidden, r.label_mismatches);
    packed_free(&r.all);
    free(r.single);
    bert_scratch_free(&r.scratch);
    bert_model_free(r.m);
}

int main(void)
{
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        check_model(&MODELS[i]);
    return test_finish("test_model_golden");
}
