#include "common/buffer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int grow_array(void *array, size_t *cap, size_t need, size_t elem_size)
{
    if (need <= *cap)
        return 0;
    size_t new_cap = *cap <= SIZE_MAX / 2 && *cap * 2 > need ? *cap * 2 : need;
    if (new_cap > SIZE_MAX / elem_size)
        return -1;
    /* The caller's pointer is read and written as bytes: C has no type for "a pointer to any
     * pointer" (a void ** may only point at a void *). */
    void *old;
    memcpy(&old, array, sizeof old);
    void *grown = realloc(old, new_cap * elem_size);
    if (!grown)
        return -1;
    memcpy(array, &grown, sizeof grown);
    *cap = new_cap;
    return 0;
}

int buffer_reserve(struct buffer *b, size_t n)
{
    if (n > SIZE_MAX - 1 - b->len)
        return -1;
    return grow_array(&b->data, &b->cap, b->len + n + 1, 1);
}

int buffer_append(struct buffer *b, const void *bytes, size_t n)
{
    if (buffer_reserve(b, n))
        return -1;
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buffer_vappendf(struct buffer *b, const char *fmt, va_list ap)
{
    /* Measure first, then format into room made for exactly that. */
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    int rc = n < 0 || buffer_reserve(b, (size_t)n) ? -1 : 0;
    if (rc == 0) {
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
        b->len += (size_t)n;
    }
    va_end(again);
    return rc;
}

int buffer_appendf(struct buffer *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = buffer_vappendf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void buffer_free(struct buffer *b)
{
    free(b->data);
    *b = (struct buffer){0};
}
