/* --dtype bf16 (issue 19) on finsent-mini against float32: the same label on >= 99.5% of every
 * Financial PhraseBank sentence, logits that do not depend on the batch, and a model that keeps
 * no float32 copy of the weights it packs to bf16. */
#define _GNU_SOURCE /* memrchr: a sentence may hold '@', its label follows the last one */
#include "check.h"
#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/bert.h"
#include "engine/gemm.h"
#include "engine/gemm_bf16.h"
#include "engine/model.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_AGREEMENT 0.995
#define BATCH 64

/* Every sentence of the corpus, tokenized, end to end. */
typedef struct {
    const tokenizer *tok;
    int max_len;
    struct packed_tokens toks;
    int *lens;
    int n, cap;
} corpus;

/* One `sentence@label` line of Sentences_50Agree.txt (latin-1: every byte is its code point). */
static void add_sentence(char *line, size_t len, void *ctx)
{
    corpus *c = ctx;
    while (len > 0 && line[len - 1] == '\r')
        len--;
    char *at = memrchr(line, '@', len);
    CHECK(at, "line %d has no @label", c->n + 1);
    if (!at)
        return;
    size_t text_len = (size_t)(at - line), n = 0;
    char *utf8 = malloc(2 * text_len + 1);
    for (size_t i = 0; utf8 && i < text_len; i++)
        n += (size_t)utf8_encode((unsigned char)line[i], utf8 + n);
    encoding e = {0};
    char err[BS_ERR_LEN];
    int rc = utf8 ? tokenizer_encode(c->tok, utf8, n, NULL, 0, c->max_len, &e, err) : -1;
    CHECK(rc == 0, "line %d: %s", c->n + 1, utf8 ? err : "out of memory");
    if (rc == 0 && c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 1024;
        c->lens = realloc(c->lens, (size_t)c->cap * sizeof *c->lens);
    }
    if (rc == 0 && c->lens && packed_tokens_append(&c->toks, &e) == 0)
        c->lens[c->n++] = e.n;
    encoding_free(&e);
    free(utf8);
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

/* bf16 against f32 over the corpus: labels, probabilities and (so that a bf16 model that
 * silently ran the f32 kernels fails) logits that do differ. */
static void check_agreement(const bert_model *f32, const bert_model *bf16, const corpus *c, bert_scratch *s)
{
    int L = f32->cfg.n_labels, same = 0;
    float *a = run_corpus(f32, c, s), *b = run_corpus(bf16, c, s);
    float max_dprob = 0, max_dlogit = 0;
    for (int i = 0; a && b && i < c->n; i++) {
        float *pa = a + (size_t)i * L, *pb = b + (size_t)i * L;
        for (int k = 0; k < L; k++)
            max_dlogit = fmaxf(max_dlogit, fabsf(pa[k] - pb[k]));
        same += argmax(pa, L) == argmax(pb, L);
        bert_probabilities(f32, pa);
        bert_probabilities(bf16, pb);
        for (int k = 0; k < L; k++)
            max_dprob = fmaxf(max_dprob, fabsf(pa[k] - pb[k]));
    }
    double agreement = c->n ? (double)same / c->n : 0;
    printf("bf16 kernel: %s\n", gemm_bf16_kernel_name());
    printf("finsent-mini bf16 vs f32 over %d sentences: same label on %d (%.2f%%), max |dprob| %.4f, "
           "max |dlogit| %.4f\n", c->n, same, 100 * agreement, max_dprob, max_dlogit);
    CHECK(c->n == 4846, "%d sentences, the corpus has 4846", c->n);
    CHECK(agreement >= MIN_AGREEMENT, "bf16 agrees with f32 on %.2f%% of sentences, below %.1f%%",
          100 * agreement, 100 * MIN_AGREEMENT);
    CHECK(max_dlogit > 0, "bf16 logits are f32's exactly: the bf16 products did not run");
    free(a);
    free(b);
}

/* A packed batch of the first BATCH sentences gives each one bit for bit its logits alone. */
static void check_batch_independence(const bert_model *m, const corpus *c, bert_scratch *s)
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
    printf("bf16 batch of %d vs each alone: %d differ\n", n, differ);
    CHECK(batched && differ == 0, "bf16: %d of %d sequences' logits depend on their batch", differ, n);
    free(batched);
}

/* The bf16 model holds its encoder linears as bf16 panels only: its storage is the f32
 * model's less half those matrices' float32 panels (up to each array's 64-byte alignment). */
static void check_storage(const bert_model *f32, const bert_model *bf16)
{
    const bert_config *c = &f32->cfg;
    int H = c->hidden, I = c->intermediate;
    size_t per_layer = gemm_packed_floats(3 * H, H) + gemm_packed_floats(H, H) + gemm_packed_floats(I, H) +
                       gemm_packed_floats(H, I);
    double linears = (double)per_layer * sizeof(float) * c->n_layers;
    double saved = (double)bert_model_bytes(f32) - (double)bert_model_bytes(bf16);
    printf("storage: f32 %zu bytes, bf16 %zu bytes, saved %.0f (encoder linears %.0f in f32)\n",
           bert_model_bytes(f32), bert_model_bytes(bf16), saved, linears);
    CHECK(fabs(saved - linears / 2) <= 4.0 * 64 * c->n_layers, "bf16 saves %.0f bytes, not half of %.0f", saved,
          linears);
    for (int l = 0; l < c->n_layers; l++) {
        const bert_layer *L = &bf16->layers[l];
        CHECK(!L->qkv_w && !L->attn_out_w && !L->ffn_in_w && !L->ffn_out_w, "bf16 layer %d keeps f32 weights", l);
        CHECK(L->qkv_w16 && L->attn_out_w16 && L->ffn_in_w16 && L->ffn_out_w16, "bf16 layer %d has no bf16 panels",
              l);
        CHECK(f32->layers[l].qkv_w && !f32->layers[l].qkv_w16, "f32 layer %d: not float32 panels", l);
    }
    CHECK(f32->dtype == BERT_F32 && bf16->dtype == BERT_BF16, "dtypes %d and %d", f32->dtype, bf16->dtype);
}

int main(void)
{
    char dir[BS_PATH_LEN], err[BS_ERR_LEN];
    snprintf(dir, sizeof dir, "%s", shared_path("models/finsent-mini"));
    bert_model *f32 = bert_model_load(dir, err);
    CHECK(f32, "%s", err);
    bert_model *bf16 = bert_model_load_dtype(dir, BERT_BF16, err);
    CHECK(bf16, "%s", err);
    tokenizer *tok = tokenizer_load(dir, err);
    CHECK(tok, "%s", err);
    if (!f32 || !bf16 || !tok)
        return test_finish("test_model_bf16");

    corpus c = {.tok = tok, .max_len = f32->cfg.max_positions};
    for_each_line(shared_path("data/financial_phrasebank/Sentences_50Agree.txt"), add_sentence, &c);
    bert_scratch s = {0};
    check_storage(f32, bf16);
    check_agreement(f32, bf16, &c, &s);
    check_batch_independence(bf16, &c, &s);

    bert_scratch_free(&s);
    packed_tokens_free(&c.toks);
    free(c.lens);
    tokenizer_free(tok);
    bert_model_free(f32);
    bert_model_free(bf16);
    return test_finish("test_model_bf16");
}
