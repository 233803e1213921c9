/* bertserve-cli: the engine from the command line (tokenize, predict, eval, bench), and score. */
#include "cli/cli.h"
#include "common/bs_error.h"
#include "common/fileio.h"
#include "common/json_text.h"
#include "engine/bert.h"
#include "engine/model.h"
#include "engine/predict.h"
#include "text/any_tokenizer.h"
#include "text/utf8.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bertserve-cli tokenize --model DIR [--max-length N] [--jsonl] [--pair] < texts\n"
            "       bertserve-cli predict  --model DIR [--dtype T] [--max-length N] [--jsonl] [--pair] < texts\n"
            "       bertserve-cli eval     --model DIR [--dtype T] [--max-length N] FILE\n"
            "       bertserve-cli bench    --model DIR [--dtype T] [--iterations N]\n"
            "       bertserve-cli bench    --model DIR [--dtype T] [--batch N] [--iterations N] FILE\n"
            "       bertserve-cli score    PREDICTION_LOG FEEDBACK_FILE\n"
            "\n"
            "tokenize and predict read one text per line from stdin and write one JSON line each:\n"
            "  tokenize: {\"ids\": [...], \"tokens\": [...], \"type_ids\": [...], \"offsets\": [[start, end], ...],\n"
            "            \"truncated\": false} (offsets: each token's bytes in its text; [0, 0] for [CLS]/[SEP])\n"
            "  predict:  {\"label\": ..., \"score\": p, \"scores\": {label: p, ...}, \"logits\": [...],\n"
            "             \"tokens\": n, \"truncated\": false}\n"
            "or {\"error\": \"...\"} for an input it cannot encode (the exit status is then 1).\n"
            "eval reads a labelled file (Financial PhraseBank `sentence@label`, latin-1 or UTF-8, or\n"
            "`label<TAB>sentence`) and prints accuracy, per-class precision/recall/F1, macro-F1 and\n"
            "the confusion matrix. bench times the forward pass (see README, Performance); with a FILE\n"
            "of texts (one per line), it runs them in a fixed shuffled order as packed batches of\n"
            "--batch texts (default 16) and prints texts/s. score joins the daemon's --prediction-log\n"
            "with feedback JSON lines ({\"request_id\", \"index\", \"label\"}) and prints the same figures\n"
            "per model version (see README, Prediction log).\n"
            "\n"
            "  --model DIR       HuggingFace model directory (config.json, model.safetensors, and vocab.txt, or\n"
            "                    vocab.json + merges.txt for RoBERTa)\n"
            "  --dtype T         f32 (default), bf16 or int8: the encoder layers' linear weights\n"
            "                    rounded to bfloat16 at load (half their memory) and their products\n"
            "                    run on bf16 inputs with float32 sums; or int8: those weights\n"
            "                    quantized per output channel (a quarter of their memory), the\n"
            "                    activations per token as they enter each product, int32 sums;\n"
            "                    everything else stays float32; auto: the fastest of them this CPU\n"
            "                    runs natively (int8 with AVX512-VNNI, else bf16 with AVX512-BF16)\n"
            "  --max-length N    truncate to N tokens including [CLS]/[SEP] (default: the model's\n"
            "                    max_position_embeddings for predict/eval, no limit for tokenize)\n"
            "  --jsonl           each line is a JSON string, so texts may hold newlines\n"
            "  --pair            each line is a JSON array of two strings: a sentence pair\n"
            "  --batch N         bench FILE: texts per packed batch (default 16)\n"
            "  --iterations N    bench: timed runs per case (default: at least 5, about a second);\n"
            "                    with FILE, timed batches after one warm-up batch (default: about\n"
            "                    5 s); the batches wrap around the file, so (texts in FILE) /\n"
            "                    --batch of them run each text once\n");
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

/* One encoding as a JSON line; the offsets as HF `tokenizers` gives them, in bytes of each
 * token's own text (the pair's from e->pair_start on). */
static void print_encoding(const any_tokenizer *t, const encoding *e, const struct text_input *in)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *ids = cJSON_AddArrayToObject(out, "ids");
    cJSON *tokens = cJSON_AddArrayToObject(out, "tokens");
    cJSON *types = cJSON_AddArrayToObject(out, "type_ids");
    cJSON *offsets = cJSON_AddArrayToObject(out, "offsets");
    for (int i = 0; i < e->n; i++) {
        cJSON_AddItemToArray(ids, cJSON_CreateNumber(e->ids[i]));
        cJSON_AddItemToArray(tokens, cJSON_CreateString(any_tokenizer_token(t, e->ids[i])));
        cJSON_AddItemToArray(types, cJSON_CreateNumber(e->type_ids[i]));
        bool second = i >= e->pair_start;
        struct token_span sp =
            any_tokenizer_hf_span(t, e, i, second ? in->pair : in->text, second ? in->pair_len : in->len);
        int span[2] = {sp.start, sp.end};
        cJSON_AddItemToArray(offsets, cJSON_CreateIntArray(span, 2));
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

/* Returns 0, or the exit status to leave with (after printing why). */
static int parse_options(int argc, char **argv, struct options *o, bool *help)
{
    memset(o, 0, sizeof *o);
    *help = false;
    for (int i = 0; i < argc; i++) {
        bool has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--model") && has_value) {
            o->model = argv[++i];
        } else if ((!strcmp(argv[i], "--max-length") || !strcmp(argv[i], "--iterations") ||
                    !strcmp(argv[i], "--batch")) &&
                   has_value) {
            char *end;
            long v = strtol(argv[i + 1], &end, 10);
            if (*end || v < 1 || v > 1 << 20) {
                fprintf(stderr, "bertserve-cli: %s must be an integer from 1 to %d\n", argv[i], 1 << 20);
                return 2;
            }
            if (!strcmp(argv[i], "--max-length"))
                o->max_len = (int)v;
            else if (!strcmp(argv[i], "--batch"))
                o->batch = (int)v;
            else
                o->iterations = (int)v;
            i++;
        } else if (!strcmp(argv[i], "--dtype") && has_value) {
            if (bert_dtype_parse(argv[++i], &o->dtype) != 0) {
                fprintf(stderr, "bertserve-cli: --dtype must be f32, bf16, int8 or auto, not %s\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--jsonl")) {
            o->jsonl = true;
        } else if (!strcmp(argv[i], "--pair")) {
            o->pair = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            *help = true;
            return 0;
        } else if (argv[i][0] != '-' && !o->file) {
            o->file = argv[i];
        } else {
            fprintf(stderr, "bertserve-cli: unknown or incomplete option: %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!o->model) {
        fprintf(stderr, "bertserve-cli: --model DIR is required\n");
        return 2;
    }
    return 0;
}

static int cmd_tokenize(const struct options *o)
{
    char err[BS_ERR_LEN];
    if (o->max_len == 1) {
        fprintf(stderr, "bertserve-cli: --max-length must be at least 2\n");
        return 2;
    }
    any_tokenizer *t = any_tokenizer_load(o->model, err);
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
        if (parse_line(line, len, o->jsonl, o->pair, &in, &json, err) == 0 &&
            any_tokenizer_encode(t, in.text, in.len, in.pair, in.pair_len, o->max_len, TRUNCATE_RIGHT, &e, err) ==
                0) {
            print_encoding(t, &e, &in);
        } else {
            print_error(err);
            status = 1;
        }
        cJSON_Delete(json);
    }
    free(line);
    encoding_free(&e);
    any_tokenizer_free(t);
    return status;
}

/* ---- predict and eval: a tokenizer and a model, texts run in packed batches ---------- */

struct engine {
    any_tokenizer *tok;
    bert_model *model;
    int max_len;
    bert_scratch scratch;
};

static int engine_open(struct engine *en, const struct options *o)
{
    char err[BS_ERR_LEN];
    memset(en, 0, sizeof *en);
    en->tok = any_tokenizer_load(o->model, err);
    if (en->tok)
        en->model = bert_model_load_dtype(o->model, o->dtype, err);
    if (!en->tok || !en->model || bert_check_tokenizer(en->model, any_tokenizer_family(en->tok) == TOKENIZER_BPE,
                                                            any_tokenizer_vocab_size(en->tok), o->model,
                                                            any_tokenizer_vocab_file(en->tok), err)) {
        bert_model_free(en->model);
        fprintf(stderr, "bertserve-cli: %s\n", err);
        any_tokenizer_free(en->tok);
        return 1;
    }
    /* RoBERTa's positions start after pad_token_id: 514 of them hold 512 tokens. */
    int limit = en->model->cfg.max_tokens;
    if (o->max_len > limit || (o->max_len > 0 && o->max_len < 3)) {
        fprintf(stderr, "bertserve-cli: --max-length must be from 3 to the model's %d positions\n", limit);
        bert_model_free(en->model);
        any_tokenizer_free(en->tok);
        return 2;
    }
    en->max_len = o->max_len ? o->max_len : limit;
    return 0;
}

static void engine_close(struct engine *en)
{
    bert_scratch_free(&en->scratch);
    bert_model_free(en->model);
    any_tokenizer_free(en->tok);
}

#define BATCH_TEXTS 32

/* Texts collected for one packed forward pass. */
struct pending {
    int n;
    struct packed_tokens tokens;
    int lens[BATCH_TEXTS];
    bool truncated[BATCH_TEXTS];
    char *error[BATCH_TEXTS]; /* strdup'd message for inputs that failed, else NULL */
};

/* Tokenizes one input into the pending batch (or records its error). */
static int pending_add(struct pending *p, struct engine *en, encoding *e, const struct text_input *in,
                       const char *parse_err)
{
    char err[BS_ERR_LEN];
    int i = p->n++;
    p->lens[i] = 0;
    p->error[i] = NULL;
    if (parse_err || any_tokenizer_encode(en->tok, in->text, in->len, in->pair, in->pair_len, en->max_len,
                                          TRUNCATE_RIGHT, e, err)) {
        p->error[i] = strdup(parse_err ? parse_err : err);
        return 0;
    }
    if (packed_tokens_append(&p->tokens, e))
        return -1;
    p->lens[i] = e->n;
    p->truncated[i] = e->truncated;
    return 0;
}

/* Runs the pending batch; logits[i * n_labels ...] for each input without an error. */
static int pending_run(struct pending *p, struct engine *en, float *logits)
{
    int lens[BATCH_TEXTS], n = 0;
    for (int i = 0; i < p->n; i++)
        if (!p->error[i])
            lens[n++] = p->lens[i];
    if (n == 0)
        return 0;
    char err[BS_ERR_LEN];
    bert_batch b = {.ids = p->tokens.ids, .type_ids = p->tokens.type_ids, .lens = lens, .n_seqs = n};
    if (bert_forward(en->model, &b, logits, &en->scratch, err)) {
        fprintf(stderr, "bertserve-cli: %s\n", err);
        return -1;
    }
    return 0;
}

static void pending_clear(struct pending *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->error[i]);
    p->n = p->tokens.n = 0;
}

static void print_prediction(const bert_model *m, const float *logits, int tokens, bool truncated)
{
    const bert_config *c = &m->cfg;
    float probs[BERT_MAX_LABELS];
    int best = prediction_compute(m, logits, probs);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "label", c->labels[best]);
    cJSON_AddNumberToObject(out, "score", probs[best]);
    json_add_number_map(out, "scores", c->labels, probs, c->n_labels);
    cJSON *raw = cJSON_AddArrayToObject(out, "logits");
    for (int k = 0; k < c->n_labels; k++)
        cJSON_AddItemToArray(raw, cJSON_CreateNumber(logits[k]));
    cJSON_AddNumberToObject(out, "tokens", tokens);
    cJSON_AddBoolToObject(out, "truncated", truncated);
    char *s = cJSON_PrintUnformatted(out);
    puts(s);
    free(s);
    cJSON_Delete(out);
}

/* Prints the pending batch's results in input order; returns 1 if any input failed. */
static int pending_print(struct pending *p, const bert_model *m, const float *logits)
{
    int status = 0, k = 0;
    for (int i = 0; i < p->n; i++) {
        if (p->error[i]) {
            print_error(p->error[i]);
            status = 1;
        } else {
            print_prediction(m, logits + (size_t)k++ * (size_t)m->cfg.n_labels, p->lens[i], p->truncated[i]);
        }
    }
    return status;
}

static int cmd_predict(const struct options *o)
{
    struct engine en;
    int rc = engine_open(&en, o);
    if (rc)
        return rc;
    struct pending p = {0};
    encoding e = {0};
    float *logits = malloc(sizeof(float) * BATCH_TEXTS * (size_t)en.model->cfg.n_labels);
    char *line = NULL, err[BS_ERR_LEN];
    size_t cap = 0;
    ssize_t n;
    int status = logits ? 0 : 1;
    bool eof = false;
    while (status != -1 && logits && !eof) {
        eof = (n = getline(&line, &cap, stdin)) < 0;
        if (!eof) {
            size_t len = (size_t)n;
            if (len > 0 && line[len - 1] == '\n')
                line[--len] = '\0';
            struct text_input in;
            cJSON *json;
            int bad = parse_line(line, len, o->jsonl, o->pair, &in, &json, err);
            int added = pending_add(&p, &en, &e, &in, bad ? err : NULL);
            cJSON_Delete(json);
            if (added) {
                fprintf(stderr, "bertserve-cli: out of memory\n");
                status = -1;
                break;
            }
        }
        if (p.n == BATCH_TEXTS || (eof && p.n > 0)) {
            if (pending_run(&p, &en, logits)) {
                status = -1;
                break;
            }
            status |= pending_print(&p, en.model, logits);
            fflush(stdout);
            pending_clear(&p);
        }
    }
    pending_clear(&p);
    packed_tokens_free(&p.tokens);
    free(logits);
    free(line);
    encoding_free(&e);
    engine_close(&en);
    return status ? 1 : 0;
}

/* One labelled example of an eval file: a PhraseBank `sentence@label` line (latin-1 or
 * UTF-8) or a split file's `label<TAB>sentence` line. Rewrites line in place / into buf. */
static int parse_labelled(char *line, char **text, char **label, char *buf, size_t buf_size)
{
    char *tab = strchr(line, '\t');
    if (tab) {
        *tab = '\0';
        *label = line;
        *text = tab + 1;
    } else {
        char *at = strrchr(line, '@');
        if (!at)
            return -1;
        *at = '\0';
        *text = line;
        *label = at + 1;
    }
    size_t len = strlen(*text);
    if (utf8_validate(*text, len) != len) { /* latin-1: every byte is its code point */
        if (len * 2 + 1 > buf_size)
            return -1;
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
            n += (size_t)utf8_encode((unsigned char)(*text)[i], buf + n);
        buf[n] = '\0';
        *text = buf;
    }
    for (char *c = *label; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

static int label_index(const bert_config *c, const char *label)
{
    for (int k = 0; k < c->n_labels; k++)
        if (!strcasecmp(c->labels[k], label))
            return k;
    return -1;
}

void cli_print_eval(char *const *labels, int L, const long *confusion, long total)
{
    long correct = 0;
    for (int k = 0; k < L; k++)
        correct += confusion[k * L + k];
    printf("examples: %ld\naccuracy: %.4f\n\n%-12s %9s %9s %9s %8s\n", total,
           total ? (double)correct / (double)total : 0.0, "label", "precision", "recall", "f1", "support");
    double macro_f1 = 0;
    for (int k = 0; k < L; k++) {
        long tp = confusion[k * L + k], predicted = 0, actual = 0;
        for (int j = 0; j < L; j++) {
            predicted += confusion[j * L + k];
            actual += confusion[k * L + j];
        }
        double p = predicted ? (double)tp / (double)predicted : 0, r = actual ? (double)tp / (double)actual : 0;
        double f1 = p + r > 0 ? 2 * p * r / (p + r) : 0;
        macro_f1 += f1 / L;
        printf("%-12s %9.4f %9.4f %9.4f %8ld\n", labels[k], p, r, f1, actual);
    }
    printf("macro-F1: %.4f\n\nconfusion matrix (rows: true label, columns: predicted)\n%-12s", macro_f1, "");
    for (int k = 0; k < L; k++)
        printf(" %9.9s", labels[k]);
    for (int k = 0; k < L; k++) {
        printf("\n%-12s", labels[k]);
        for (int j = 0; j < L; j++)
            printf(" %9ld", confusion[k * L + j]);
    }
    printf("\n");
}

static int cmd_eval(const struct options *o)
{
    if (!o->file) {
        fprintf(stderr, "bertserve-cli: eval needs a labelled FILE\n");
        return 2;
    }
    FILE *f = fopen(o->file, "rb");
    if (!f) {
        perror(o->file);
        return 1;
    }
    struct engine en;
    int rc = engine_open(&en, o);
    if (rc) {
        fclose(f);
        return rc;
    }
    const bert_config *c = &en.model->cfg;
    int L = c->n_labels;
    long *confusion = calloc((size_t)L * (size_t)L, sizeof *confusion), total = 0, line_no = 0;
    float *logits = malloc(sizeof(float) * BATCH_TEXTS * (size_t)L);
    int gold[BATCH_TEXTS];
    struct pending p = {0};
    encoding e = {0};
    char *line = NULL, *converted = malloc(1 << 17);
    size_t cap = 0;
    ssize_t n;
    rc = confusion && logits && converted ? 0 : 1;
    bool eof = false;
    while (rc == 0 && !eof) {
        eof = (n = getline(&line, &cap, f)) < 0;
        if (!eof) {
            line_no++;
            size_t len = (size_t)n;
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            if (len == 0)
                continue;
            char *text, *label;
            int k;
            if (parse_labelled(line, &text, &label, converted, 1 << 17) || (k = label_index(c, label)) < 0) {
                fprintf(stderr, "bertserve-cli: %s:%ld: not `sentence@label` or `label<TAB>sentence` "
                                "with one of the model's labels\n", o->file, line_no);
                rc = 1;
                break;
            }
            struct text_input in = {.text = text, .len = strlen(text)};
            gold[p.n] = k;
            if (pending_add(&p, &en, &e, &in, NULL)) {
                rc = 1;
                break;
            }
            if (p.error[p.n - 1]) {
                fprintf(stderr, "bertserve-cli: %s:%ld: %s\n", o->file, line_no, p.error[p.n - 1]);
                rc = 1;
                break;
            }
        }
        if (p.n == BATCH_TEXTS || (eof && p.n > 0)) {
            if (pending_run(&p, &en, logits)) {
                rc = 1;
                break;
            }
            for (int i = 0; i < p.n; i++)
                confusion[gold[i] * L + prediction_argmax(logits + (size_t)i * (size_t)L, L)]++;
            total += p.n;
            pending_clear(&p);
        }
    }
    if (rc == 0)
        cli_print_eval(c->labels, c->n_labels, confusion, total);
    pending_clear(&p);
    packed_tokens_free(&p.tokens);
    free(converted);
    free(line);
    free(logits);
    free(confusion);
    encoding_free(&e);
    engine_close(&en);
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const struct {
        const char *name;
        int (*run)(const struct options *);
    } commands[] = {
        {"tokenize", cmd_tokenize}, {"predict", cmd_predict}, {"eval", cmd_eval}, {"bench", cli_bench},
    };
    if (!strcmp(argv[1], "score")) /* no model: it reads the daemon's logs */
        return cli_score(argc - 2, argv + 2);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name))
            continue;
        struct options o;
        bool help;
        int rc = parse_options(argc - 2, argv + 2, &o, &help);
        if (rc || help)
            return rc;
        return commands[i].run(&o);
    }
    fprintf(stderr, "bertserve-cli: unknown command: %s\n", argv[1]);
    usage(stderr);
    return 2;
}
