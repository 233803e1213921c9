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

/* Accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix
 * ([actual * L + predicted], L labels) on stdout: eval's and score's report. */
void cli_print_eval(char *const *labels, int L, const long *confusion, long total);

/* bertserve-cli score PREDICTION_LOG FEEDBACK_FILE (src/cli/cli_score.c); argv after "score". */
int cli_score(int argc, char **argv);

#endif
