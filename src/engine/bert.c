#include "engine/bert.h"

#include "common/bs_error.h"
#include "common/cpu_budget.h"
#include "engine/gemm.h"
#include "engine/gemm_bf16.h"
#include "engine/gemm_int8.h"
#include "engine/rowops.h"
#include "engine/threadpool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void bert_scratch_free(bert_scratch *s)
{
    free(s->buf);
    threadpool_free(s->pool);
    s->buf = NULL;
    s->pool = NULL;
    s->cap = 0;
}

void bert_scratch_rest(bert_scratch *s)
{
    if (s->pool)
        threadpool_rest(s->pool);
}

/* Subtracting the maximum keeps expf finite whatever the scores are. */
static void softmax(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i] > max ? x[i] : max;
    float sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    for (int i = 0; i < n; i++)
        x[i] /= sum;
}

void bert_probabilities(const bert_model *m, float *scores)
{
    int n = m->cfg.n_labels;
    if (!m->cfg.multi_label) {
        softmax(scores, n);
        return;
    }
    /* Each branch takes expf of a non-positive number, so neither overflows. */
    for (int i = 0; i < n; i++) {
        float x = scores[i];
        if (x >= 0) {
            scores[i] = 1.0f / (1.0f + expf(-x));
        } else {
            float e = expf(x);
            scores[i] = e / (1.0f + e);
        }
    }
}

/* ---- the parallel steps of a forward pass ---- */

/* x = LayerNorm(y + bias + x) over rows, ROWS_PER_TASK rows a task. */
#define ROWS_PER_TASK 16

struct residual_job {
    float *x, *y;
    const float *bias, *g, *b;
    int n_rows, n;
    float eps;
};

static void residual_task(void *ctx, int task, int thread)
{
    const struct residual_job *j = ctx;
    (void)thread;
    int r0 = task * ROWS_PER_TASK, rows = j->n_rows - r0 < ROWS_PER_TASK ? j->n_rows - r0 : ROWS_PER_TASK;
    for (int r = r0; r < r0 + rows; r++)
        rowop_layernorm(j->x + (size_t)r * j->n, j->y + (size_t)r * j->n, j->bias, j->g, j->b, j->n, j->eps);
}

static void residual_layernorm(threadpool *pool, float *x, float *y, const float *bias, const float *g,
                               const float *b, int n_rows, int n, float eps)
{
    struct residual_job j = {.x = x, .y = y, .bias = bias, .g = g, .b = b, .n_rows = n_rows, .n = n, .eps = eps};
    threadpool_run(pool, (n_rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK, residual_task, &j);
}

/* Attention: one task per (sequence, head). Scores and context are GEMMs through the same
 * kernel: the head's keys are packed as the "weights" of Q · Kᵀ, its values (transposed) as
 * those of P · V, in the thread's own scratch. */
struct attention_job {
    const float *qkv;   /* packed batch rows of [q | k | v], 3H wide */
    float *ctx;         /* packed batch rows of H; with cls_only, one row per sequence */
    int cls_only;       /* only each sequence's first query ([CLS]): the last layer's */
    const int *lens;
    const size_t *offsets; /* first row of each sequence */
    int n_heads, H;
    float *thread_scratch;
    size_t per_thread;  /* floats of scratch per thread */
};

/* Floats of attention scratch per thread for sequences up to max_len tokens. */
static size_t attention_scratch(int max_len, int d)
{
    size_t t_pad = (size_t)gemm_panels(max_len) * GEMM_NR;
    return gemm_packed_floats(max_len, d) + gemm_packed_floats(d, max_len) + (size_t)max_len * t_pad;
}

static void attention_task(void *ctx, int task, int thread)
{
    const struct attention_job *j = ctx;
    int seq = task / j->n_heads, h = task % j->n_heads;
    int T = j->lens[seq], H = j->H, d = H / j->n_heads, ld = 3 * H;
    int t_pad = gemm_panels(T) * GEMM_NR;
    const float *q = j->qkv + j->offsets[seq] * (size_t)ld + (size_t)h * d;
    const float *k = q + H, *v = q + 2 * H;
    float *kp = j->thread_scratch + (size_t)thread * j->per_thread;
    float *vp = kp + gemm_packed_floats(T, d), *scores = vp + gemm_packed_floats(d, T);

    int n_queries = j->cls_only ? 1 : T;
    float *out = j->ctx + (j->cls_only ? (size_t)seq : j->offsets[seq]) * (size_t)H + (size_t)h * d;

    gemm_pack(k, ld, T, d, kp);
    gemm_pack_transposed(v, ld, d, T, vp);
    gemm_panels_run(q, ld, n_queries, kp, T, d, scores, t_pad, NULL, GEMM_STORE, 0, gemm_panels(T));
    float scale = 1.0f / sqrtf((float)d);
    for (int t = 0; t < n_queries; t++)
        rowop_softmax(scores + (size_t)t * t_pad, T, scale);
    gemm_panels_run(scores, t_pad, n_queries, vp, d, T, out, H, NULL, GEMM_STORE, 0, gemm_panels(d));
}

/* One of an encoder layer's four linear weights, in the model's dtype: exactly one is set. */
struct linear_weights {
    const float *f32;    /* gemm_pack's panels */
    const uint16_t *w16; /* gemm_pack_bf16's */
    const int8_t *w8;    /* gemm_pack_int8's */
};

/* One of an encoder layer's four linear products, C[rows][n] = A · Wᵀ (+ epilogue), in the
 * model's dtype; quant is the scratch the bf16 or int8 product rounds or quantizes A into
 * (room for gemm_bf16_scratch_size or gemm_int8_scratch_size of rows x k). */
static void layer_linear(threadpool *pool, const float *a, int rows, struct linear_weights w, int n, int k, float *c,
                         const float *bias, enum gemm_epilogue ep, void *quant)
{
    if (w.w8)
        gemm_linear_int8(pool, a, rows, w.w8, n, k, c, bias, ep, quant);
    else if (w.w16)
        gemm_linear_bf16(pool, a, rows, w.w16, n, k, c, bias, ep, quant);
    else
        gemm_linear(pool, a, rows, w.f32, n, k, c, bias, ep);
}

/* dst: each sequence's first row ([CLS]) of the packed rows x. */
static void first_rows(float *dst, const float *x, const size_t *offsets, int n_seqs, int H)
{
    for (int q = 0; q < n_seqs; q++)
        memcpy(dst + (size_t)q * H, x + offsets[q] * H, H * sizeof(float));
}

/* Word + position (+ token type) embeddings and their LayerNorm, row by row. Positions restart
 * in every sequence of the packed batch and follow the config's rule (model.h): 0..T-1 for BERT
 * and DistilBERT, HF's create_position_ids_from_input_ids for RoBERTa. */
static void embed(const bert_model *m, const bert_batch *b, float *x)
{
    const bert_config *c = &m->cfg;
    int H = c->hidden;
    size_t off = 0;
    for (int q = 0; q < b->n_seqs; q++) {
        int next = c->position_offset;
        for (int t = 0; t < b->lens[q]; t++) {
            int32_t id = b->ids[off + t];
            int pos = id == c->position_pad_id ? c->position_pad_id : next++;
            float *row = x + (off + t) * H;
            const float *w = m->word_emb + (size_t)id * H, *p = m->pos_emb + (size_t)pos * H;
            if (m->type_emb) {
                const float *ty = m->type_emb + (size_t)b->type_ids[off + t] * H;
                for (int i = 0; i < H; i++)
                    row[i] = w[i] + p[i] + ty[i];
            } else {
                for (int i = 0; i < H; i++)
                    row[i] = w[i] + p[i];
            }
            rowop_layernorm(row, NULL, NULL, m->emb_ln_g, m->emb_ln_b, H, c->layer_norm_eps);
        }
        off += (size_t)b->lens[q];
    }
}

static int check_batch(const bert_model *m, const bert_batch *b, size_t *n_tokens, int *max_len, char *err)
{
    const bert_config *c = &m->cfg;
    if (b->n_seqs < 1 || !b->lens || !b->ids || !b->type_ids)
        return bs_fail(err, "empty batch: at least one sequence is needed");
    size_t off = 0;
    *max_len = 0;
    for (int s = 0; s < b->n_seqs; s++) {
        int len = b->lens[s];
        if (len < 1 || len > c->max_tokens)
            return bs_fail(err, "sequence %d has %d tokens; the model takes 1 to %d (max_position_embeddings %d)",
                           s, len, c->max_tokens, c->max_positions);
        for (int t = 0; t < len; t++) {
            int32_t id = b->ids[off + t], type = b->type_ids[off + t];
            if (id < 0 || id >= c->vocab_size)
                return bs_fail(err, "token %d of sequence %d has id %d outside the vocabulary of %d",
                               t, s, (int)id, c->vocab_size);
            if (c->type_vocab_size && (type < 0 || type >= c->type_vocab_size)) /* 0: ignored */
                return bs_fail(err, "token %d of sequence %d has token type %d; the model has %d types",
                               t, s, (int)type, c->type_vocab_size);
        }
        off += (size_t)len;
        /* The GEMM (gemm.c) takes int sizes, and n x 4H must stay inside one. */
        if (off > (size_t)INT32_MAX / 4 / (size_t)(c->intermediate > c->hidden ? c->intermediate : c->hidden))
            return bs_fail(err, "batch too large: %zu tokens", off);
        *max_len = len > *max_len ? len : *max_len;
    }
    *n_tokens = off;
    return 0;
}

int bert_forward(const bert_model *m, const bert_batch *b, float *logits, bert_scratch *s, char *err)
{
    return bert_forward_debug(m, b, logits, NULL, s, err);
}

int bert_forward_debug(const bert_model *m, const bert_batch *b, float *logits, float *hidden,
                       bert_scratch *s, char *err)
{
    const bert_config *c = &m->cfg;
    size_t N = 0;
    int max_len = 0;
    if (check_batch(m, b, &N, &max_len, err) != 0)
        return -1;
    if (!s->pool) {
        s->pool = threadpool_create(s->n_threads > 0 ? s->n_threads : cpu_count_available(), err);
        if (!s->pool)
            return -1;
    }
    threadpool *pool = s->pool;
    int H = c->hidden, F = c->intermediate, S = b->n_seqs, n = (int)N, d = H / c->n_heads;
    size_t wide = (size_t)(F > H ? F : H), n_threads = (size_t)threadpool_size(pool);
    size_t per_thread = attention_scratch(max_len, d);

    /* One scratch block: activations x, fused q|k|v, attention context, the sublayer output
     * (also the FFN's intermediate), each thread's attention scratch, the pooler rows, a bf16 or
     * int8 model's rounded or quantized A (N rows of the widest k, in floats), and the
     * sequences' first rows. */
    size_t quant_bytes = m->dtype == BERT_BF16   ? gemm_bf16_scratch_size(n, (int)wide) * sizeof(uint16_t)
                         : m->dtype == BERT_INT8 ? gemm_int8_scratch_size(n, (int)wide)
                                                 : 0;
    size_t quant_floats = m->dtype == BERT_F32 ? 0 : (quant_bytes / sizeof(float) + 16) & ~(size_t)15;
    size_t need = N * H + N * 3 * H + N * H + N * wide + n_threads * per_thread + 2 * (size_t)S * H + quant_floats +
                  (size_t)S * sizeof(size_t) / sizeof(float) + 1;
    if (s->cap < need) {
        free(s->buf);
        s->buf = malloc(need * sizeof(float));
        s->cap = s->buf ? need : 0;
        if (!s->buf)
            return bs_fail(err, "out of memory for a batch of %zu tokens", N);
    }
    float *x = s->buf, *qkv = x + N * H, *ctx = qkv + N * 3 * H, *tmp = ctx + N * H;
    float *attn = tmp + N * wide, *pool_in = attn + n_threads * per_thread, *pooled = pool_in + (size_t)S * H;
    void *quant = pooled + (size_t)S * H;
    size_t *offsets = (size_t *)(void *)(pooled + (size_t)S * H + quant_floats);

    size_t off = 0;
    for (int q = 0; q < S; q++) {
        offsets[q] = off;
        off += (size_t)b->lens[q];
    }
    embed(m, b, x);
    if (hidden)
        memcpy(hidden, x, N * H * sizeof(float));

    struct attention_job aj = {.qkv = qkv, .ctx = ctx, .lens = b->lens, .offsets = offsets,
                               .n_heads = c->n_heads, .H = H, .thread_scratch = attn, .per_thread = per_thread};
    bool cls_only = false;
    for (int l = 0; l < c->n_layers; l++) {
        const bert_layer *L = &m->layers[l];
        /* Only the [CLS] rows of the last layer reach the pooler, so (unless every hidden
         * state is wanted) the last layer runs attention for those queries alone (all keys
         * and values) and the rest of the layer on S rows instead of N: about a twelfth of
         * BERT-base's work. Each row's arithmetic is the same either way. */
        cls_only = !hidden && l == c->n_layers - 1;
        layer_linear(pool, x, n, (struct linear_weights){L->qkv_w, L->qkv_w16, L->qkv_w8}, 3 * H, H, qkv, L->qkv_b,
                     GEMM_BIAS, quant);
        aj.cls_only = cls_only;
        threadpool_run(pool, S * c->n_heads, attention_task, &aj);
        float *rows_x = x; /* the residual stream the rest of the layer updates */
        int rows = n;
        if (cls_only) {
            first_rows(pool_in, x, offsets, S, H);
            rows_x = pool_in;
            rows = S;
        }
        layer_linear(pool, ctx, rows, (struct linear_weights){L->attn_out_w, L->attn_out_w16, L->attn_out_w8}, H, H,
                     tmp, NULL, GEMM_STORE, quant);
        residual_layernorm(pool, rows_x, tmp, L->attn_out_b, L->ln1_g, L->ln1_b, rows, H, c->layer_norm_eps);
        layer_linear(pool, rows_x, rows, (struct linear_weights){L->ffn_in_w, L->ffn_in_w16, L->ffn_in_w8}, F, H, tmp,
                     L->ffn_in_b, GEMM_BIAS_GELU, quant);
        /* ctx is free again */
        layer_linear(pool, tmp, rows, (struct linear_weights){L->ffn_out_w, L->ffn_out_w16, L->ffn_out_w8}, H, F, ctx,
                     NULL, GEMM_STORE, quant);
        residual_layernorm(pool, rows_x, ctx, L->ffn_out_b, L->ln2_g, L->ln2_b, rows, H, c->layer_norm_eps);
        if (hidden)
            memcpy(hidden + (size_t)(l + 1) * N * H, x, N * H * sizeof(float));
    }
    if (!cls_only)
        first_rows(pool_in, x, offsets, S, H);

    /* The head: dense + tanh (BERT's pooler, RoBERTa's classifier.dense) or + ReLU
     * (DistilBERT's pre_classifier), then the classifier. */
    gemm_linear(pool, pool_in, S, m->pool_w, H, H, pooled, m->pool_b, GEMM_BIAS);
    for (size_t i = 0; i < (size_t)S * H; i++)
        pooled[i] = c->head_act == BERT_HEAD_RELU ? fmaxf(pooled[i], 0.0f) : tanhf(pooled[i]);
    gemm_linear(pool, pooled, S, m->cls_w, c->n_labels, H, logits, m->cls_b, GEMM_BIAS);
    return 0;
}
