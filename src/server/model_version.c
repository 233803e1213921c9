#include "server/model_version.h"

#include "common/bs_error.h"
#include "common/fileio.h"
#include "common/sha256.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Hex digits of the weights' sha256 that name a version: 48 bits, as git's short hashes, far
 * past any collision among one model's versions. */
#define HASH_VERSION_DIGITS 12

int model_version_check(const char *s, const char *source, char *err)
{
    size_t n = strlen(s);
    if (n == 0 || n > MODEL_VERSION_MAX)
        return bs_fail(err, "%s: a model version is 1 to %d characters, not %zu", source, MODEL_VERSION_MAX, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && !strchr("._:+-", ch))
            return bs_fail(err, "%s: a model version is letters, digits and . _ : + - only (byte %zu is 0x%02x)",
                           source, i, ch);
    }
    return 0;
}

/* dir/VERSION's first line, trimmed, into version: 1 if there is no such file, 0, or -1. */
static int read_version_file(const char *dir, char version[MODEL_VERSION_MAX + 1], char *err)
{
    char path[BS_PATH_LEN];
    struct stat st;
    if (path_join(path, dir, "VERSION", err))
        return -1;
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return 1;
    size_t len;
    char *text = read_whole_file(path, 4096, &len, err);
    if (!text)
        return -1;
    char *start = text, *end;
    while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
        start++;
    end = start + strcspn(start, "\r\n");
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    int rc = model_version_check(start, path, err);
    if (rc == 0)
        snprintf(version, MODEL_VERSION_MAX + 1, "%s", start);
    free(text);
    return rc;
}

int model_version_resolve(const char *given, const char *dir, char version[MODEL_VERSION_MAX + 1],
                          char sha256_hex[65], char *err)
{
    sha256_hex[0] = '\0';
    if (given) {
        if (model_version_check(given, "--model-version", err))
            return -1;
        snprintf(version, MODEL_VERSION_MAX + 1, "%s", given);
        return 0;
    }
    int rc = read_version_file(dir, version, err);
    if (rc <= 0)
        return rc;
    char path[BS_PATH_LEN];
    if (path_join(path, dir, "model.safetensors", err) || sha256_file(path, sha256_hex, err))
        return -1;
    snprintf(version, MODEL_VERSION_MAX + 1, "%.*s", HASH_VERSION_DIGITS, sha256_hex);
    return 0;
}
