/* A FinBERT-shaped network (12 layers x 768, 12 heads, 3072, 512 positions, vocab 30522) with
 * seeded random weights, written as a temporary safetensors file: loading at full size, and a
 * packed batch equal to the sequences run one at a time. No golden logits exist for it. */
#include "bert.h"
#include "bs_error.h"
#include "check.h"
#include "fileio.h"
#include "model.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

enum { H = 768, LAYERS = 12, HEADS = 12, FFN = 3072, POS = 512, VOCAB = 30522, TYPES = 2, LABELS = 3 };

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng_u32(void)
{
    /* splitmix64: seeded, reproducible, fast enough for 110M draws. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

/* Uniform in [center - width, center + width]. */
static float rng_uniform(float center, float width)
{
    return center + width * ((float)(rng_u32() >> 8) * (2.0f / 16777216.0f) - 1.0f);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

typedef struct {
    char name[96];
    int rows, cols; /* cols 0: a vector */
    float center, width;
} spec;

static int specs(spec *s)
{
    int n = 0;
#define ADD(r, c, ce, w, ...) (snprintf(s[n].name, sizeof s[n].name, __VA_ARGS__), s[n].rows = (r), \
                               s[n].cols = (c), s[n].center = (ce), s[n].width = (w), n++)
    /* BERT's init scale (std 0.02 ~ uniform width 0.035), a bit wider so the signal mixes. */
    const float w = 0.05f;
    ADD(VOCAB, H, 0, w, "bert.embeddings.word_embeddings.weight");
    ADD(POS, H, 0, w, "bert.embeddings.position_embeddings.weight");
    ADD(TYPES, H, 0, w, "bert.embeddings.token_type_embeddings.weight");
    ADD(H, 0, 1, 0.2f, "bert.embeddings.LayerNorm.weight");
    ADD(H, 0, 0, 0.2f, "bert.embeddings.LayerNorm.bias");
    for (int l = 0; l < LAYERS; l++) {
        const char *qkv[3] = {"query", "key", "value"};
        for (int i = 0; i < 3; i++) {
            ADD(H, H, 0, w, "bert.encoder.layer.%d.attention.self.%s.weight", l, qkv[i]);
            ADD(H, 0, 0, w, "bert.encoder.layer.%d.attention.self.%s.bias", l, qkv[i]);
        }
        ADD(H, H, 0, w, "bert.encoder.layer.%d.attention.output.dense.weight", l);
        ADD(H, 0, 0, w, "bert.encoder.layer.%d.attention.output.dense.bias", l);
        ADD(H, 0, 1, 0.2f, "bert.encoder.layer.%d.attention.output.LayerNorm.weight", l);
        ADD(H, 0, 0, 0.2f, "bert.encoder.layer.%d.attention.output.LayerNorm.bias", l);
        ADD(FFN, H, 0, w, "bert.encoder.layer.%d.intermediate.dense.weight", l);
        ADD(FFN, 0, 0, w, "bert.encoder.layer.%d.intermediate.dense.bias", l);
        ADD(H, FFN, 0, w, "bert.encoder.layer.%d.output.dense.weight", l);
        ADD(H, 0, 0, w, "bert.encoder.layer.%d.output.dense.bias", l);
        ADD(H, 0, 1, 0.2f, "bert.encoder.layer.%d.output.LayerNorm.weight", l);
        ADD(H, 0, 0, 0.2f, "bert.encoder.layer.%d.output.LayerNorm.bias", l);
    }
    ADD(H, H, 0, w, "bert.pooler.dense.weight");
    ADD(H, 0, 0, w, "bert.pooler.dense.bias");
    ADD(LABELS, H, 0, 0.5f, "classifier.weight");
    ADD(LABELS, 0, 0, 0.5f, "classifier.bias");
#undef ADD
    return n;
}

static int write_model(const char *dir)
{
    char path[BS_PATH_LEN], err[BS_ERR_LEN];
    static const char config[] =
        "{\"architectures\": [\"BertForSequenceClassification\"], \"model_type\": \"bert\",\n"
        " \"hidden_size\": 768, \"num_hidden_layers\": 12, \"num_attention_heads\": 12,\n"
        " \"intermediate_size\": 3072, \"hidden_act\": \"gelu\", \"max_position_embeddings\": 512,\n"
        " \"type_vocab_size\": 2, \"vocab_size\": 30522, \"layer_norm_eps\": 1e-12,\n"
        " \"id2label\": {\"0\": \"positive\", \"1\": \"negative\", \"2\": \"neutral\"}}\n";
    path_join(path, dir, "config.json", err);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(config, 1, sizeof config - 1, f) != sizeof config - 1 || fclose(f) != 0)
        return -1;

    spec *s = calloc(16 + 16 * LAYERS, sizeof *s);
    int n = specs(s);
    cJSON *header = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t numel = (size_t)s[i].rows * (s[i].cols ? s[i].cols : 1);
        cJSON *t = cJSON_AddObjectToObject(header, s[i].name);
        cJSON_AddStringToObject(t, "dtype", "F32");
        int shape[2] = {s[i].rows, s[i].cols};
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, s[i].cols ? 2 : 1));
        double offs[2] = {(double)off, (double)(off + 4 * numel)};
        cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
        off += 4 * numel;
    }
    char *json = cJSON_PrintUnformatted(header);
    size_t hlen = strlen(json), padded = (hlen + 7) & ~(size_t)7;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(padded >> (8 * i));
    path_join(path, dir, "model.safetensors", err);
    f = fopen(path, "wb");
    int rc = f ? 0 : -1;
    if (f) {
        fwrite(len8, 1, 8, f);
        fwrite(json, 1, hlen, f);
        for (size_t i = hlen; i < padded; i++)
            fputc(' ', f);
        float *buf = malloc((size_t)VOCAB * H * sizeof *buf);
        for (int i = 0; i < n && buf; i++) {
            size_t numel = (size_t)s[i].rows * (s[i].cols ? s[i].cols : 1);
            for (size_t k = 0; k < numel; k++)
                buf[k] = rng_uniform(s[i].center, s[i].width);
            if (fwrite(buf, sizeof *buf, numel, f) != numel)
                rc = -1;
        }
        rc = buf && fclose(f) == 0 ? rc : -1;
        free(buf);
    }
    free(json);
    cJSON_Delete(header);
    free(s);
    return rc;
}

int main(void)
{
    char dir[] = "/tmp/bertserve-bertbase-XXXXXX", err[BS_ERR_LEN], path[BS_PATH_LEN];
    CHECK(mkdtemp(dir), "mkdtemp failed");
    CHECK(write_model(dir) == 0, "cannot write the random model into %s", dir);

    double t0 = now_ms();
    bert_model *m = bert_model_load(dir, err);
    double load_ms = now_ms() - t0;
    CHECK(m, "%s", err);
    path_join(path, dir, "model.safetensors", err);
    unlink(path);
    path_join(path, dir, "config.json", err);
    unlink(path);
    rmdir(dir);
    if (!m)
        return test_finish("test_model_bertbase");
    printf("loaded 12x768 F32 model in %.0f ms\n", load_ms);

    /* Short sequences under the sanitizers, which slow the non-BLAS code down a lot. */
    static const int lens_full[] = {128, 1, 7, 512, 64, 33}, lens_san[] = {128, 1, 7, 40};
    const int *lens = SANITIZED ? lens_san : lens_full;
    int n_seqs = SANITIZED ? 4 : 6, total = 0;
    for (int i = 0; i < n_seqs; i++)
        total += lens[i];
    int32_t *ids = malloc((size_t)total * sizeof *ids), *types = malloc((size_t)total * sizeof *types);
    for (int i = 0, off = 0; i < n_seqs; off += lens[i], i++)
        for (int t = 0; t < lens[i]; t++) {
            ids[off + t] = t == 0 ? 101 : (int32_t)(rng_u32() % VOCAB);
            types[off + t] = (i % 2 && t > lens[i] / 2) ? 1 : 0;
        }

    bert_scratch scratch = {0};
    float single[16][LABELS], batched[16][LABELS];
    for (int i = 0, off = 0; i < n_seqs; off += lens[i], i++) {
        bert_batch b = {ids + off, types + off, &lens[i], 1};
        t0 = now_ms();
        CHECK(bert_forward(m, &b, single[i], &scratch, err) == 0, "%s", err);
        printf("one sequence of %3d tokens: %.1f ms\n", lens[i], now_ms() - t0);
        for (int k = 0; k < LABELS; k++)
            CHECK(isfinite(single[i][k]), "sequence %d: logit %d is not finite", i, k);
    }
    bert_batch b = {ids, types, lens, n_seqs};
    t0 = now_ms();
    CHECK(bert_forward(m, &b, &batched[0][0], &scratch, err) == 0, "%s", err);
    printf("packed batch of %d sequences, %d tokens: %.1f ms\n", n_seqs, total, now_ms() - t0);

    float max_diff = 0, spread = 0;
    for (int i = 0; i < n_seqs; i++)
        for (int k = 0; k < LABELS; k++) {
            max_diff = fmaxf(max_diff, fabsf(batched[i][k] - single[i][k]));
            spread = fmaxf(spread, fabsf(single[i][k] - single[0][k]));
        }
    printf("max |batched - single| = %.2e (logits spread %.3f)\n", max_diff, spread);
    CHECK(max_diff <= 1e-4f, "batched differs from single by %.3g", max_diff);
    /* Distinct inputs must give distinct logits, or the comparison above proves nothing. */
    CHECK(spread > 1e-3f, "all sequences gave the same logits (spread %.3g)", spread);

    free(ids);
    free(types);
    bert_scratch_free(&scratch);
    bert_model_free(m);
    return test_finish("test_model_bertbase");
}
