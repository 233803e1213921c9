#include "common/fileio.h"

#include "common/bs_error.h"
#include "common/buffer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Room made before each fread: a config.json takes one read, a larger file doubles the buffer. */
#define READ_CHUNK ((size_t)1 << 16)

/* 0 if fd is a regular file of at most max_bytes (its size in *size), else -1 with err. */
static int check_regular(int fd, const char *path, size_t max_bytes, size_t *size, char *err)
{
    struct stat sb;
    if (fstat(fd, &sb))
        return bs_fail(err, "%s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return bs_fail(err, "%s: not a regular file", path);
    if ((uintmax_t)sb.st_size > (uintmax_t)max_bytes)
        return bs_fail(err, "%s: %jd bytes, over the limit of %zu for this file", path, (intmax_t)sb.st_size,
                       max_bytes);
    *size = (size_t)sb.st_size;
    return 0;
}

FILE *open_regular_file(const char *path, size_t max_bytes, size_t *size, char *err)
{
    /* O_NONBLOCK: opening a FIFO for reading would wait for a writer, forever. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return bs_fail(err, "%s: %s", path, strerror(errno)), NULL;
    FILE *f = NULL;
    if (check_regular(fd, path, max_bytes, size, err) == 0) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        if (!(f = fdopen(fd, "rb")))
            bs_fail(err, "%s: %s", path, strerror(errno));
    }
    if (!f)
        close(fd);
    return f;
}

char *read_whole_file(const char *path, size_t max_bytes, size_t *len, char *err)
{
    size_t size;
    FILE *f = open_regular_file(path, max_bytes, &size, err);
    if (!f)
        return NULL;
    struct buffer b = {0};
    size_t got;
    do { /* until the end: a file in /proc reports size 0, and a file may grow while read */
        if (b.len > max_bytes) {
            buffer_free(&b);
            fclose(f);
            return bs_fail(err, "%s: over the limit of %zu bytes for this file", path, max_bytes), NULL;
        }
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
