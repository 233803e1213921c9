/* The OpenAPI 3.1 description of the daemon's HTTP API (docs/openapi.json), compiled into the
 * binary at build time (CMake turns the file into a C array), so GET /openapi.json reads no file
 * at run time and always describes the binary that serves it. */
#ifndef OPENAPI_H
#define OPENAPI_H

#include <stddef.h>

extern const unsigned char openapi_json[]; /* not NUL-terminated */
extern const size_t openapi_json_len;

#endif
