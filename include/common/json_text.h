#ifndef JSON_TEXT_H
#define JSON_TEXT_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* cJSON hands strings back NUL-terminated, so a "\u0000" escape inside a text would cut it
 * short. BERT's normalizer drops U+0000 and U+FFFD alike, so rewriting each such escape to
 * "\uFFFD" before parsing keeps the rest of the text and tokenizes identically. In place
 * (same length); escaped backslashes ("\\u0000" is text, not an escape) are respected. */
void json_replace_nul_escapes(char *json, size_t len);

/* True if the JSON text holds a \uXXXX escape of a UTF-16 surrogate that is not part of a
 * high + low pair: text no UTF-8 can hold, which cJSON refuses as a parse error. Lets a
 * server answer "invalid text" (422) rather than "invalid JSON" (400) for it. */
bool json_has_lone_surrogate(const char *json, size_t len);

/* The offset of the first byte that makes text (len bytes) invalid JSON by itself: a raw
 * control character (below 0x20) inside a string, where RFC 8259 requires an escape, or one
 * other than space, tab, CR and LF outside strings; len if there is none. cJSON accepts raw
 * control characters inside strings, and a raw NUL there would cut the text short. */
size_t json_raw_control_byte(const char *json, size_t len);

/* Adds {keys[0]: values[0], ...} (n pairs, in order) to obj under name, e.g. a score per
 * label; NULL when out of memory. */
cJSON *json_add_number_map(cJSON *obj, const char *name, char *const *keys, const float *values, int n);

#endif
