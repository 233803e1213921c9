#include "text/normalizer.h"

#include <stddef.h>
#include <utf8proc.h>

struct cp_override {
    int32_t cp;
    enum cp_class cls; /* HF's class when lower-casing */
    int32_t norm;      /* HF's normalised code point when lower-casing, 0 if dropped */
};

static const struct cp_override overrides[] = {
#include "unicode_overrides.inc"
};

static const struct cp_override *find_override(int32_t cp)
{
    size_t lo = 0, hi = sizeof overrides / sizeof overrides[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (overrides[mid].cp == cp)
            return &overrides[mid];
        if (overrides[mid].cp < cp)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The CJK ranges of HF's BertNormalizer (including its 0x2B920 where Python has 0x2B820;
 * 0x2B820-0x2B91F is in the override table as ordinary word characters). */
static bool is_cjk(int32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static bool is_punct(int32_t cp)
{
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
        (cp >= 123 && cp <= 126))
        return true;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return true;
    default:
        return false;
    }
}

/* clean_text's two tests, before any other step looks at the character. */
static enum cp_class clean_text_class(int32_t cp)
{
    if (cp == '\t' || cp == '\n' || cp == '\r')
        return CP_SPACE;
    if (cp == 0 || cp == 0xFFFD)
        return CP_DROP;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CS:
        return CP_DROP; /* unassigned (Cn) is deliberately not here: HF keeps it */
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
        return CP_SPACE;
    default:
        return CP_WORD;
    }
}

enum cp_class bert_normalize_cp(int32_t cp, bool lowercase, int32_t out[NORM_MAX_CPS], int *n_out)
{
    *n_out = 0;
    if (cp < 0x80) { /* ASCII: no table lookups */
        if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r')
            return CP_SPACE;
        if (cp < 0x20 || cp == 0x7F)
            return CP_DROP;
        out[(*n_out)++] = (lowercase && cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return is_punct(cp) ? CP_PUNCT : CP_WORD;
    }

    const struct cp_override *o = find_override(cp);
    if (o) {
        if (!lowercase) /* without NFD and lower-casing only the class differs */
            return out[(*n_out)++] = cp, o->cls == CP_DROP ? CP_WORD : o->cls;
        if (o->norm)
            out[(*n_out)++] = o->norm;
        return o->cls;
    }

    enum cp_class cls = clean_text_class(cp);
    if (cls != CP_WORD)
        return cls;

    int32_t buf[NORM_MAX_CPS];
    int n = 1;
    buf[0] = cp;
    if (lowercase) {
        utf8proc_ssize_t r = utf8proc_decompose_char(cp, buf, NORM_MAX_CPS, UTF8PROC_DECOMPOSE, NULL);
        n = (r > 0 && r <= NORM_MAX_CPS) ? (int)r : (buf[0] = cp, 1);
    }
    for (int i = 0; i < n; i++) {
        if (lowercase && utf8proc_category(buf[i]) == UTF8PROC_CATEGORY_MN)
            continue; /* accent stripping */
        out[(*n_out)++] = lowercase ? utf8proc_tolower(buf[i]) : buf[i];
    }
    if (*n_out == 0)
        return CP_DROP;
    if (is_cjk(cp))
        return CP_CJK;
    return is_punct(out[0]) ? CP_PUNCT : CP_WORD;
}

static uint8_t combining_class(int32_t cp)
{
    return (uint8_t)utf8proc_get_property(cp)->combining_class;
}

/* The class HF's NFD gives a piece that survives the stripping. Its normalisation tables are
 * older than utf8proc's: spacing marks added since (Unicode 13 and 14: U+1715, U+1193D,
 * U+16FF0-1) and the newer non-spacing marks its category tables keep as letters (the
 * override table's) are unassigned there, so class 0: they are never reordered. */
static uint8_t kept_combining_class(int32_t cp)
{
    if (cp == 0x1715 || cp == 0x1193D || cp == 0x16FF0 || cp == 0x16FF1 || find_override(cp))
        return 0;
    return (uint8_t)utf8proc_get_property(cp)->combining_class;
}

int bert_nfd_pieces(int32_t cp, struct nfd_piece out[NORM_MAX_CPS])
{
    if (cp < 0x80) { /* ASCII: controls are removed, everything else is a starter */
        if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7F)
            return 0;
        out[0] = (struct nfd_piece){.ccc = 0, .kept = true};
        return 1;
    }
    bool mn = utf8proc_category(cp) == UTF8PROC_CATEGORY_MN;
    const struct cp_override *o = find_override(cp);
    if (o) { /* HF's tables decide; its NFD of these is not known here: one piece */
        if (o->cls == CP_DROP && !mn)
            return 0; /* a control or format character, by HF's tables */
        bool kept = o->cls != CP_DROP;
        out[0] = (struct nfd_piece){.ccc = kept ? 0 : combining_class(cp), .kept = kept};
        return 1;
    }
    enum cp_class cls = clean_text_class(cp);
    if (cls == CP_DROP)
        return 0;
    if (cls == CP_SPACE) {
        out[0] = (struct nfd_piece){.ccc = 0, .kept = true};
        return 1;
    }
    int32_t buf[NORM_MAX_CPS];
    utf8proc_ssize_t r = utf8proc_decompose_char(cp, buf, NORM_MAX_CPS, UTF8PROC_DECOMPOSE, NULL);
    int n = (r > 0 && r <= NORM_MAX_CPS) ? (int)r : (buf[0] = cp, 1);
    for (int i = 0; i < n; i++) {
        bool kept = utf8proc_category(buf[i]) != UTF8PROC_CATEGORY_MN;
        out[i] = (struct nfd_piece){.ccc = kept ? kept_combining_class(buf[i]) : combining_class(buf[i]), .kept = kept};
    }
    return n;
}

void bert_canonical_order(int32_t *cps, int n)
{
    for (int i = 1; i < n; i++) {
        int32_t c = cps[i];
        int cc = utf8proc_get_property(c)->combining_class;
        if (cc == 0)
            continue;
        int j = i;
        while (j > 0) {
            int prev = utf8proc_get_property(cps[j - 1])->combining_class;
            if (prev <= cc)
                break; /* a starter (class 0) or a mark that sorts before: stop */
            cps[j] = cps[j - 1];
            j--;
        }
        cps[j] = c;
    }
}
