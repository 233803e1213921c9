/* bertserve-cli bench: forward-pass speed beside the GEMM rates of the same process.
 *
 * OpenBLAS's sgemm on the FFN's 512 x 3072 x 768 product is the roofline each case is
 * compared with: a forward pass is almost nothing but such GEMMs, so "of sgemm" says how
 * close the whole pass comes to the best BLAS product on this machine. Our own packed GEMM
 * (the kernel the forward pass runs) is timed on the same product beside it. Speed depends
 * on the shape, not on the weights: run it on a FinBERT-shaped random model
 * (build/make-random-model). */
#include "cli/cli.h"
#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/clock.h"
#include "common/cpu_budget.h"
#include "engine/bert.h"
#include "engine/gemm.h"
#include "engine/gemm_amx.h"
#include "engine/gemm_bf16.h"
#include "engine/gemm_int8.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "text/any_tokenizer.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Best time of `reps` runs of the FFN-shaped sgemm, as GFLOP/s. */
static double sgemm_rate(int reps)
{
    const int M = 512, N = 3072, K = 768;
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * N * K), *c = malloc(sizeof(float) * M * N);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (long i = 0; i < (long)M * K; i++)
        a[i] = (float)(i % 17) * 0.01f;
    for (long i = 0; i < (long)N * K; i++)
        b[i] = (float)(i % 13) * 0.01f;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t = monotonic_seconds();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, a, K, b, K, 0.0f, c, N);
        t = monotonic_seconds() - t;
        if (t < best)
            best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * M * N * K / best / 1e9;
}

/* Best of `reps` runs of the same product through our packed GEMM on `threads` threads. */
static double packed_gemm_rate(int reps, int threads)
{
    const int M = 512, N = 3072, K = 768;
    char err[BS_ERR_LEN];
    threadpool *pool = threadpool_create(threads, err);
    float *a = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K),
          *packed = malloc(sizeof(float) * gemm_packed_floats(N, K)), *c = malloc(sizeof(float) * M * N);
    double best = 1e9;
    if (pool && a && w && packed && c) {
        for (long i = 0; i < (long)M * K; i++)
            a[i] = (float)(i % 17) * 0.01f;
        for (long i = 0; i < (long)N * K; i++)
            w[i] = (float)(i % 13) * 0.01f;
        gemm_pack(w, K, N, K, packed);
        for (int r = 0; r < reps; r++) {
            double t = monotonic_seconds();
            gemm_linear(pool, a, M, packed, N, K, c, NULL, GEMM_STORE);
            t = monotonic_seconds() - t;
            if (t < best)
                best = t;
        }
    }
    threadpool_free(pool);
    free(a), free(w), free(packed), free(c);
    return 2.0 * M * N * K / best / 1e9;
}

/* FLOPs of one forward pass: the dense layers per token, attention per sequence. */
static double forward_flops(const bert_config *c, const int *lens, int n)
{
    double hid = c->hidden, inter = c->intermediate, flops = 0;
    for (int i = 0; i < n; i++) {
        double t = lens[i];
        flops += c->n_layers * (t * 2 * hid * (4 * hid + 2 * inter) + 4 * t * t * hid);
        flops += 2 * hid * hid + 2 * hid * c->n_labels; /* pooler, classifier */
    }
    return flops;
}

/* bench FILE: the engine's own rate on real texts, packed in batches of o->batch consecutive
 * texts (cycling through the file) for about five seconds: what the daemon's batcher could at
 * best reach with that many texts per batch. */
static int bench_texts(const struct options *o, bert_model *m)
{
    char err[BS_ERR_LEN];
    any_tokenizer *tok = any_tokenizer_load(o->model, err);
    FILE *f = tok ? fopen(o->file, "r") : NULL;
    if (!f) {
        fprintf(stderr, "bertserve-cli: %s\n", tok ? o->file : err);
        any_tokenizer_free(tok);
        return 1;
    }
    /* Every text's tokens, end to end, and where each starts. */
    struct packed_tokens all = {0};
    int *starts = NULL, *lens = NULL, n = 0, rc = 0;
    size_t cap_starts = 0, cap_lens = 0;
    encoding e = {0};
    char line[65536];
    while (rc == 0 && fgets(line, sizeof line, f)) {
        size_t len = strcspn(line, "\r\n");
        if (len == 0)
            continue;
        if (grow_array(&starts, &cap_starts, (size_t)n + 1, sizeof *starts) ||
            grow_array(&lens, &cap_lens, (size_t)n + 1, sizeof *lens)) {
            rc = bs_fail(err, "out of memory");
            break;
        }
        starts[n] = all.n;
        if (any_tokenizer_encode(tok, line, len, NULL, 0, m->cfg.max_tokens, TRUNCATE_RIGHT, &e, err) ||
            packed_tokens_append(&all, &e)) {
            rc = -1;
            break;
        }
        lens[n++] = e.n;
    }
    fclose(f);
    /* A fixed shuffle: a run of a few seconds then sees the file's mix of lengths (as a daemon
     * serving the file does), not only its first lines. */
    unsigned seed = 12345;
    for (int i = n - 1; rc == 0 && i > 0; i--) {
        seed = seed * 1664525u + 1013904223u;
        int j = (int)(seed % (unsigned)(i + 1)), s = starts[i], l = lens[i];
        starts[i] = starts[j], lens[i] = lens[j];
        starts[j] = s, lens[j] = l;
    }
    int batch = o->batch ? o->batch : 16;
    if (rc == 0 && n < batch)
        rc = bs_fail(err, "%s holds %d texts, fewer than one batch of %d", o->file, n, batch);
    int32_t *ids = NULL, *types = NULL;
    int *batch_lens = NULL;
    float *logits = NULL;
    bert_scratch scratch = {0};
    if (rc == 0) {
        ids = malloc(sizeof *ids * (size_t)all.n);
        types = malloc(sizeof *types * (size_t)all.n);
        batch_lens = malloc(sizeof *batch_lens * (size_t)batch);
        logits = malloc(sizeof *logits * (size_t)batch * (size_t)m->cfg.n_labels);
        if (!ids || !types || !batch_lens || !logits)
            rc = bs_fail(err, "out of memory");
    }
    long texts = 0, tokens = 0, batches = 0;
    double start = monotonic_seconds(), elapsed = 0;
    /* Batches of consecutive texts (shuffled above), wrapping around the end of the file, so
     * that n / batch timed batches (after the warm-up one) run each text at most once. */
    for (int first = 0; rc == 0; first = (first + batch) % n) {
        int total = 0;
        for (int i = 0; i < batch; i++) { /* packed like the batcher does */
            int t = (first + i) % n;
            memcpy(ids + total, all.ids + starts[t], sizeof *ids * (size_t)lens[t]);
            memcpy(types + total, all.type_ids + starts[t], sizeof *types * (size_t)lens[t]);
            batch_lens[i] = lens[t];
            total += lens[t];
        }
        bert_batch b = {.ids = ids, .type_ids = types, .lens = batch_lens, .n_seqs = batch};
        rc = bert_forward(m, &b, logits, &scratch, err);
        if (batches++ == 0) { /* warm-up: scratch and caches */
            start = monotonic_seconds();
            continue;
        }
        texts += batch;
        tokens += total;
        elapsed = monotonic_seconds() - start;
        if (o->iterations ? batches > o->iterations : elapsed > 5.0)
            break;
    }
    if (rc == 0)
        printf("texts=%d batch=%d mean_tokens=%.1f batches=%ld texts_per_second=%.1f tokens_per_second=%.0f\n", n,
               batch, (double)tokens / (double)texts, batches - 1, (double)texts / elapsed, (double)tokens / elapsed);
    else
        fprintf(stderr, "bertserve-cli: %s\n", err);
    bert_scratch_free(&scratch);
    encoding_free(&e);
    packed_tokens_free(&all);
    free(starts), free(lens), free(batch_lens), free(ids), free(types), free(logits);
    any_tokenizer_free(tok);
    return rc ? 1 : 0;
}

/* The kernel the encoder's linear products run on in a model of this dtype. */
static const char *linear_kernel_name(enum bert_dtype dtype)
{
    return dtype == BERT_BF16 ? gemm_bf16_kernel_name() : dtype == BERT_INT8 ? gemm_int8_kernel_name() : gemm_kernel_name();
}

int cli_bench(const struct options *o)
{
    char err[BS_ERR_LEN];
    double t_load = monotonic_seconds();
    bert_model *m = bert_model_load_dtype(o->model, o->dtype, err);
    if (!m) {
        fprintf(stderr, "bertserve-cli: %s\n", err);
        return 1;
    }
    t_load = monotonic_seconds() - t_load;
    if (o->file) {
        int rc = bench_texts(o, m);
        bert_model_free(m);
        return rc;
    }
    const bert_config *c = &m->cfg;
    printf("model: %s (%d layers x %d hidden, %d heads, %d intermediate, %s), loaded in %.0f ms\n",
           o->model, c->n_layers, c->hidden, c->n_heads, c->intermediate, m->weights_dtype, t_load * 1e3);
    printf("dtype: %s, %.1f MB of weights in memory; encoder linears on the %s kernel\n", bert_dtype_name(m->dtype),
           bert_model_bytes(m) / 1e6, linear_kernel_name(m->dtype));
    printf("amx: %s\n", gemm_amx_status()); /* why bf16/int8 run on AMX, or why not */
    int threads = cpu_count_available();
    printf("OpenBLAS: kernel %s, %d threads (OPENBLAS_CORETYPE=%s); bertserve GEMM: %s kernel, %d threads\n",
           openblas_get_corename(), openblas_get_num_threads(),
           getenv("OPENBLAS_CORETYPE") ? getenv("OPENBLAS_CORETYPE") : "unset", gemm_kernel_name(), threads);
    double roof = sgemm_rate(10), ours = packed_gemm_rate(10, threads);
    printf("512x3072x768 product: OpenBLAS sgemm %.1f GFLOP/s (the roofline below), bertserve packed GEMM %.1f GFLOP/s (%.2fx)\n\n",
           roof, ours, ours / roof);

    static const struct { int n_seqs, len; } cases[] = {{1, 8}, {1, 32}, {1, 128}, {1, 512}, {16, 32}};
    int max_total = 16 * 32 > 512 ? 16 * 32 : 512;
    int32_t *ids = malloc(sizeof *ids * (size_t)max_total), *types = calloc((size_t)max_total, sizeof *types);
    float *logits = malloc(sizeof(float) * 16 * (size_t)c->n_labels);
    int lens[16];
    bert_scratch scratch = {0};
    int rc = ids && types && logits ? 0 : 1;
    uint32_t seed = 12345;
    for (int i = 0; rc == 0 && i < max_total; i++) {
        seed = seed * 1664525u + 1013904223u;
        ids[i] = 1000 + (int32_t)(seed % (uint32_t)(c->vocab_size - 1000));
    }
    printf("%-10s %9s %9s %11s %9s %9s\n", "case", "ms (p50)", "ms (min)", "tokens/s", "GFLOP/s", "of sgemm");
    for (size_t k = 0; rc == 0 && k < sizeof cases / sizeof cases[0]; k++) {
        int len = cases[k].len < c->max_tokens ? cases[k].len : c->max_tokens;
        for (int i = 0; i < cases[k].n_seqs; i++) {
            lens[i] = len;
            ids[i * len] = 101; /* [CLS] */
        }
        bert_batch b = {.ids = ids, .type_ids = types, .lens = lens, .n_seqs = cases[k].n_seqs};
        int iters = o->iterations ? o->iterations : 0;
        double times[200];
        int n = 0;
        double start = monotonic_seconds();
        if (bert_forward(m, &b, logits, &scratch, err)) { /* warm-up: scratch, caches */
            fprintf(stderr, "bertserve-cli: %s\n", err);
            rc = 1;
            break;
        }
        /* with no --iterations: at least 5 runs and about a second per case */
        while (n < 200 && (iters ? n < iters : (n < 5 || monotonic_seconds() - start < 1.0))) {
            double t = monotonic_seconds();
            bert_forward(m, &b, logits, &scratch, err);
            times[n++] = monotonic_seconds() - t;
        }
        double p50 = timings_median(times, n), flops = forward_flops(c, lens, cases[k].n_seqs);
        char name[32];
        snprintf(name, sizeof name, "%dx%d", cases[k].n_seqs, len);
        printf("%-10s %9.2f %9.2f %11.0f %9.1f %8.0f%%\n", name, p50 * 1e3, times[0] * 1e3,
               cases[k].n_seqs * len / p50, flops / p50 / 1e9, 100.0 * flops / p50 / 1e9 / roof);
    }
    bert_scratch_free(&scratch);
    free(ids);
    free(types);
    free(logits);
    bert_model_free(m);
    return rc;
}
