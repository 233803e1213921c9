#include "text/utf8.h"

#include <string.h>

int utf8_decode(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned char b = s[0];
    int len;
    int32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        len = 2, c = b & 0x1F, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        len = 3, c = b & 0x0F, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        len = 4, c = b & 0x07, min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xC0/0xC1 (always overlong) or > 0xF4 */
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

int utf8_encode(int32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_validate(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int32_t cp;
    while (i < n) {
        if (p[i] < 0x80) { /* ASCII fast path: most of what we see */
            i++;
            continue;
        }
        int len = utf8_decode(p + i, n - i, &cp);
        if (len == 0)
            return i;
        i += (size_t)len;
    }
    return n;
}

void utf8_copy_valid(char *out, size_t cap, const char *s, size_t n)
{
    static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    int32_t cp;
    while (i < n) {
        int len = p[i] < 0x80 ? 1 : utf8_decode(p + i, n - i, &cp);
        const char *from = len ? s + i : replacement;
        size_t bytes = len ? (size_t)len : 3;
        if (o + bytes >= cap)
            break;
        memcpy(out + o, from, bytes);
        o += bytes;
        i += len ? (size_t)len : 1;
    }
    out[o] = '\0';
}
