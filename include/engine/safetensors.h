/* The safetensors container: an 8-byte little-endian header length, a JSON header mapping
 * tensor names to {dtype, shape, data_offsets}, then the raw little-endian data area.
 * This layer validates the container alone; what the tensors must be is the model's job. */
#ifndef SAFETENSORS_H
#define SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    char dtype[8];
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t begin, end; /* byte offsets inside the data area */
} st_tensor;

typedef struct {
    const char *path;
    FILE *f;
    size_t data_start; /* file offset of the data area */
    st_tensor *tensors;
    int n_tensors;
} st_file;

/* Opens path and parses and checks the header: its length against the file size, the JSON,
 * every entry's dtype and shape, data_offsets inside the data area, consistent with the
 * shape, and not overlapping another tensor. The file stays open for st_read_f32. */
int st_open(st_file *st, const char *path, char *err);
/* The same for a file held in memory (size bytes at data, which must outlive st); name stands
 * for the path in messages. For tests and fuzzing. */
int st_open_memory(st_file *st, const char *name, const void *data, size_t size, char *err);
void st_close(st_file *st);

const st_tensor *st_find(const st_file *st, const char *name);

/* Bytes per element of a dtype, 0 if safetensors does not define it. */
size_t st_dtype_size(const char *dtype);

/* Reads a F32, F16 or BF16 tensor into dst as float32 (exact upcast); a tensor holding a NaN
 * or an infinity is an error naming it. staging is a caller-owned buffer grown as needed for
 * the half-precision cases. */
int st_read_f32(st_file *st, const st_tensor *t, float *dst, void **staging, size_t *staging_cap,
                char *err);

/* Exact IEEE conversions (subnormals, infinities and NaN included). */
float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

#endif
