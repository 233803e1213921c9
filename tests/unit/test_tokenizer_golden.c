/* Token ids and type ids identical to HuggingFace tokenizers on every golden case. */
#include "check.h"
#include "common/bs_error.h"
#include "common/json_text.h"
#include "text/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

struct run {
    const char *file;
    const tokenizer *tok;
    encoding enc;
    int cases, mismatches;
};

static void check_case(char *line, size_t len, void *ctx)
{
    struct run *r = ctx;
    json_replace_nul_escapes(line, len);
    cJSON *c = cJSON_ParseWithLength(line, len);
    const cJSON *id = cJSON_GetObjectItem(c, "id"), *text = cJSON_GetObjectItem(c, "text"),
                *pair = cJSON_GetObjectItem(c, "text_pair"), *ids = cJSON_GetObjectItem(c, "ids"),
                *types = cJSON_GetObjectItem(c, "type_ids"), *max = cJSON_GetObjectItem(c, "max_length"),
                *untrunc = cJSON_GetObjectItem(c, "untruncated_length");
    if (!cJSON_IsString(text) || !cJSON_IsArray(ids)) {
        CHECK(0, "%s: malformed golden line: %.80s", r->file, line);
        cJSON_Delete(c);
        return;
    }
    r->cases++;
    const char *p = cJSON_IsString(pair) ? pair->valuestring : NULL;
    int max_len = cJSON_IsNumber(max) ? max->valueint : 0;
    char err[BS_ERR_LEN];
    int rc = tokenizer_encode(r->tok, text->valuestring, strlen(text->valuestring), p,
                              p ? strlen(p) : 0, max_len, &r->enc, err);
    CHECK(rc == 0, "%s %s: %s", r->file, id->valuestring, err);
    if (rc != 0) {
        cJSON_Delete(c);
        return;
    }
    const encoding *e = &r->enc;
    bool ok = json_ids_equal(ids, e->ids, e->n);
    if (types) {
        ok = ok && json_ids_equal(types, e->type_ids, e->n);
    } else {
        for (int i = 0; i < e->n; i++)
            ok = ok && e->type_ids[i] == 0;
    }
    int expect_untrunc = cJSON_IsNumber(untrunc) ? untrunc->valueint : cJSON_GetArraySize(ids);
    ok = ok && e->n_untruncated == expect_untrunc && e->truncated == (expect_untrunc > e->n);
    if (!ok && ++r->mismatches <= 10) {
        char *want = cJSON_PrintUnformatted(ids), *quoted = cJSON_PrintUnformatted(text);
        fprintf(stderr, "%s %s: text %s\n  want %s\n  got ", r->file, id->valuestring, quoted, want);
        free(quoted);
        for (int i = 0; i < e->n; i++)
            fprintf(stderr, "%s%d", i ? "," : "[", e->ids[i]);
        fprintf(stderr, "] untruncated %d truncated %d\n", e->n_untruncated, e->truncated);
        free(want);
    }
    cJSON_Delete(c);
}

int main(void)
{
    char err[BS_ERR_LEN];
    const char *model = shared_path("models/finbert");
    tokenizer *tok = tokenizer_load(model, err);
    CHECK(tok != NULL, "%s", err);
    if (!tok)
        return test_finish("test_tokenizer_golden");
    static const struct {
        const char *file;
        int min_cases; /* guards against a golden file that silently shrank */
    } files[] = {
        {"golden/tokenizer/cases.jsonl", 4043},
        {"golden/tokenizer/pairs.jsonl", 270},
        {"golden/tokenizer/truncation.jsonl", 188},
        {"golden/tokenizer/special_literals.jsonl", 33},
        {"golden/tokenizer/phrasebank.jsonl", 4846},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct run r = {.file = files[i].file, .tok = tok};
        for_each_line(shared_path(files[i].file), check_case, &r);
        CHECK(r.cases >= files[i].min_cases, "%s: only %d cases read", r.file, r.cases);
        CHECK(r.mismatches == 0, "%s: %d of %d cases differ from HF", r.file, r.mismatches, r.cases);
        printf("%s: %d cases, %d mismatches\n", r.file, r.cases, r.mismatches);
        encoding_free(&r.enc);
    }
    tokenizer_free(tok);
    return test_finish("test_tokenizer_golden");
}
