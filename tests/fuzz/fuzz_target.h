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

#endif
