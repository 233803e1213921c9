/* The strict UTF-8 decoder: every kind of invalid input is rejected at the right offset. */
#include "check.h"
#include "text/utf8.h"

#include <string.h>

static void expect_invalid(const char *what, const char *s, size_t n, size_t offset)
{
    size_t got = utf8_validate(s, n);
    CHECK(got == offset, "%s: invalid at %zu, expected %zu", what, got, offset);
}

int main(void)
{
    /* valid: every encoding length and the boundaries of each */
    static const struct { const char *s; int32_t cp; } valid[] = {
        {"\x00", 0}, {"\x7F", 0x7F}, {"\xC2\x80", 0x80}, {"\xDF\xBF", 0x7FF},
        {"\xE0\xA0\x80", 0x800}, {"\xED\x9F\xBF", 0xD7FF}, {"\xEE\x80\x80", 0xE000},
        {"\xEF\xBF\xBF", 0xFFFF}, {"\xF0\x90\x80\x80", 0x10000}, {"\xF4\x8F\xBF\xBF", 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        size_t n = valid[i].cp ? strlen(valid[i].s) : 1;
        int32_t cp = -1;
        CHECK(utf8_decode((const unsigned char *)valid[i].s, n, &cp) == (int)n && cp == valid[i].cp,
              "U+%04X does not decode", valid[i].cp);
        char buf[4];
        CHECK(utf8_encode(valid[i].cp, buf) == (int)n && memcmp(buf, valid[i].s, n) == 0,
              "U+%04X does not encode back", valid[i].cp);
        CHECK(utf8_validate(valid[i].s, n) == n, "U+%04X rejected", valid[i].cp);
    }

    expect_invalid("lone continuation byte", "ab\x80", 3, 2);
    expect_invalid("overlong 2-byte (C0 80 = NUL)", "\xC0\x80", 2, 0);
    expect_invalid("overlong 2-byte (C1 BF)", "x\xC1\xBF", 3, 1);
    expect_invalid("overlong 3-byte (E0 80 AF = '/')", "\xE0\x80\xAF", 3, 0);
    expect_invalid("overlong 4-byte", "\xF0\x8F\xBF\xBF", 4, 0);
    expect_invalid("surrogate D800", "\xED\xA0\x80", 3, 0);
    expect_invalid("surrogate DFFF", "ok \xED\xBF\xBF", 6, 3);
    expect_invalid("above U+10FFFF (F4 90)", "\xF4\x90\x80\x80", 4, 0);
    expect_invalid("byte F5", "\xF5\x80\x80\x80", 4, 0);
    expect_invalid("byte FF", "\xFF", 1, 0);
    expect_invalid("byte FE", "a\xFE", 2, 1);
    expect_invalid("truncated 2-byte at end", "a\xC3", 2, 1);
    expect_invalid("truncated 3-byte at end", "\xE2\x82", 2, 0);
    expect_invalid("truncated 4-byte at end", "\xF0\x9F\x98", 3, 0);
    expect_invalid("truncated 3-byte before ASCII", "\xE2\x82x", 3, 0);
    expect_invalid("continuation missing in 4-byte", "\xF0\x9F\x98\x41", 4, 0);
    return test_finish("test_utf8");
}
