/* A minimal test harness: CHECK records a failure and carries on, so one run shows every
 * broken case; test_finish() turns the count into the exit status ctest reads. */
#ifndef CHECK_H
#define CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

extern int check_failures;

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            check_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
        }                                                                        \
    } while (0)

/* Prints the verdict and returns the exit status for main. */
int test_finish(const char *name);

/* The shared assets directory: $BERTSERVE_SHARED, else ../shared beside the source tree.
 * Exits the test with a failure (never a skip) if it is missing. */
const char *shared_dir(void);

/* shared_dir()/rel into a static buffer, failing the test if the file does not exist. */
const char *shared_path(const char *rel);

/* Calls fn(line, len, ctx) for each line of a file (without its newline); fails the test
 * if the file cannot be read. Returns the number of lines. */
int for_each_line(const char *path, void (*fn)(char *line, size_t len, void *ctx), void *ctx);

/* Writes dir/name with len bytes of data, failing the test (exit 1) if it cannot. */
void write_test_file(const char *dir, const char *name, const void *data, size_t len);

/* Whether a golden file's JSON array of token ids (or type ids) is got[0, n). */
struct cJSON;
bool json_ids_equal(const struct cJSON *expected, const int32_t *got, int n);

/* Loads the model directory dir and checks that it fails, with a message holding every fragment
 * given (NULL: none); prints what -> the message. */
void expect_load_failure(const char *dir, const char *what, const char *frag1, const char *frag2, const char *frag3);

#endif
