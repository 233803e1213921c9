/* The growable buffer and grow_array: contents after appends, capacity that doubles, printf
 * output longer than any first guess, and failures that leave the buffer as it was. */
#include "check.h"
#include "common/buffer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_append(void)
{
    struct buffer b = {0};
    CHECK(buffer_append(&b, "abc", 3) == 0, "append to an empty buffer failed");
    CHECK(b.len == 3 && b.cap >= 4 && !strcmp(b.data, "abc"), "len %zu cap %zu", b.len, b.cap);
    CHECK(buffer_append(&b, "d\0e", 3) == 0, "append with a NUL inside failed");
    CHECK(b.len == 6 && !memcmp(b.data, "abcd\0e", 7), "bytes after a NUL are kept, and one follows");
    CHECK(buffer_append(&b, "", 0) == 0 && b.len == 6, "an empty append changes nothing");
    buffer_free(&b);
    CHECK(!b.data && b.len == 0 && b.cap == 0, "buffer_free leaves an empty buffer");
}

/* One byte at a time: every growth at least doubles, so there are few of them. */
static void check_doubling(void)
{
    struct buffer b = {0};
    size_t n = 100000, growths = 0;
    for (size_t i = 0; i < n; i++) {
        size_t cap = b.cap;
        char c = (char)('a' + i % 26);
        CHECK(buffer_append(&b, &c, 1) == 0, "append %zu failed", i);
        if (b.cap != cap) {
            growths++;
            CHECK(cap == 0 || b.cap >= 2 * cap, "capacity grew from %zu to %zu, less than double", cap, b.cap);
        }
        CHECK(b.cap > b.len, "no room for the NUL: len %zu cap %zu", b.len, b.cap);
    }
    CHECK(growths <= 20, "%zu growths for %zu one-byte appends", growths, n);
    CHECK(b.len == n && strlen(b.data) == n, "len %zu, strlen %zu", b.len, strlen(b.data));
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += b.data[i] != (char)('a' + i % 26);
    CHECK(wrong == 0, "%zu bytes differ from what was appended", wrong);
    buffer_free(&b);
}

static void check_appendf(void)
{
    struct buffer b = {0};
    CHECK(buffer_appendf(&b, "%s", "") == 0 && b.data && b.len == 0 && !strcmp(b.data, ""),
          "formatting nothing still gives a C string");
    CHECK(buffer_appendf(&b, "x=%d ", 42) == 0 && !strcmp(b.data, "x=42 "), "got \"%s\"", b.data);

    /* Far longer than anything the buffer held, so it has to grow mid-format. */
    size_t long_len = 10000;
    char *long_text = malloc(long_len + 1);
    CHECK(long_text != NULL, "out of memory");
    if (!long_text)
        return;
    for (size_t i = 0; i < long_len; i++)
        long_text[i] = (char)('A' + i % 26);
    long_text[long_len] = '\0';
    CHECK(buffer_appendf(&b, "[%s]%c%.3f", long_text, '!', 0.5) == 0, "long appendf failed");
    char tail[32];
    snprintf(tail, sizeof tail, "%c%.3f", '!', 0.5);
    size_t want = 5 + 1 + long_len + 1 + strlen(tail);
    CHECK(b.len == want && strlen(b.data) == want, "len %zu, want %zu", b.len, want);
    CHECK(!strncmp(b.data, "x=42 [", 6) && !memcmp(b.data + 6, long_text, long_len) &&
              !strcmp(b.data + 6 + long_len, "]!0.500"),
          "the long output is not what was formatted");
    free(long_text);
    buffer_free(&b);
}

static void check_reserve(void)
{
    struct buffer b = {0};
    CHECK(buffer_append(&b, "hello", 5) == 0, "append failed");
    CHECK(buffer_reserve(&b, 1000) == 0 && b.cap >= 5 + 1000 + 1 && b.len == 5, "cap %zu len %zu", b.cap, b.len);
    char *data = b.data;
    CHECK(buffer_reserve(&b, 100) == 0 && b.data == data, "reserving room already there moved the data");
    size_t cap = b.cap;
    CHECK(buffer_reserve(&b, SIZE_MAX) == -1, "reserving SIZE_MAX bytes succeeded");
    CHECK(b.data == data && b.cap == cap && b.len == 5 && !strcmp(b.data, "hello"), "a failed reserve changed the buffer");
    buffer_free(&b);
}

static void check_grow_array(void)
{
    int32_t *v = NULL;
    size_t cap = 0;
    CHECK(grow_array(&v, &cap, 1, sizeof *v) == 0 && v && cap >= 1, "growing to 1 element failed");
    v[0] = 7;
    CHECK(grow_array(&v, &cap, 1000, sizeof *v) == 0 && cap >= 1000, "growing to 1000 failed: cap %zu", cap);
    CHECK(v[0] == 7, "growth lost the first element");
    for (int i = 0; i < 1000; i++)
        v[i] = i; /* all 1000 are writable (AddressSanitizer would say otherwise) */
    size_t old_cap = cap;
    CHECK(grow_array(&v, &cap, 1001, sizeof *v) == 0 && cap >= 2 * old_cap, "cap %zu after %zu: not doubled", cap,
          old_cap);
    CHECK(v[999] == 999, "growth lost the last element");
    int32_t *before = v;
    old_cap = cap;
    CHECK(grow_array(&v, &cap, SIZE_MAX / 2, sizeof *v) == -1, "an impossible size succeeded");
    CHECK(v == before && cap == old_cap && v[500] == 500, "a failed grow changed the array");
    free(v);
}

int main(void)
{
    check_append();
    check_doubling();
    check_appendf();
    check_reserve();
    check_grow_array();
    return test_finish("test_buffer");
}
