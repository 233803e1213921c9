/* Every code point (U+0000-U+10FFFF minus surrogates) is classified and normalised as
 * HF tokenizers does it, per codepoints.tsv. */
#include "check.h"
#include "text/normalizer.h"

#include <stdlib.h>
#include <string.h>

struct run {
    int32_t next; /* first code point not yet covered by the table */
    long checked, mismatches;
};

static const char *class_name(enum cp_class c)
{
    static const char *names[] = {"drop", "space", "cjk", "punct", "word"};
    return names[c];
}

static void check_range(char *line, size_t len, void *ctx)
{
    struct run *r = ctx;
    (void)len;
    if (line[0] == '#')
        return;
    char *fields[4];
    int nf = 0;
    for (char *tok = strtok(line, "\t"); tok && nf < 4; tok = strtok(NULL, "\t"))
        fields[nf++] = tok;
    if (nf != 4) {
        CHECK(0, "malformed codepoints.tsv line");
        return;
    }
    int32_t first = (int32_t)strtol(fields[0], NULL, 16), last = (int32_t)strtol(fields[1], NULL, 16);
    int32_t norm[NORM_MAX_CPS];
    int n_norm = 0;
    bool same = !strcmp(fields[3], "="), none = !strcmp(fields[3], "-");
    if (!same && !none)
        for (char *tok = strtok(fields[3], " "); tok && n_norm < NORM_MAX_CPS; tok = strtok(NULL, " "))
            norm[n_norm++] = (int32_t)strtol(tok, NULL, 16);
    if (first != r->next && !(r->next == 0xD800 && first == 0xE000))
        CHECK(0, "table gap before U+%04X", first);
    r->next = last + 1;
    for (int32_t cp = first; cp <= last; cp++) {
        int32_t out[NORM_MAX_CPS];
        int n_out;
        enum cp_class c = bert_normalize_cp(cp, true, out, &n_out);
        bool ok = !strcmp(class_name(c), fields[2]);
        if (same)
            ok = ok && n_out == 1 && out[0] == cp;
        else if (none)
            ok = ok && n_out == 0;
        else
            ok = ok && n_out == n_norm && memcmp(out, norm, sizeof(int32_t) * (size_t)n_out) == 0;
        r->checked++;
        if (!ok && ++r->mismatches <= 20)
            fprintf(stderr, "U+%04X: want %s %s, got %s (%d cps, first U+%04X)\n", cp, fields[2],
                    fields[3], class_name(c), n_out, n_out ? out[0] : 0);
    }
}

int main(void)
{
    struct run r = {0};
    for_each_line(shared_path("golden/tokenizer/codepoints.tsv"), check_range, &r);
    CHECK(r.next == 0x110000, "table ends at U+%04X", r.next);
    CHECK(r.checked == 0x110000 - 0x800, "%ld code points checked", r.checked);
    CHECK(r.mismatches == 0, "%ld of %ld code points differ from HF", r.mismatches, r.checked);
    printf("codepoints: %ld checked, %ld mismatches\n", r.checked, r.mismatches);
    return test_finish("test_codepoints");
}
