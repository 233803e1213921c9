/* Shared between the bertserve-cli commands (src/cli*.c); not part of the library. */
#ifndef CLI_H
#define CLI_H

#include "engine/model.h"

#include <stdbool.h>

struct options {
    const char *model, *file;
    int max_len; /* 0: the command's default */
    bool jsonl, pair;
    int iterations;
    int batch; /* bench FILE: texts per batch */
    enum bert_dtype dtype; /* --dtype: predict, eval and bench */
};

/* bertserve-cli bench: times the forward pass (src/cli/cli_bench.c). */
int cli_bench(const struct options *o);

#endif
