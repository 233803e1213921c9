#include "text/byte_level.h"

#include "text/utf8.h"

#include <utf8proc.h>

int32_t byte_level_char(unsigned char b)
{
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)
        return b;
    /* the 68 others, in byte order: 0x00-0x20, 0x7F-0xA0, 0xAD */
    if (b <= 0x20)
        return 0x100 + b;
    if (b <= 0xA0)
        return 0x100 + 0x21 + (b - 0x7F);
    return 0x100 + 0x21 + 0x22; /* 0xAD */
}

int byte_level_byte(int32_t cp)
{
    if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF))
        return cp;
    if (cp >= 0x100 && cp <= 0x120)
        return cp - 0x100;
    if (cp >= 0x121 && cp <= 0x142)
        return cp - 0x121 + 0x7F;
    if (cp == 0x143)
        return 0xAD;
    return -1;
}

bool byte_level_is_space(int32_t cp)
{
    if (cp < 0x80)
        return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* What the pattern distinguishes: \s, \p{L}, \p{N} and everything else. */
enum char_class { CLASS_SPACE, CLASS_LETTER, CLASS_NUMBER, CLASS_OTHER };

static enum char_class classify(int32_t cp)
{
    if (cp < 0x80) { /* most text: no table lookup */
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
            return CLASS_LETTER;
        if (cp >= '0' && cp <= '9')
            return CLASS_NUMBER;
        return byte_level_is_space(cp) ? CLASS_SPACE : CLASS_OTHER;
    }
    if (byte_level_is_space(cp))
        return CLASS_SPACE;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
        return CLASS_LETTER;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return CLASS_NUMBER;
    default:
        return CLASS_OTHER;
    }
}

/* The class of the character at s[i] (i < n), its length in *len. */
static enum char_class class_at(const unsigned char *s, size_t n, size_t i, int *len)
{
    int32_t cp = s[i];
    *len = s[i] < 0x80 ? 1 : utf8_decode(s + i, n - i, &cp);
    if (*len == 0) /* not reached on validated text; one byte of "other" keeps us moving */
        *len = 1;
    return classify(cp);
}

/* 's 't 're 've 'm 'll 'd: case-sensitive, ASCII apostrophe only. */
static size_t contraction_len(const unsigned char *s, size_t n)
{
    if (n < 2 || s[0] != '\'')
        return 0;
    if (s[1] == 's' || s[1] == 't' || s[1] == 'm' || s[1] == 'd')
        return 2;
    if (n >= 3 && ((s[1] == 'r' && s[2] == 'e') || (s[1] == 'v' && s[2] == 'e') ||
                   (s[1] == 'l' && s[2] == 'l')))
        return 3;
    return 0;
}

/* The end of the run of characters of class cls starting at i. */
static size_t run_end(const unsigned char *s, size_t n, size_t i, enum char_class cls)
{
    int len;
    while (i < n && class_at(s, n, i, &len) == cls)
        i += (size_t)len;
    return i;
}

size_t byte_level_piece_len(const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t c = contraction_len(s, n);
    if (c)
        return c;
    /* ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional U+0020, then a run of one class */
    int len;
    size_t body = s[0] == ' ' && n > 1 ? 1 : 0;
    enum char_class cls = class_at(s, n, body, &len);
    if (cls != CLASS_SPACE) /* else a space before a space starts a whitespace run */
        return run_end(s, n, body, cls);
    /* `\s+(?!\S)`: a whitespace run followed by the end, or all of it but its last character
     * (which then goes with the word after it); `\s+` when the run is one character. */
    size_t last = 0, i = 0;
    while (i < n && class_at(s, n, i, &len) == CLASS_SPACE) {
        last = i;
        i += (size_t)len;
    }
    return i == n || last == 0 ? i : last;
}
