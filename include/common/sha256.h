/* SHA-256 (FIPS 180-4), to identify the weights a server runs. */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t total; /* bytes hashed so far */
    unsigned char block[64];
    size_t used;    /* bytes waiting in block */
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t len);
void sha256_final(sha256_ctx *c, unsigned char digest[32]);

/* Hex sha256 of a file (65 bytes with NUL), for /info; -1 with err on read failure. */
int sha256_file(const char *path, char hex[65], char *err);

#endif
