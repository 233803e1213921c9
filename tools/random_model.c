/* Seeded random weights for any BERT config (see random_model.h), shared by the
 * make-random-model tool and the FinBERT-shaped test. Weights are N(0, 0.02^2) (BERT's
 * initializer_range), LayerNorm gammas 1 + N(0, 0.02^2) and betas N(0, 0.02^2). */
#include "random_model.h"

#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/fileio.h"
#include "engine/model.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
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

/* The safetensors header: each tensor F32, its data right after the previous one's, the whole
 * padded with spaces to a multiple of 8 bytes so that the data that follows is aligned.
 * *n_params receives the number of floats it describes. */
static int make_header(const bert_config *c, struct buffer *header, long *n_params)
{
    long offset = 0; /* bytes of data before the tensor */
    int rc = buffer_appendf(header, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; rc == 0 && i < bert_tensor_count(c); i++) {
        bert_tensor t;
        bert_tensor_describe(c, i, &t);
        char shape[48];
        if (t.ndim == 2)
            snprintf(shape, sizeof shape, "%ld,%ld", (long)t.shape[0], (long)t.shape[1]);
        else
            snprintf(shape, sizeof shape, "%ld", (long)t.shape[0]);
        long bytes = numel(&t) * 4;
        rc = buffer_appendf(header, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%s],\"data_offsets\":[%ld,%ld]}",
                            t.name, shape, offset, offset + bytes);
        offset += bytes;
    }
    if (rc == 0)
        rc = buffer_appendf(header, "}");
    while (rc == 0 && header->len % 8)
        rc = buffer_append(header, " ", 1);
    *n_params = offset / 4;
    return rc;
}

/* The tensors' data in header order, drawn from one random stream started at seed. */
static int write_weights(FILE *f, const bert_config *c, unsigned long long seed)
{
    enum { CHUNK = 1 << 20 }; /* floats drawn, then written, at a time */
    float *buf = malloc(CHUNK * sizeof *buf);
    if (!buf)
        return -1;
    uint64_t rng = seed;
    bool ok = true;
    for (int i = 0; ok && i < bert_tensor_count(c); i++) {
        bert_tensor t;
        bert_tensor_describe(c, i, &t);
        float base = base_value(&t);
        for (long done = 0, total = numel(&t); ok && done < total;) {
            long chunk = total - done < CHUNK ? total - done : CHUNK;
            for (long k = 0; k < chunk; k++)
                buf[k] = base + 0.02f * normal(&rng);
            ok = fwrite(buf, sizeof *buf, (size_t)chunk, f) == (size_t)chunk;
            done += chunk;
        }
    }
    free(buf);
    return ok ? 0 : -1;
}

/* out/model.safetensors: the header's length (8 bytes, little-endian), the header, the data. */
static int write_safetensors(const char *out, const bert_config *c, unsigned long long seed, long *n_params,
                             char *err)
{
    struct buffer header = {0};
    if (make_header(c, &header, n_params)) {
        buffer_free(&header);
        return bs_fail(err, "out of memory");
    }
    char path[BS_PATH_LEN];
    if (path_join(path, out, "model.safetensors", err)) {
        buffer_free(&header);
        return -1;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        buffer_free(&header);
        return bs_fail(err, "%s: %s", path, strerror(errno));
    }
    uint64_t header_len = header.len; /* little-endian on every platform we build for */
    bool ok = fwrite(&header_len, 8, 1, f) == 1 && fwrite(header.data, 1, header.len, f) == header.len &&
              write_weights(f, c, seed) == 0;
    ok = fclose(f) == 0 && ok;
    buffer_free(&header);
    return ok ? 0 : bs_fail(err, "writing %s failed", out);
}

/* Copies a file that may not exist (nothing to copy then). */
static int copy_file(const char *from, const char *to)
{
    size_t len;
    char *data = read_whole_file(from, SIZE_MAX, &len, NULL);
    if (!data)
        return 0;
    FILE *f = fopen(to, "wb");
    int ok = f && fwrite(data, 1, len, f) == len;
    if (f)
        ok = (fclose(f) == 0) && ok;
    free(data);
    return ok ? 0 : -1;
}

/* The rest of a model directory: config.json, and vocab.txt and tokenizer_config.json when they
 * sit beside it. */
static int copy_model_files(const char *config_path, const char *out, char *err)
{
    char dir[BS_PATH_LEN], from[BS_PATH_LEN], to[BS_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", config_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    static const char *const beside_config[] = {"vocab.txt", "tokenizer_config.json"};
    for (size_t k = 0; k < sizeof beside_config / sizeof beside_config[0]; k++) {
        if (path_join(from, dir, beside_config[k], err) || path_join(to, out, beside_config[k], err))
            return -1;
        if (copy_file(from, to))
            return bs_fail(err, "writing %s failed", out);
    }
    if (path_join(to, out, "config.json", err))
        return -1;
    if (copy_file(config_path, to))
        return bs_fail(err, "writing %s failed", out);
    return 0;
}

long random_model_write(const char *config_path, const char *out, unsigned long long seed, char *err)
{
    bert_config c;
    if (bert_config_load(config_path, &c, err))
        return -1;
    long n_params = -1;
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        bs_fail(err, "%s: %s", out, strerror(errno));
    else if (write_safetensors(out, &c, seed, &n_params, err) || copy_model_files(config_path, out, err))
        n_params = -1;
    bert_config_free(&c);
    return n_params;
}
