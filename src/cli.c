/* bertserve-cli: the engine from the command line.
 *   bertserve-cli tokenize --model DIR [--max-length N] [--jsonl] [--pair] < texts */
#include "bs_error.h"
#include "json_text.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bertserve-cli tokenize --model DIR [--max-length N] [--jsonl] [--pair]\n"
            "\n"
            "Reads one text per line from stdin and writes one JSON line per text:\n"
            "  {\"ids\": [...], \"tokens\": [...], \"type_ids\": [...], \"truncated\": false}\n"
            "or {\"error\": \"...\"} for an input it cannot encode (the exit status is then 1).\n"
            "\n"
            "  --model DIR       model directory holding vocab.txt (and tokenizer_config.json)\n"
            "  --max-length N    truncate to N tokens including [CLS]/[SEP] (default: no limit)\n"
            "  --jsonl           each line is a JSON string, so texts may hold newlines\n"
            "  --pair            each line is a JSON array of two strings: a sentence pair\n");
}

struct text_input {
    const char *text, *pair;
    size_t len, pair_len;
};

/* Parses one stdin line (without its newline) into a text or pair. The cJSON tree that
 * owns the strings is returned in *json (NULL for plain lines). */
static int parse_line(char *line, size_t len, bool jsonl, bool pair, struct text_input *in,
                      cJSON **json, char *err)
{
    *json = NULL;
    memset(in, 0, sizeof *in);
    if (!jsonl && !pair) {
        in->text = line;
        in->len = len;
        return 0;
    }
    json_replace_nul_escapes(line, len);
    cJSON *root = cJSON_ParseWithLength(line, len);
    *json = root;
    if (pair) {
        if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) != 2 ||
            !cJSON_IsString(cJSON_GetArrayItem(root, 0)) || !cJSON_IsString(cJSON_GetArrayItem(root, 1)))
            return bs_fail(err, "expected a JSON array of two strings");
        in->text = cJSON_GetArrayItem(root, 0)->valuestring;
        in->pair = cJSON_GetArrayItem(root, 1)->valuestring;
        in->pair_len = strlen(in->pair);
    } else {
        if (!cJSON_IsString(root))
            return bs_fail(err, "expected a JSON string");
        in->text = root->valuestring;
    }
    in->len = strlen(in->text);
    return 0;
}

static void print_encoding(const tokenizer *t, const encoding *e)
{
    const vocab *v = tokenizer_vocab(t);
    cJSON *out = cJSON_CreateObject();
    cJSON *ids = cJSON_AddArrayToObject(out, "ids");
    cJSON *tokens = cJSON_AddArrayToObject(out, "tokens");
    cJSON *types = cJSON_AddArrayToObject(out, "type_ids");
    for (int i = 0; i < e->n; i++) {
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(e->ids[i]));
        cJSON_AddItemToArray(tokens, cJSON_CreateString(vocab_token(v, e->ids[i])));
        cJSON_AddItemToArray(types, cJSON_CreateNumber(e->type_ids[i]));
    }
    cJSON_AddBoolToObject(out, "truncated", e->truncated);
    char *s = cJSON_PrintUnformatted(out);
    puts(s);
    free(s);
    cJSON_Delete(out);
}

static void print_error(const char *msg)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "error", msg);
    char *s = cJSON_PrintUnformatted(out);
    puts(s);
    free(s);
    cJSON_Delete(out);
}

static int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    int max_len = 0;
    bool jsonl = false, pair = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) {
            model = argv[++i];
        } else if (!strcmp(argv[i], "--max-length") && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 2 || v > 1 << 20) {
                fprintf(stderr, "bertserve-cli: --max-length must be an integer from 2 to %d\n", 1 << 20);
                return 2;
            }
            max_len = (int)v;
        } else if (!strcmp(argv[i], "--jsonl")) {
            jsonl = true;
        } else if (!strcmp(argv[i], "--pair")) {
            pair = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bertserve-cli: unknown or incomplete option: %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model) {
        fprintf(stderr, "bertserve-cli: --model DIR is required\n");
        return 2;
    }
    char err[BS_ERR_LEN];
    tokenizer *t = tokenizer_load(model, err);
    if (!t) {
        fprintf(stderr, "bertserve-cli: %s\n", err);
        return 1;
    }
    encoding e = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int status = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        struct text_input in;
        cJSON *json;
        if (parse_line(line, len, jsonl, pair, &in, &json, err) == 0 &&
            tokenizer_encode(t, in.text, in.len, in.pair, in.pair_len, max_len, &e, err) == 0) {
            print_encoding(t, &e);
        } else {
            print_error(err);
            status = 1;
        }
        cJSON_Delete(json);
    }
    free(line);
    encoding_free(&e);
    tokenizer_free(t);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "tokenize"))
        return cmd_tokenize(argc - 2, argv + 2);
    fprintf(stderr, "bertserve-cli: unknown command: %s\n", argv[1]);
    usage(stderr);
    return 2;
}
