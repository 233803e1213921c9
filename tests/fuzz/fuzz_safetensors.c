/* Fuzz target: the safetensors container (st_open_memory) on arbitrary files: the header
 * length, the JSON header, dtypes, shapes and data_offsets. On success every tensor must lie
 * inside the data area and match its shape, names must be unique, and the F32/F16/BF16 ones
 * must read back (st_read_f32, up to 1 MB each to keep runs fast). */
#include "common/bs_error.h"
#include "engine/safetensors.h"
#include "fuzz_target.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file st;
    char err[BS_ERR_LEN] = "";
    if (st_open_memory(&st, "model.safetensors", data, size, err) != 0) {
        FUZZ_ASSERT(!strncmp(err, "model.safetensors: ", 19), "the message names the file: %s", err);
        FUZZ_ASSERT(!st.f && !st.tensors && st.n_tensors == 0, "a failed open keeps nothing");
        return 0;
    }
    FUZZ_ASSERT(st.data_start >= 10 && st.data_start <= size, "data_start %zu of %zu", st.data_start, size);
    size_t data_len = size - st.data_start;
    void *staging = NULL;
    size_t staging_cap = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const st_tensor *t = &st.tensors[i];
        FUZZ_ASSERT(st_find(&st, t->name) == t, "tensor %s is not unique", t->name);
        size_t es = st_dtype_size(t->dtype);
        FUZZ_ASSERT(es && t->ndim >= 0 && t->ndim <= ST_MAX_DIMS, "dtype %s ndim %d", t->dtype, t->ndim);
        FUZZ_ASSERT(t->begin <= t->end && t->end <= data_len, "offsets [%zu, %zu] of %zu", t->begin, t->end,
                    data_len);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            numel *= (uint64_t)t->shape[d];
        FUZZ_ASSERT(t->end - t->begin == numel * es, "%s: %zu bytes for %llu elements", t->name,
                    t->end - t->begin, (unsigned long long)numel);
        bool readable = !strcmp(t->dtype, "F32") || !strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16");
        if (readable && numel <= (1u << 18)) {
            float *dst = malloc(numel ? numel * sizeof *dst : 1);
            FUZZ_ASSERT(dst, "out of memory");
            /* Every value read back is finite; a NaN or an infinity is refused, naming the tensor. */
            int rc = st_read_f32(&st, t, dst, &staging, &staging_cap, err);
            FUZZ_ASSERT(rc == 0 || (strstr(err, "non-finite") && strstr(err, t->name)), "%s", err);
            for (uint64_t i = 0; rc == 0 && i < numel; i++)
                FUZZ_ASSERT(isfinite(dst[i]), "%s: element %llu is not finite", t->name, (unsigned long long)i);
            free(dst);
        }
    }
    free(staging);
    st_close(&st);
    return 0;
}
