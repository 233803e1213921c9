#ifndef FILEIO_H
#define FILEIO_H

#include <stddef.h>
#include <stdio.h>

/* Opens path for reading, never blocking: it must be a regular file (or a link to one) of at
 * most max_bytes, so that a model file that is a FIFO, a device such as /dev/zero, or a huge
 * file fails with a message naming it instead of hanging or eating memory. *size gets its size
 * as stat(2) says (0 for files in /proc). NULL with err naming the file and the problem. */
FILE *open_regular_file(const char *path, size_t max_bytes, size_t *size, char *err);

/* Reads the whole regular file (see open_regular_file; at most max_bytes) into a NUL-terminated
 * heap buffer (free() it); *len excludes the NUL. NULL with a message naming the file in err. */
char *read_whole_file(const char *path, size_t max_bytes, size_t *len, char *err);

/* The limits for a model's files: far above any real one (bert-base's config.json is under
 * 1 KB, its vocab.txt 232 KB; a multilingual vocab.txt 1 MB), far below what would hurt. */
#define CONFIG_MAX_BYTES ((size_t)16 << 20) /* config.json, tokenizer_config.json */
#define VOCAB_MAX_BYTES ((size_t)64 << 20)  /* vocab.txt */

/* Joins dir and name with a '/' into out (size BS_PATH_LEN); -1 with err if too long. */
#define BS_PATH_LEN 4096
int path_join(char out[BS_PATH_LEN], const char *dir, const char *name, char *err);

#endif
