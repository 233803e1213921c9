/* GPT-2's byte-level pre-tokenization (HF `tokenizers` ByteLevel with use_regex, as RoBERTa
 * uses it): the text is split into pieces by GPT-2's pattern
 *     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (written out by hand below, no regex library), and each byte of a piece is then shown as one
 * printable character (bytes_to_unicode) for the vocabulary and the merges. */
#ifndef BYTE_LEVEL_H
#define BYTE_LEVEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The code point GPT-2's bytes_to_unicode gives byte b: `!`..`~`, `¡`..`¬` and `®`..`ÿ` stand
 * for themselves, the other 68 bytes are U+0100.. in byte order (space is `Ġ` U+0120). */
int32_t byte_level_char(unsigned char b);

/* The byte b that byte_level_char maps to cp, or -1 if cp is not one of the 256. */
int byte_level_byte(int32_t cp);

/* Unicode White_Space, which is what `\s` means in the pattern (Oniguruma, as HF's Rust build
 * uses it): it includes U+0085 and excludes U+200B, U+FEFF and U+180E. Also Rust's
 * char::is_whitespace, which HF uses to strip around an added token (lstrip/rstrip). */
bool byte_level_is_space(int32_t cp);

/* The length in bytes of the pattern's match at the start of s (n > 0 bytes of valid UTF-8):
 * the next piece. Always at least one character. */
size_t byte_level_piece_len(const char *s, size_t n);

#endif
