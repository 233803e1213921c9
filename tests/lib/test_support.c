#include "check.h"

#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/model.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int check_failures;

int test_finish(const char *name)
{
    if (check_failures)
        fprintf(stderr, "%s: %d check(s) FAILED\n", name, check_failures);
    else
        printf("%s: all checks passed\n", name);
    return check_failures ? 1 : 0;
}

const char *shared_dir(void)
{
    const char *dir = getenv("BERTSERVE_SHARED");
    if (!dir || !*dir)
        dir = BERTSERVE_DEFAULT_SHARED;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "FAIL: shared assets directory %s not found (set BERTSERVE_SHARED)\n", dir);
        exit(1);
    }
    return dir;
}

const char *shared_path(const char *rel)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", shared_dir(), rel);
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "FAIL: required test asset %s is missing\n", path);
        exit(1);
    }
    return path;
}

int for_each_line(const char *path, void (*fn)(char *line, size_t len, void *ctx), void *ctx)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "FAIL: cannot open %s\n", path);
        exit(1);
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int count = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        size_t len = (size_t)n;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        fn(line, len, ctx);
        count++;
    }
    free(line);
    fclose(f);
    return count;
}

void expect_load_failure(const char *dir, const char *what, const char *frag1, const char *frag2, const char *frag3)
{
    char err[BS_ERR_LEN] = "";
    bert_model *m = bert_model_load(dir, err);
    CHECK(!m, "%s: loaded although it should not", what);
    bert_model_free(m);
    const char *frags[3] = {frag1, frag2, frag3};
    for (int i = 0; i < 3; i++)
        CHECK(!frags[i] || strstr(err, frags[i]), "%s: message lacks \"%s\": %s", what, frags[i], err);
    if (!m)
        printf("%-40s -> %s\n", what, err);
}

bool json_ids_equal(const cJSON *expected, const int32_t *got, int n)
{
    if (!cJSON_IsArray(expected) || cJSON_GetArraySize(expected) != n)
        return false;
    int i = 0;
    for (const cJSON *x = expected->child; x; x = x->next, i++)
        if (!cJSON_IsNumber(x) || x->valueint != got[i])
            return false;
    return true;
}

void write_test_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[BS_PATH_LEN], err[BS_ERR_LEN];
    path_join(path, dir, name, err);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", path);
        exit(1);
    }
}
