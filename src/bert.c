#include "bert.h"

#include "bs_error.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INV_SQRT2 0.70710678118654752440f

void bert_scratch_free(bert_scratch *s)
{
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
}

/* y[n][out] = x[n][in] · W[out][in]ᵀ, the nn.Linear product (bias added by the caller's epilogue). */
static void linear(const float *x, const float *w, float *y, int n, int in, int out)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

/* x = LayerNorm(x) in place. Mean and variance are accumulated in double: the rows are
 * up to a few thousand wide and hold outliers, and float sums would cost accuracy. */
static void layernorm_row(float *x, const float *g, const float *b, int n, float eps)
{
    double sum = 0, sq = 0;
    for (int i = 0; i < n; i++)
        sum += x[i];
    double mean = sum / n;
    for (int i = 0; i < n; i++) {
        double d = x[i] - mean;
        sq += d * d;
    }
    float m = (float)mean, rstd = (float)(1.0 / sqrt(sq / n + eps));
    for (int i = 0; i < n; i++)
        x[i] = (x[i] - m) * rstd * g[i] + b[i];
}

/* x = LayerNorm(y + bias + x), the epilogue after each sublayer's output projection.
 * y is clobbered. */
static void bias_residual_layernorm(float *x, float *y, const float *bias, const float *g,
                                    const float *b, int n_rows, int n, float eps)
{
    for (int r = 0; r < n_rows; r++) {
        float *xr = x + (size_t)r * n, *yr = y + (size_t)r * n;
        for (int i = 0; i < n; i++)
            xr[i] = yr[i] + bias[i] + xr[i];
        layernorm_row(xr, g, b, n, eps);
    }
}

/* y = gelu(y + bias) with HF's exact erf GELU. */
static void bias_gelu(float *y, const float *bias, int n_rows, int n)
{
    for (int r = 0; r < n_rows; r++) {
        float *yr = y + (size_t)r * n;
        for (int i = 0; i < n; i++) {
            float v = yr[i] + bias[i];
            yr[i] = 0.5f * v * (1.0f + erff(v * INV_SQRT2));
        }
    }
}

static void add_bias(float *y, const float *bias, int n_rows, int n)
{
    for (int r = 0; r < n_rows; r++)
        for (int i = 0; i < n; i++)
            y[(size_t)r * n + i] += bias[i];
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

/* Multi-head self-attention of one sequence: qkv holds its T rows of [q | k | v] (3H wide),
 * ctx receives its T rows of H. */
static void attention(const float *qkv, float *ctx, float *scores, int T, int H, int n_heads)
{
    int d = H / n_heads, ld = 3 * H;
    float scale = 1.0f / sqrtf((float)d);
    for (int h = 0; h < n_heads; h++) {
        const float *q = qkv + h * d, *k = qkv + H + h * d, *v = qkv + 2 * H + h * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, d, scale, q, ld, k, ld, 0.0f,
                    scores, T);
        for (int t = 0; t < T; t++)
            softmax(scores + (size_t)t * T, T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, d, T, 1.0f, scores, T, v, ld, 0.0f,
                    ctx + h * d, H);
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
        if (len < 1 || len > c->max_positions)
            return bs_fail(err, "sequence %d has %d tokens; the model takes 1 to %d (max_position_embeddings)",
                           s, len, c->max_positions);
        for (int t = 0; t < len; t++) {
            int32_t id = b->ids[off + t], type = b->type_ids[off + t];
            if (id < 0 || id >= c->vocab_size)
                return bs_fail(err, "token %d of sequence %d has id %d outside the vocabulary of %d",
                               t, s, (int)id, c->vocab_size);
            if (type < 0 || type >= c->type_vocab_size)
                return bs_fail(err, "token %d of sequence %d has token type %d; the model has %d types",
                               t, s, (int)type, c->type_vocab_size);
        }
        off += (size_t)len;
        /* BLAS takes int sizes, and n x 4H must stay inside one. */
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
    int H = c->hidden, F = c->intermediate, S = b->n_seqs, n = (int)N;
    size_t wide = (size_t)(F > H ? F : H);

    /* (F, not I: cblas.h pulls in complex.h, where I is the imaginary unit.)
     * One scratch block: activations x, fused q|k|v, attention context, the sublayer output
     * (also the FFN's intermediate), one sequence-head's score matrix, and the pooler rows. */
    size_t need = N * H + N * 3 * H + N * H + N * wide + (size_t)max_len * max_len + 2 * (size_t)S * H;
    if (s->cap < need) {
        free(s->buf);
        s->buf = malloc(need * sizeof(float));
        s->cap = s->buf ? need : 0;
        if (!s->buf)
            return bs_fail(err, "out of memory for a batch of %zu tokens", N);
    }
    float *x = s->buf, *qkv = x + N * H, *ctx = qkv + N * 3 * H, *tmp = ctx + N * H;
    float *scores = tmp + N * wide, *pool_in = scores + (size_t)max_len * max_len, *pooled = pool_in + (size_t)S * H;

    /* Embeddings: positions restart at 0 in every sequence of the packed batch. */
    size_t off = 0;
    for (int q = 0; q < S; q++) {
        for (int t = 0; t < b->lens[q]; t++) {
            float *row = x + (off + t) * H;
            const float *w = m->word_emb + (size_t)b->ids[off + t] * H;
            const float *p = m->pos_emb + (size_t)t * H;
            const float *ty = m->type_emb + (size_t)b->type_ids[off + t] * H;
            for (int i = 0; i < H; i++)
                row[i] = w[i] + p[i] + ty[i];
            layernorm_row(row, m->emb_ln_g, m->emb_ln_b, H, c->layer_norm_eps);
        }
        off += (size_t)b->lens[q];
    }
    if (hidden)
        memcpy(hidden, x, N * H * sizeof(float));

    for (int l = 0; l < c->n_layers; l++) {
        const bert_layer *L = &m->layers[l];
        linear(x, L->qkv_w, qkv, n, H, 3 * H);
        add_bias(qkv, L->qkv_b, n, 3 * H);
        off = 0;
        for (int q = 0; q < S; q++) {
            attention(qkv + off * 3 * H, ctx + off * H, scores, b->lens[q], H, c->n_heads);
            off += (size_t)b->lens[q];
        }
        linear(ctx, L->attn_out_w, tmp, n, H, H);
        bias_residual_layernorm(x, tmp, L->attn_out_b, L->ln1_g, L->ln1_b, n, H, c->layer_norm_eps);

        linear(x, L->ffn_in_w, tmp, n, H, F);
        bias_gelu(tmp, L->ffn_in_b, n, F);
        linear(tmp, L->ffn_out_w, ctx, n, F, H); /* ctx is free again: reuse it */
        bias_residual_layernorm(x, ctx, L->ffn_out_b, L->ln2_g, L->ln2_b, n, H, c->layer_norm_eps);
        if (hidden)
            memcpy(hidden + (size_t)(l + 1) * N * H, x, N * H * sizeof(float));
    }

    /* Pooler on each sequence's first token ([CLS]), then the classifier. */
    off = 0;
    for (int q = 0; q < S; q++) {
        memcpy(pool_in + (size_t)q * H, x + off * H, H * sizeof(float));
        off += (size_t)b->lens[q];
    }
    linear(pool_in, m->pool_w, pooled, S, H, H);
    for (int q = 0; q < S; q++)
        for (int i = 0; i < H; i++)
            pooled[(size_t)q * H + i] = tanhf(pooled[(size_t)q * H + i] + m->pool_b[i]);
    linear(pooled, m->cls_w, logits, S, H, c->n_labels);
    add_bias(logits, m->cls_b, S, c->n_labels);
    return 0;
}
