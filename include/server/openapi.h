/* The OpenAPI 3.1 description of the daemon's HTTP API (docs/openapi.json), compiled into the
 * binary at build time (CMake turns the file into a C array), so GET /openapi.json reads no file
 * at run time and always describes the binary that serves it. */
#ifndef OPENAPI_H
#define OPENAPI_H

#include <stddef.h>

/* Written by CMake (embed_files in CMakeLists.txt); NUL-terminated past its length. */
extern const unsigned char embed_openapi_json[];
extern const size_t embed_openapi_json_len;

#endif
