/* Replays inputs through a fuzz target without libFuzzer, so that every target builds with gcc
 * in the normal and the sanitizer builds and ctest can run the seeds and the regressions.
 *   fuzz_X FILE_OR_DIR...   runs each file (each regular file of a directory, dotfiles
 *                           skipped) through LLVMFuzzerTestOneInput once
 * A crash or a sanitizer report fails the run, as under libFuzzer; so do a missing path and
 * an empty run, so that a misconfigured test cannot pass by replaying nothing. */
#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Runs one file; -1 if it cannot be read. The input gets a heap block of exactly its size,
 * so AddressSanitizer sees a read one byte past the end, as libFuzzer's would. */
static int replay_file(const char *path)
{
    char err[BS_ERR_LEN];
    size_t len;
    char *text = read_whole_file(path, SIZE_MAX, &len, err);
    if (!text) {
        fprintf(stderr, "fuzz replay: cannot read %s\n", err);
        return -1;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(text);
        fprintf(stderr, "fuzz replay: out of memory reading %s\n", path);
        return -1;
    }
    memcpy(exact, text, len);
    free(text);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir in name order (a stable order makes a failure repeatable);
 * returns how many, or -1. */
static int replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz replay: cannot open %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        if (grow_array(&names, &cap, n + 1, sizeof *names) || !(names[n] = strdup(e->d_name))) {
            rc = -1;
            break;
        }
        n++;
    }
    closedir(d);
    if (n > 0) /* qsort must not be given NULL, even for no elements */
        qsort(names, n, sizeof *names, by_name);
    int count = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            rc = replay_file(path);
            count++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc ? -1 : count;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }
        int n = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]) == 0 ? 1 : -1;
        if (n < 0)
            return 1;
        printf("%s: %d input(s) replayed\n", argv[i], n);
        total += n;
    }
    if (total == 0) {
        fprintf(stderr, "fuzz replay: no inputs (usage: %s FILE_OR_DIR...)\n", argv[0]);
        return 1;
    }
    printf("%d input(s) replayed, no crash\n", total);
    return 0;
}
