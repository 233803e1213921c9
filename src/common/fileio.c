#include "common/fileio.h"

#include "common/bs_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *read_whole_file(const char *path, size_t *len, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return bs_fail(err, "%s: %s", path, strerror(errno)), NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            cap = cap ? cap * 2 : 1 << 16;
            char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return bs_fail(err, "%s: out of memory", path), NULL;
            }
            buf = grown;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return bs_fail(err, "%s: read error", path), NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int path_join(char out[BS_PATH_LEN], const char *dir, const char *name, char *err)
{
    int n = snprintf(out, BS_PATH_LEN, "%s/%s", dir, name);
    if (n < 0 || n >= BS_PATH_LEN)
        return bs_fail(err, "path too long: %s/%s", dir, name);
    return 0;
}
