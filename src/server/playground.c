#include "server/playground.h"

#include <string.h>

/* Written by CMake (embed_files) into the build tree: each file's bytes and length. */
extern const unsigned char embed_index_html[], embed_playground_js[], embed_playground_css[], embed_favicon_svg[];
extern const size_t embed_index_html_len, embed_playground_js_len, embed_playground_css_len, embed_favicon_svg_len;
#define N_FILES 4

const struct playground_file *playground_find(const char *path)
{
    static struct playground_file files[N_FILES];
    static const char *const paths[N_FILES] = {"/", "/playground.js", "/playground.css", "/favicon.svg"};
    static const char *const types[N_FILES] = {"text/html; charset=utf-8", "text/javascript; charset=utf-8",
                                               "text/css; charset=utf-8", "image/svg+xml"};
    const unsigned char *data[N_FILES] = {embed_index_html, embed_playground_js, embed_playground_css,
                                          embed_favicon_svg};
    size_t len[N_FILES] = {embed_index_html_len, embed_playground_js_len, embed_playground_css_len,
                           embed_favicon_svg_len};
    for (int i = 0; i < N_FILES; i++)
        if (!strcmp(path, paths[i])) {
            files[i] = (struct playground_file){paths[i], types[i], data[i], len[i]};
            return &files[i];
        }
    return NULL;
}
