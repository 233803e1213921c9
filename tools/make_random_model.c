/* Writes a model directory with seeded random weights for any BERT config:
 *   build/make-random-model CONFIG_JSON OUT_DIR [SEED]
 * e.g. build/make-random-model ../shared/models/finbert/config.json /tmp/finbert-random */
#include "common/bs_error.h"
#include "random_model.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: make-random-model CONFIG_JSON OUT_DIR [SEED]\n");
        return 2;
    }
    unsigned long long seed = argc == 4 ? strtoull(argv[3], NULL, 10) : 20261125;
    char err[BS_ERR_LEN];
    long params = random_model_write(argv[1], argv[2], seed, err);
    if (params < 0) {
        fprintf(stderr, "make-random-model: %s\n", err);
        return 1;
    }
    printf("%s/model.safetensors: %ld parameters, seed %llu\n", argv[2], params, seed);
    return 0;
}
