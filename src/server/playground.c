#include "server/playground.h"

#include <string.h>

/* Written by CMake (embed_files) into the build tree: each file's bytes and length. */
extern const unsigned char embed_index_html[], embed_playground_js[], embed_playground_css[], embed_favicon_svg[];
extern const size_t embed_index_html_len, embed_playground_js_len, embed_playground_css_len, embed_favicon_svg_len;

/* Which file each path serves (the paths are what openapi_contract_test.js reads from here). */
static const char *const paths[] = {"/", "/playground.js", "/playground.css", "/favicon.svg"};
static const struct playground_file files[] = {
    {"text/html; charset=utf-8", embed_index_html, &embed_index_html_len},
    {"text/javascript; charset=utf-8", embed_playground_js, &embed_playground_js_len},
    {"text/css; charset=utf-8", embed_playground_css, &embed_playground_css_len},
    {"image/svg+xml", embed_favicon_svg, &embed_favicon_svg_len},
};

const struct playground_file *playground_find(const char *path)
{
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(path, paths[i]))
            return &files[i];
    return NULL;
}
