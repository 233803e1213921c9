#include "common/fileio.h"

#include "common/bs_error.h"
#include "common/buffer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room made before each fread: a config.json takes one read, a larger file doubles the buffer. */
#define READ_CHUNK ((size_t)1 << 16)

char *read_whole_file(const char *path, size_t *len, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_fail(err, "%s: %s", path, strerror(errno)), NULL;
    struct buffer b = {0};
    size_t got;
    do {
        if (buffer_reserve(&b, READ_CHUNK)) {
            buffer_free(&b);
            fclose(f);
            return bs_fail(err, "%s: out of memory", path), NULL;
        }
        got = fread(b.data + b.len, 1, b.cap - b.len - 1, f);
        b.len += got;
    } while (got > 0);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        buffer_free(&b);
        return bs_fail(err, "%s: read error", path), NULL;
    }
    b.data[b.len] = '\0';
    *len = b.len;
    return b.data;
}

int path_join(char out[BS_PATH_LEN], const char *dir, const char *name, char *err)
{
    int n = snprintf(out, BS_PATH_LEN, "%s/%s", dir, name);
    if (n < 0 || n >= BS_PATH_LEN)
        return bs_fail(err, "path too long: %s/%s", dir, name);
    return 0;
}
