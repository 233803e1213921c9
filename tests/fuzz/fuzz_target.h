/* What the fuzz targets share: a failed property aborts, which libFuzzer and the replay driver
 * (fuzz_main.c) both report as a crash with the input that caused it. */
#ifndef FUZZ_TARGET_H
#define FUZZ_TARGET_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond, ...)                                                          \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The shared assets' model directory name ($BERTSERVE_SHARED/models/NAME, the shared assets
 * beside the source tree by default) into path[4096], for the targets that load a tokenizer. */
static inline void fuzz_model_dir(const char *name, char path[4096])
{
    const char *shared = getenv("BERTSERVE_SHARED");
    if (!shared || !*shared)
        shared = BERTSERVE_DEFAULT_SHARED;
    snprintf(path, 4096, "%s/models/%s", shared, name);
}

#endif
