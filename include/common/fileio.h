#ifndef FILEIO_H
#define FILEIO_H

#include <stddef.h>

/* Reads the whole file into a NUL-terminated heap buffer (free() it); *len excludes the NUL.
 * On failure returns NULL with a message naming the file in err. */
char *read_whole_file(const char *path, size_t *len, char *err);

/* Joins dir and name with a '/' into out (size BS_PATH_LEN); -1 with err if too long. */
#define BS_PATH_LEN 4096
int path_join(char out[BS_PATH_LEN], const char *dir, const char *name, char *err);

#endif
