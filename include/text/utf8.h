/* Strict UTF-8 decoding and encoding (RFC 3629): overlong forms, surrogates, code points
 * above U+10FFFF and truncated sequences are errors, never undefined behaviour. */
#ifndef UTF8_H
#define UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the code point starting at s[0] (n > 0 bytes available). Returns its length in
 * bytes (1-4) and stores it in *cp, or returns 0 if the bytes there are not valid UTF-8. */
int utf8_decode(const unsigned char *s, size_t n, int32_t *cp);

/* Writes cp (a valid scalar value) as UTF-8 into out (room for 4 bytes); returns the length. */
int utf8_encode(int32_t cp, char *out);

/* Returns the byte offset of the first invalid sequence in s, or n if s is valid UTF-8. */
size_t utf8_validate(const char *s, size_t n);

/* Copies s (n bytes, any bytes) into out (cap > 0 bytes, NUL-terminated) as valid UTF-8: each
 * byte that does not start a valid sequence becomes U+FFFD. Cut at a character boundary when
 * out is too small. For text that came from a client and goes into an answer or a log. */
void utf8_copy_valid(char *out, size_t cap, const char *s, size_t n);

#endif
