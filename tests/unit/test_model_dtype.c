/* A reduced-precision dtype (issue 19; argv[1]: bf16 or int8) on finsent-mini against float32:
 * the same label on at least the dtype's share of every Financial PhraseBank sentence (max
 * |Δprob| printed), accuracy and macro-F1 on the held-out test split in both dtypes, logits that
 * do not depend on the batch, and a model that keeps no float32 copy of the weights it packs.
 * ctest runs it once per dtype, as test_model_bf16 and test_model_int8. */
#define _GNU_SOURCE /* memrchr: a sentence may hold '@', its label follows the last one */
#include "check.h"
#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/bert.h"
#include "engine/gemm.h"
#include "engine/gemm_bf16.h"
#include "engine/gemm_int8.h"
#include "engine/model.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 64

/* What differs between the dtypes under test; everything else is checked the same way. */
typedef struct {
    const char *name; /* argv[1], bert_dtype_name's */
    enum bert_dtype dtype;
    double min_agreement; /* share of the corpus on which it must give f32's label */
    /* Its test-split accuracy may be below f32's by at most this: 0.7350 there, 483 sentences,
     * so a point is about 5 sentences. */
    double max_accuracy_loss;
    size_t (*packed_size)(int n, int k); /* an n x k linear's packed weights, in units of: */
    size_t unit_bytes;
    double max_panel_share; /* of the same linears' float32 panels */
    const char *(*kernel_name)(void);
} dtype_case;

/* bf16 packs k rounded up to even (half of f32's panels at most a column over); int8 k rounded
 * up to 4 plus a sum and a scale per column (about a quarter). Each model's layers hold only
 * their own dtype's panels (bert_layer's *_w, *_w16 or *_w8): see count_panels. */
static const dtype_case dtype_cases[] = {
    {"bf16", BERT_BF16, 0.995, 0.01, gemm_packed_bf16_size, sizeof(uint16_t), 0.51, gemm_bf16_kernel_name},
    {"int8", BERT_INT8, 0.990, 0.02, gemm_packed_int8_size, sizeof(int8_t), 0.26, gemm_int8_kernel_name},
};

/* Every sentence of a corpus, tokenized, end to end. */
typedef struct {
    const tokenizer *tok;
    int max_len;
    struct packed_tokens toks;
    const bert_model *model; /* for the label names */
    bool tsv;                /* a split file (label<TAB>sentence, UTF-8), else sentence@label latin-1 */
    int *lens, *gold;        /* gold: the label's id (-1 when the model has no such label) */
    int n, cap;
} corpus;

/* The model's id for a label name, or -1. */
static int label_id(const bert_model *m, const char *name, size_t len)
{
    for (int i = 0; i < m->cfg.n_labels; i++)
        if (strlen(m->cfg.labels[i]) == len && !memcmp(m->cfg.labels[i], name, len))
            return i;
    return -1;
}

/* One `sentence@label` line of Sentences_50Agree.txt (latin-1: every byte is its code point),
 * or one `label<TAB>sentence` line of a split file (UTF-8). */
static void add_sentence(char *line, size_t len, void *ctx)
{
    corpus *c = ctx;
    while (len > 0 && line[len - 1] == '\r')
        len--;
    char *sep = c->tsv ? memchr(line, '\t', len) : memrchr(line, '@', len);
    CHECK(sep, "line %d has no label", c->n + 1);
    if (!sep)
        return;
    const char *text = c->tsv ? sep + 1 : line;
    size_t text_len = c->tsv ? len - (size_t)(sep + 1 - line) : (size_t)(sep - line), n = 0;
    int gold = c->tsv ? label_id(c->model, line, (size_t)(sep - line))
                      : label_id(c->model, sep + 1, len - (size_t)(sep + 1 - line));
    char *utf8 = malloc(2 * text_len + 1);
    for (size_t i = 0; utf8 && i < text_len; i++) {
        if (c->tsv)
            utf8[n++] = text[i];
        else
            n += (size_t)utf8_encode((unsigned char)text[i], utf8 + n);
    }
    encoding e = {0};
    char err[BS_ERR_LEN];
    int rc = utf8 ? tokenizer_encode(c->tok, utf8, n, NULL, 0, c->max_len, &e, err) : -1;
    CHECK(rc == 0, "line %d: %s", c->n + 1, utf8 ? err : "out of memory");
    if (rc == 0 && c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->lens = realloc(c->lens, (size_t)c->cap * sizeof *c->lens);
        c->gold = realloc(c->gold, (size_t)c->cap * sizeof *c->gold);
    }
    if (rc == 0 && c->lens && c->gold && packed_tokens_append(&c->toks, &e) == 0) {
        c->gold[c->n] = gold;
        c->lens[c->n++] = e.n;
    }
    encoding_free(&e);
    free(utf8);
}

static void corpus_free(corpus *c)
{
    packed_tokens_free(&c->toks);
    free(c->lens), free(c->gold);
}

/* Logits of sequences [first, first + count) of the corpus, run as one packed batch. */
static void run_batch(const bert_model *m, const corpus *c, size_t token0, int first, int count, float *logits,
                      bert_scratch *s)
{
    char err[BS_ERR_LEN];
    bert_batch b = {.ids = c->toks.ids + token0, .type_ids = c->toks.type_ids + token0, .lens = c->lens + first,
                    .n_seqs = count};
    CHECK(bert_forward(m, &b, logits, s, err) == 0, "%s", err);
}

/* The whole corpus in batches of BATCH: n x n_labels logits (the caller frees them). */
static float *run_corpus(const bert_model *m, const corpus *c, bert_scratch *s)
{
    int L = m->cfg.n_labels;
    float *logits = calloc((size_t)c->n * L, sizeof(float));
    size_t token0 = 0;
    for (int first = 0; logits && first < c->n; first += BATCH) {
        int count = c->n - first < BATCH ? c->n - first : BATCH;
        run_batch(m, c, token0, first, count, logits + (size_t)first * L, s);
        for (int i = first; i < first + count; i++)
            token0 += (size_t)c->lens[i];
    }
    return logits;
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        best = x[i] > x[best] ? i : best;
    return best;
}

/* The dtype against f32 over the corpus: labels, probabilities and (so that a model that
 * silently ran the f32 kernels fails) logits that do differ. */
static void check_agreement(const dtype_case *d, const bert_model *f32, const bert_model *low, const corpus *c,
                            bert_scratch *s)
{
    int L = f32->cfg.n_labels, same = 0;
    float *a = run_corpus(f32, c, s), *b = run_corpus(low, c, s);
    float max_dprob = 0, max_dlogit = 0;
    for (int i = 0; a && b && i < c->n; i++) {
        float *pa = a + (size_t)i * L, *pb = b + (size_t)i * L;
        for (int k = 0; k < L; k++)
            max_dlogit = fmaxf(max_dlogit, fabsf(pa[k] - pb[k]));
        same += argmax(pa, L) == argmax(pb, L);
        bert_probabilities(f32, pa);
        bert_probabilities(low, pb);
        for (int k = 0; k < L; k++)
            max_dprob = fmaxf(max_dprob, fabsf(pa[k] - pb[k]));
    }
    double agreement = c->n ? (double)same / c->n : 0;
    printf("%s kernel: %s\n", d->name, d->kernel_name());
    printf("finsent-mini %s vs f32 over %d sentences: same label on %d (%.2f%%), max |dprob| %.4f, "
           "max |dlogit| %.4f\n", d->name, c->n, same, 100 * agreement, max_dprob, max_dlogit);
    CHECK(c->n == 4846, "%d sentences, the corpus has 4846", c->n);
    CHECK(agreement >= d->min_agreement, "%s agrees with f32 on %.2f%% of sentences, below %.1f%%", d->name,
          100 * agreement, 100 * d->min_agreement);
    CHECK(max_dlogit > 0, "%s logits are f32's exactly: the %s products did not run", d->name, d->name);
    free(a);
    free(b);
}

/* Accuracy and macro-F1 (the mean over labels of 2PR / (P + R)) of a model on a labelled
 * corpus; *accuracy and the return value. */
static double macro_f1(const bert_model *m, const corpus *c, bert_scratch *s, double *accuracy)
{
    int L = m->cfg.n_labels, correct = 0;
    int *tp = calloc((size_t)L, sizeof *tp), *predicted = calloc((size_t)L, sizeof *predicted),
        *actual = calloc((size_t)L, sizeof *actual);
    float *logits = run_corpus(m, c, s);
    for (int i = 0; logits && tp && predicted && actual && i < c->n; i++) {
        int p = argmax(logits + (size_t)i * L, L), g = c->gold[i];
        CHECK(g >= 0, "test split line %d: a label the model does not have", i + 1);
        if (g < 0)
            continue;
        correct += p == g;
        tp[p] += p == g;
        predicted[p]++;
        actual[g]++;
    }
    double f1 = 0;
    for (int k = 0; tp && predicted && actual && k < L; k++) {
        double precision = predicted[k] ? (double)tp[k] / predicted[k] : 0, recall = actual[k] ? (double)tp[k] / actual[k] : 0;
        f1 += precision + recall > 0 ? 2 * precision * recall / (precision + recall) / L : 0;
    }
    *accuracy = c->n ? (double)correct / c->n : 0;
    free(tp), free(predicted), free(actual), free(logits);
    return f1;
}

/* splits/test.tsv in both dtypes: printed, and the dtype within max_accuracy_loss of f32. */
static void check_test_split(const dtype_case *d, const bert_model *f32, const bert_model *low,
                             const tokenizer *tok, bert_scratch *s)
{
    corpus t = {.tok = tok, .max_len = f32->cfg.max_positions, .model = f32, .tsv = true};
    for_each_line(shared_path("data/financial_phrasebank/splits/test.tsv"), add_sentence, &t);
    double acc_f32, acc_low, f1_f32 = macro_f1(f32, &t, s, &acc_f32), f1_low = macro_f1(low, &t, s, &acc_low);
    printf("splits/test.tsv (%d sentences): f32 accuracy %.4f macro-F1 %.4f; %s accuracy %.4f macro-F1 %.4f\n",
           t.n, acc_f32, f1_f32, d->name, acc_low, f1_low);
    CHECK(t.n == 483, "%d test sentences, the split has 483", t.n);
    CHECK(fabs(acc_f32 - 0.7350) < 5e-5, "f32 test accuracy %.4f, its model card says 0.7350", acc_f32);
    CHECK(acc_low >= acc_f32 - d->max_accuracy_loss, "%s test accuracy %.4f, f32's %.4f, more than %.2f below",
          d->name, acc_low, acc_f32, d->max_accuracy_loss);
    corpus_free(&t);
}

/* A packed batch of the first BATCH sentences gives each one bit for bit its logits alone. */
static void check_batch_independence(const dtype_case *d, const bert_model *m, const corpus *c, bert_scratch *s)
{
    int L = m->cfg.n_labels, n = c->n < BATCH ? c->n : BATCH, differ = 0;
    float *batched = calloc((size_t)n * L, sizeof(float)), alone[BERT_MAX_LABELS];
    run_batch(m, c, 0, 0, n, batched, s);
    size_t token0 = 0;
    for (int i = 0; batched && i < n; i++) {
        run_batch(m, c, token0, i, 1, alone, s);
        differ += memcmp(alone, batched + (size_t)i * L, (size_t)L * sizeof(float)) != 0;
        token0 += (size_t)c->lens[i];
    }
    printf("%s batch of %d vs each alone: %d differ\n", d->name, n, differ);
    CHECK(batched && differ == 0, "%s: %d of %d sequences' logits depend on their batch", d->name, differ, n);
    free(batched);
}

/* How many of a layer's four linear weights it holds as panels of each dtype. */
static void count_panels(const bert_layer *L, int n[3])
{
    n[BERT_F32] = !!L->qkv_w + !!L->attn_out_w + !!L->ffn_in_w + !!L->ffn_out_w;
    n[BERT_BF16] = !!L->qkv_w16 + !!L->attn_out_w16 + !!L->ffn_in_w16 + !!L->ffn_out_w16;
    n[BERT_INT8] = !!L->qkv_w8 + !!L->attn_out_w8 + !!L->ffn_in_w8 + !!L->ffn_out_w8;
}

/* Each layer of a model holds its four linears as panels of its own dtype and no other. */
static void check_layer_panels(const bert_model *m, enum bert_dtype dtype)
{
    for (int l = 0; l < m->cfg.n_layers; l++) {
        int n[3];
        count_panels(&m->layers[l], n);
        for (int k = BERT_F32; k <= BERT_INT8; k++)
            CHECK(n[k] == (k == (int)dtype ? 4 : 0), "%s model, layer %d: %d of 4 linears as %s panels",
                  bert_dtype_name(dtype), l, n[k], bert_dtype_name((enum bert_dtype)k));
    }
}

/* The model holds its encoder linears in its dtype's panels only: its storage is the f32
 * model's less those matrices' float32 panels plus their own (each array rounded up to 64
 * bytes). */
static void check_storage(const dtype_case *d, const bert_model *f32, const bert_model *low)
{
    const bert_config *c = &f32->cfg;
    int H = c->hidden, I = c->intermediate;
    size_t per_layer = gemm_packed_floats(3 * H, H) + gemm_packed_floats(H, H) + gemm_packed_floats(I, H) +
                       gemm_packed_floats(H, I);
    size_t per_layer_low = d->packed_size(3 * H, H) + d->packed_size(H, H) + d->packed_size(I, H) +
                           d->packed_size(H, I);
    double linears = (double)per_layer * sizeof(float) * c->n_layers;
    double linears_low = (double)per_layer_low * d->unit_bytes * c->n_layers;
    double saved = (double)bert_model_bytes(f32) - (double)bert_model_bytes(low);
    printf("storage: f32 %zu bytes, %s %zu bytes, saved %.0f (encoder linears %.0f in f32, %.0f in %s)\n",
           bert_model_bytes(f32), d->name, bert_model_bytes(low), saved, linears, linears_low, d->name);
    CHECK(fabs(saved - (linears - linears_low)) <= 4.0 * 64 * c->n_layers, "%s saves %.0f bytes, not %.0f", d->name,
          saved, linears - linears_low);
    CHECK(linears_low < d->max_panel_share * linears, "%s panels take %.0f bytes, over %.2f of %.0f", d->name,
          linears_low, d->max_panel_share, linears);
    check_layer_panels(f32, BERT_F32);
    check_layer_panels(low, d->dtype);
    CHECK(f32->dtype == BERT_F32 && low->dtype == d->dtype, "dtypes %d and %d", f32->dtype, low->dtype);
    enum bert_dtype parsed;
    CHECK(bert_dtype_parse(d->name, &parsed) == 0 && parsed == d->dtype && !strcmp(bert_dtype_name(d->dtype), d->name),
          "the name %s", d->name);
}

static const dtype_case *find_case(const char *name)
{
    for (size_t i = 0; name && i < sizeof dtype_cases / sizeof dtype_cases[0]; i++)
        if (!strcmp(dtype_cases[i].name, name))
            return &dtype_cases[i];
    return NULL;
}

int main(int argc, char **argv)
{
    const dtype_case *d = find_case(argc == 2 ? argv[1] : NULL);
    if (!d) {
        fprintf(stderr, "usage: test_model_dtype bf16|int8\n");
        return 2;
    }
    char dir[BS_PATH_LEN], err[BS_ERR_LEN], name[32];
    snprintf(name, sizeof name, "test_model_%s", d->name);
    snprintf(dir, sizeof dir, "%s", shared_path("models/finsent-mini"));
    bert_model *f32 = bert_model_load(dir, err);
    CHECK(f32, "%s", err);
    bert_model *low = bert_model_load_dtype(dir, d->dtype, err);
    CHECK(low, "%s", err);
    tokenizer *tok = tokenizer_load(dir, err);
    CHECK(tok, "%s", err);
    if (!f32 || !low || !tok)
        return test_finish(name);

    corpus c = {.tok = tok, .max_len = f32->cfg.max_positions, .model = f32};
    for_each_line(shared_path("data/financial_phrasebank/Sentences_50Agree.txt"), add_sentence, &c);
    bert_scratch s = {0};
    check_storage(d, f32, low);
    check_agreement(d, f32, low, &c, &s);
    check_test_split(d, f32, low, tok, &s);
    check_batch_independence(d, low, &c, &s);

    bert_scratch_free(&s);
    corpus_free(&c);
    tokenizer_free(tok);
    bert_model_free(f32);
    bert_model_free(low);
    return test_finish(name);
}
