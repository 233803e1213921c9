#include "engine/safetensors.h"

#include "common/bs_error.h"
#include "common/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this loader copies it as is"
#endif

/* The reference implementation refuses larger headers too; it bounds the JSON we parse. */
#define ST_MAX_HEADER (100u << 20)

size_t st_dtype_size(const char *d)
{
    static const struct { const char *name; size_t size; } types[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1},
        {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
        {"I32", 4}, {"U32", 4}, {"F32", 4},
        {"I64", 8}, {"U64", 8}, {"F64", 8},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(d, types[i].name))
            return types[i].size;
    return 0;
}

float st_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13); /* inf, or NaN keeping its payload */
    } else if (exp != 0) {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* A subnormal half is mant * 2^-24: normalise it, float32 has the range. */
        int e = -1;
        do {
            mant <<= 1;
            e++;
        } while (!(mant & 0x400));
        bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float st_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* A JSON number that is a whole number in [0, 2^53], the range a double holds exactly. */
static int json_uint(const cJSON *j, uint64_t *out)
{
    if (!cJSON_IsNumber(j))
        return -1;
    double v = j->valuedouble;
    if (!(v >= 0 && v <= 9007199254740992.0) || v != floor(v))
        return -1;
    *out = (uint64_t)v;
    return 0;
}

static int parse_entry(const char *path, const cJSON *e, st_tensor *t, size_t data_len, char *err)
{
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return bs_fail(err, "%s: header entry for tensor %s is not a JSON object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dtype) || strlen(dtype->valuestring) >= sizeof t->dtype ||
        !st_dtype_size(dtype->valuestring))
        return bs_fail(err, "%s: tensor %s has an unknown or missing dtype", path, name);
    strcpy(t->dtype, dtype->valuestring);
    if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > ST_MAX_DIMS)
        return bs_fail(err, "%s: tensor %s has a missing or invalid shape", path, name);
    uint64_t numel = 1;
    t->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (json_uint(d, &v) != 0)
            return bs_fail(err, "%s: tensor %s has a shape entry that is not a non-negative integer",
                           path, name);
        t->shape[t->ndim++] = (int64_t)v;
        if (v && numel > UINT64_MAX / 8 / v)
            return bs_fail(err, "%s: tensor %s has an impossibly large shape", path, name);
        numel *= v;
    }
    uint64_t b, en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_uint(offs->child, &b) != 0 ||
        json_uint(offs->child->next, &en) != 0)
        return bs_fail(err, "%s: tensor %s has missing or invalid data_offsets", path, name);
    if (b > en)
        return bs_fail(err, "%s: tensor %s has data_offsets [%llu, %llu] that end before they begin",
                       path, name, (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return bs_fail(err,
                       "%s: tensor %s has data_offsets [%llu, %llu] outside the data area of %zu bytes",
                       path, name, (unsigned long long)b, (unsigned long long)en, data_len);
    if (en - b != numel * st_dtype_size(t->dtype))
        return bs_fail(err, "%s: tensor %s has data_offsets [%llu, %llu] that do not match its %s shape",
                       path, name, (unsigned long long)b, (unsigned long long)en, t->dtype);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    return 0;
}

static int by_begin(const void *a, const void *b)
{
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int check_overlaps(st_file *st, char *err)
{
    if (st->n_tensors < 2)
        return 0;
    const st_tensor **order = malloc((size_t)st->n_tensors * sizeof *order);
    if (!order)
        return bs_fail(err, "%s: out of memory", st->path);
    for (int i = 0; i < st->n_tensors; i++)
        order[i] = &st->tensors[i];
    qsort(order, (size_t)st->n_tensors, sizeof *order, by_begin);
    int rc = 0;
    for (int i = 1; i < st->n_tensors && rc == 0; i++)
        if (order[i]->begin < order[i - 1]->end)
            rc = bs_fail(err, "%s: tensors %s and %s overlap in the data area", st->path,
                         order[i - 1]->name, order[i]->name);
    free(order);
    return rc;
}

static int parse_header(st_file *st, const char *json, size_t len, size_t data_len, char *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return bs_fail(err, "%s: the header is not a valid JSON object", st->path);
    }
    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next)
        n += strcmp(e->string, "__metadata__") != 0;
    st->tensors = calloc(n ? (size_t)n : 1, sizeof *st->tensors);
    if (!st->tensors) {
        cJSON_Delete(root);
        return bs_fail(err, "%s: out of memory", st->path);
    }
    int rc = 0;
    for (const cJSON *e = root->child; e && rc == 0; e = e->next) {
        if (!strcmp(e->string, "__metadata__"))
            continue;
        st_tensor *t = &st->tensors[st->n_tensors];
        if (st_find(st, e->string))
            rc = bs_fail(err, "%s: tensor %s appears twice in the header", st->path, e->string);
        else if (!(t->name = strdup(e->string)))
            rc = bs_fail(err, "%s: out of memory", st->path);
        else {
            st->n_tensors++;
            rc = parse_entry(st->path, e, t, data_len, err);
        }
    }
    cJSON_Delete(root);
    return rc ? rc : check_overlaps(st, err);
}

/* Reads and checks the header of st->f, a file of size bytes, from its start. */
static int read_header(st_file *st, size_t size, char *err)
{
    const char *path = st->path;
    unsigned char len8[8];
    if (size < 8 || fread(len8, 1, 8, st->f) != 8)
        return bs_fail(err, "%s: truncated: shorter than the 8-byte header length", path);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | len8[i];
    if (hlen > size - 8 || hlen > ST_MAX_HEADER || hlen < 2)
        return bs_fail(err, "%s: header length %llu does not fit in the file of %zu bytes", path,
                       (unsigned long long)hlen, size);
    char *json = malloc((size_t)hlen);
    if (!json)
        return bs_fail(err, "%s: out of memory for the header", path);
    if (fread(json, 1, (size_t)hlen, st->f) != hlen) {
        free(json);
        return bs_fail(err, "%s: read error in the header", path);
    }
    st->data_start = 8 + (size_t)hlen;
    int rc = parse_header(st, json, (size_t)hlen, size - st->data_start, err);
    free(json);
    return rc;
}

int st_open(st_file *st, const char *path, char *err)
{
    memset(st, 0, sizeof *st);
    st->path = path;
    size_t size;
    st->f = open_regular_file(path, SIZE_MAX, &size, err); /* any size: the header bounds the rest */
    if (!st->f)
        return -1;
    int rc = read_header(st, size, err);
    if (rc != 0)
        st_close(st);
    return rc;
}

int st_open_memory(st_file *st, const char *name, const void *data, size_t size, char *err)
{
    memset(st, 0, sizeof *st);
    st->path = name;
    /* fmemopen wants a writable buffer, but a stream opened "rb" never writes to it. glibc
     * refuses size 0, which read_header reports as truncated without touching the stream. */
    if (size > 0 && !(st->f = fmemopen((void *)data, size, "rb")))
        return bs_fail(err, "%s: %s", name, strerror(errno));
    int rc = read_header(st, size, err);
    if (rc != 0)
        st_close(st);
    return rc;
}

void st_close(st_file *st)
{
    if (st->f)
        fclose(st->f);
    for (int i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    st->f = NULL;
    st->tensors = NULL;
    st->n_tensors = 0;
}

const st_tensor *st_find(const st_file *st, const char *name)
{
    for (int i = 0; i < st->n_tensors; i++)
        if (!strcmp(st->tensors[i].name, name))
            return &st->tensors[i];
    return NULL;
}

int st_read_f32(st_file *st, const st_tensor *t, float *dst, void **staging, size_t *staging_cap,
                char *err)
{
    size_t bytes = t->end - t->begin;
    bool f32 = !strcmp(t->dtype, "F32"), f16 = !strcmp(t->dtype, "F16");
    if (!f32 && !f16 && strcmp(t->dtype, "BF16"))
        return bs_fail(err, "%s: tensor %s has dtype %s; only F32, F16 and BF16 are supported",
                       st->path, t->name, t->dtype);
    void *into = dst;
    if (!f32) {
        if (*staging_cap < bytes) {
            void *grown = realloc(*staging, bytes);
            if (!grown)
                return bs_fail(err, "%s: out of memory reading tensor %s", st->path, t->name);
            *staging = grown;
            *staging_cap = bytes;
        }
        into = *staging;
    }
    if (fseeko(st->f, (off_t)(st->data_start + t->begin), SEEK_SET) != 0 ||
        fread(into, 1, bytes, st->f) != bytes)
        return bs_fail(err, "%s: read error in tensor %s (file truncated?)", st->path, t->name);
    if (!f32) {
        const uint16_t *h = into;
        size_t n = bytes / 2;
        if (f16)
            for (size_t i = 0; i < n; i++)
                dst[i] = st_f16_to_f32(h[i]);
        else
            for (size_t i = 0; i < n; i++)
                dst[i] = st_bf16_to_f32(h[i]);
    }
    /* A NaN or an infinity in any weight makes every answer a made-up label with a NaN
     * confidence: refuse it here, naming the tensor and the element. */
    for (size_t i = 0, n = bytes / st_dtype_size(t->dtype); i < n; i++)
        if (!isfinite(dst[i]))
            return bs_fail(err, "%s: tensor %s holds a non-finite value (%g) at element %zu", st->path, t->name,
                           (double)dst[i], i);
    return 0;
}
