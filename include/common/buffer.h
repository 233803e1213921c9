/* Growing memory: a byte buffer for text or data being built up, and the same growth for
 * arrays of any element type. Capacity at least doubles whenever it grows, so appending n
 * bytes one at a time copies O(n) bytes in all. Every function returns 0, or -1 when out of
 * memory, leaving what was already there untouched. */
#ifndef BUFFER_H
#define BUFFER_H

#include <stdarg.h>
#include <stddef.h>

/* A zeroed struct is an empty buffer. After a successful append, data[len] is '\0', so a
 * buffer of text can be used as a C string. The caller owns data: buffer_free it, or keep it
 * and free() it. */
struct buffer {
    char *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
};

/* Makes room for n more bytes and a terminating '\0' after them: data[len .. len + n] may then
 * be written (e.g. by fread), and len advanced past what was. */
int buffer_reserve(struct buffer *b, size_t n);
/* Appends n bytes. */
int buffer_append(struct buffer *b, const void *bytes, size_t n);
/* Appends printf-formatted text, however long. */
int buffer_appendf(struct buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buffer_vappendf(struct buffer *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Frees data and empties the buffer. */
void buffer_free(struct buffer *b);

/* Makes *array (the address of any pointer, e.g. an int32_t **) hold at least need elements of
 * elem_size bytes; *cap counts the elements it holds now, and is updated. */
int grow_array(void *array, size_t *cap, size_t need, size_t elem_size);

#endif
