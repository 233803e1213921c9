/* The playground (issue 23): a page at GET / to try the model in a browser, with its script and
 * style sheet. Plain HTML, CSS and JavaScript from src/server/playground/, embedded in the binary
 * at build time (CMakeLists.txt: embed_files), so it works offline with nothing to install. */
#ifndef PLAYGROUND_H
#define PLAYGROUND_H

#include <stddef.h>

struct playground_file {
    const char *content_type;
    const unsigned char *data;
    const size_t *len; /* a pointer: the lengths are CMake's, not compile-time constants here */
};

/* The file served at path, or NULL. */
const struct playground_file *playground_find(const char *path);

/* The page's Content-Security-Policy: scripts, styles and requests to this origin only, nothing
 * inline, no frames, no forms elsewhere. */
#define PLAYGROUND_CSP                                                                                            \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "             \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

#endif
