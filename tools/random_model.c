/* Seeded random weights for any BERT config (see random_model.h), shared by the
 * make-random-model tool and the FinBERT-shaped test. Weights are N(0, 0.02^2) (BERT's
 * initializer_range), LayerNorm gammas 1 + N(0, 0.02^2) and betas N(0, 0.02^2). */
#include "random_model.h"

#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/model.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static double uniform(uint64_t *state) /* splitmix64 -> (0, 1) */
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0;
}

static float normal(uint64_t *state) /* Box-Muller */
{
    double u = uniform(state);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * uniform(state)));
}

static long numel(const bert_tensor *t) { return (long)(t->ndim == 2 ? t->shape[0] * t->shape[1] : t->shape[0]); }

/* LayerNorm gains are 1 plus the noise; every other tensor is the noise alone. */
static float base_value(const bert_tensor *t)
{
    static const char gain[] = "LayerNorm.weight";
    size_t len = strlen(t->name), gain_len = sizeof gain - 1;
    return len >= gain_len && !strcmp(t->name + len - gain_len, gain) ? 1.0f : 0.0f;
}

static int copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = read_whole_file(from, &len, NULL);
    if (!data)
        return 0; /* optional files */
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f)
        ok = (fclose(f) == 0) && ok;
    free(data);
    return ok ? 0 : -1;
}

long random_model_write(const char *config_path, const char *out, unsigned long long seed, char *err)
{
    uint64_t rng = seed;
    bert_config c;
    if (bert_config_load(config_path, &c, err))
        return -1;
    if (mkdir(out, 0755) != 0 && errno != EEXIST) {
        bert_config_free(&c);
        return bs_fail(err, "%s: %s", out, strerror(errno));
    }

    int n = bert_tensor_count(&c);
    /* header: tensors in the order written, data offsets back to back */
    size_t cap = 256 + (size_t)n * 256, len = 0; /* a tensor's entry is under 200 bytes */
    char *header = malloc(cap);
    if (!header) {
        bert_config_free(&c);
        return bs_fail(err, "out of memory");
    }
    long offset = 0;
    len += (size_t)snprintf(header + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        bert_tensor t;
        bert_tensor_describe(&c, i, &t);
        long bytes = numel(&t) * 4;
        if (t.ndim == 2)
            len += (size_t)snprintf(header + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld,%ld],"
                                    "\"data_offsets\":[%ld,%ld]}", t.name, (long)t.shape[0], (long)t.shape[1],
                                    offset, offset + bytes);
        else
            len += (size_t)snprintf(header + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%ld],"
                                    "\"data_offsets\":[%ld,%ld]}", t.name, (long)t.shape[0], offset, offset + bytes);
        offset += bytes;
    }
    len += (size_t)snprintf(header + len, cap - len, "}");
    while (len % 8)
        header[len++] = ' ';

    char path[BS_PATH_LEN];
    path_join(path, out, "model.safetensors", err);
    FILE *f = fopen(path, "wb");
    if (!f) {
        bs_fail(err, "%s: %s", path, strerror(errno));
        free(header);
        bert_config_free(&c);
        return -1;
    }
    uint64_t header_len = len; /* little-endian on every platform we build for */
    int ok = fwrite(&header_len, 8, 1, f) == 1 && fwrite(header, 1, len, f) == len;
    float *buf = malloc(sizeof(float) * 1 << 20);
    for (int i = 0; ok && buf && i < n; i++) {
        bert_tensor t;
        bert_tensor_describe(&c, i, &t);
        float base = base_value(&t);
        for (long done = 0, total = numel(&t); ok && done < total;) {
            long chunk = total - done < (1 << 20) ? total - done : (1 << 20);
            for (long k = 0; k < chunk; k++)
                buf[k] = base + 0.02f * normal(&rng);
            ok = fwrite(buf, sizeof(float), (size_t)chunk, f) == (size_t)chunk;
            done += chunk;
        }
    }
    ok = buf && (fclose(f) == 0) && ok;
    free(buf);
    free(header);

    char dir[BS_PATH_LEN], from[BS_PATH_LEN], to[BS_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    static const char *extras[] = {"vocab.txt", "tokenizer_config.json"};
    for (size_t k = 0; ok && k < 2; k++) {
        path_join(from, dir, extras[k], err);
        path_join(to, out, extras[k], err);
        ok = copy_file(from, to) == 0;
    }
    path_join(to, out, "config.json", err);
    ok = ok && copy_file(config_path, to) == 0;
    bert_config_free(&c);
    if (!ok)
        return bs_fail(err, "writing %s failed", out);
    return offset / 4;
}
