/* Error messages: every fallible function takes `char err[BS_ERR_LEN]` and, on failure,
 * writes one human-readable sentence there that the caller can pass on unchanged
 * (to stderr at startup, into a JSON error body while serving). */
#ifndef BS_ERROR_H
#define BS_ERROR_H

#define BS_ERR_LEN 512

/* Formats the message into err (if err is not NULL) and returns -1, so that
 * `return bs_fail(err, "...", ...);` reads as one statement. */
int bs_fail(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
