/* Malformed model directories (tiny-bert copied and damaged in a temporary directory) must
 * fail to load with a message naming the file and the problem; bad batches must be refused;
 * the half-precision conversions and bert_probabilities must be exact and stable. */
#include "check.h"
#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/bert.h"
#include "engine/model.h"
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[64];
static char *orig_config, *orig_weights;
static size_t orig_config_len, orig_weights_len;

static void write_file(const char *name, const void *data, size_t len) { write_test_file(tmp, name, data, len); }

static void remove_file(const char *name)
{
    char path[BS_PATH_LEN], err[BS_ERR_LEN];
    path_join(path, tmp, name, err);
    unlink(path);
}

static void restore(void)
{
    write_file("config.json", orig_config, orig_config_len);
    write_file("model.safetensors", orig_weights, orig_weights_len);
}

/* Loads tmp and checks that it fails with a message holding every given fragment. */
static void expect_failure(const char *what, const char *frag1, const char *frag2, const char *frag3)
{
    expect_load_failure(tmp, what, frag1, frag2, frag3);
}

static bert_model *expect_success(const char *what)
{
    char err[BS_ERR_LEN] = "";
    bert_model *m = bert_model_load(tmp, err);
    CHECK(m, "%s: %s", what, err);
    return m;
}

/* ---- safetensors surgery: the header as cJSON, the data area unchanged ---- */

static cJSON *header_of(size_t *data_start)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | (unsigned char)orig_weights[i];
    *data_start = 8 + (size_t)n;
    return cJSON_ParseWithLength(orig_weights + 8, (size_t)n);
}

/* Writes model.safetensors with this header (padded to 8 bytes like the reference writer),
 * followed by data_len bytes of the original data area and extra zero bytes. */
static void write_weights_extra(const cJSON *header, size_t data_len, size_t extra)
{
    size_t data_start;
    cJSON_Delete(header_of(&data_start));
    char *json = cJSON_PrintUnformatted(header);
    size_t hlen = strlen(json), padded = (hlen + 7) & ~(size_t)7;
    size_t total = 8 + padded + data_len + extra;
    unsigned char *buf = calloc(1, total);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(padded >> (8 * i));
    memcpy(buf + 8, json, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    memcpy(buf + 8 + padded, orig_weights + data_start, data_len);
    write_file("model.safetensors", buf, total);
    free(buf);
    free(json);
}

static void write_weights(const cJSON *header, size_t data_len)
{
    write_weights_extra(header, data_len, 0);
}

static size_t orig_data_len(void)
{
    size_t data_start;
    cJSON_Delete(header_of(&data_start));
    return orig_weights_len - data_start;
}

static void set_offsets(cJSON *h, const char *tensor, double begin, double end)
{
    cJSON *t = cJSON_GetObjectItem(h, tensor);
    double offs[2] = {begin, end};
    cJSON_ReplaceItemInObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
}

static void test_weights_errors(void)
{
    size_t data_len = orig_data_len();
    cJSON *h;

    restore();
    write_file("model.safetensors", orig_weights, 5);
    expect_failure("file shorter than 8 bytes", "model.safetensors", "truncated", NULL);

    write_file("model.safetensors", orig_weights, orig_weights_len / 2);
    expect_failure("truncated data", "model.safetensors", "outside the data area", NULL);

    {
        char *copy = malloc(orig_weights_len);
        memcpy(copy, orig_weights, orig_weights_len);
        uint64_t n = orig_weights_len; /* one more than the bytes after the length field */
        for (int i = 0; i < 8; i++)
            copy[i] = (char)(n >> (8 * i));
        write_file("model.safetensors", copy, orig_weights_len);
        expect_failure("header length beyond the file", "model.safetensors", "header length", NULL);
        memset(copy, 0xff, 8);
        write_file("model.safetensors", copy, orig_weights_len);
        expect_failure("header length 2^64-1", "model.safetensors", "header length", NULL);
        free(copy);
    }

    {
        static const char bad[] = "\x10\0\0\0\0\0\0\0{\"a\": [1, 2     ";
        write_file("model.safetensors", bad, sizeof bad - 1);
        expect_failure("bad header JSON", "model.safetensors", "not a valid JSON", NULL);
    }

    h = header_of(&(size_t){0});
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "classifier.bias"), "dtype", cJSON_CreateString("I32"));
    write_weights(h, data_len);
    expect_failure("dtype I32 (same size)", "model.safetensors", "classifier.bias", "dtype I32");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "classifier.bias"), "dtype", cJSON_CreateString("I64"));
    write_weights(h, data_len);
    expect_failure("dtype I64", "model.safetensors", "classifier.bias", "I64");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "classifier.bias"), "dtype", cJSON_CreateString("F17"));
    write_weights(h, data_len);
    expect_failure("unknown dtype", "model.safetensors", "classifier.bias", "dtype");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    cJSON_DeleteItemFromObject(h, "bert.encoder.layer.1.output.dense.bias");
    write_weights(h, data_len);
    expect_failure("missing tensor", "model.safetensors", "bert.encoder.layer.1.output.dense.bias", "missing");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    {
        int shape[2] = {16, 64}; /* same element count, so only the shape check can catch it */
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "bert.pooler.dense.weight"), "shape",
                                  cJSON_CreateIntArray(shape, 2));
    }
    write_weights(h, data_len);
    expect_failure("shape mismatch", "model.safetensors", "bert.pooler.dense.weight", "[16, 64]");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    {
        int shape[1] = {4};
        cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "classifier.bias"), "shape", cJSON_CreateIntArray(shape, 1));
    }
    write_weights(h, data_len);
    expect_failure("shape disagrees with offsets", "model.safetensors", "classifier.bias", "do not match");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    set_offsets(h, "classifier.bias", 0, 12); /* on top of bert.embeddings.LayerNorm.bias */
    write_weights(h, data_len);
    expect_failure("overlapping tensors", "model.safetensors", "classifier.bias", "overlap");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    set_offsets(h, "classifier.bias", (double)data_len, (double)data_len + 12);
    write_weights(h, data_len);
    expect_failure("offsets beyond the data", "model.safetensors", "classifier.bias", "outside the data area");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    set_offsets(h, "classifier.bias", 24, 12);
    write_weights(h, data_len);
    expect_failure("offsets reversed", "model.safetensors", "classifier.bias", "end before");
    cJSON_Delete(h);

    h = header_of(&(size_t){0});
    {
        int shape[1] = {0};
        cJSON *t = cJSON_AddObjectToObject(h, "bert.encoder.layer.2.output.dense.bias");
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, 1));
        double offs[2] = {(double)data_len, (double)data_len};
        cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
    }
    write_weights(h, data_len);
    expect_failure("layer beyond num_hidden_layers", "model.safetensors", "bert.encoder.layer.2.", "num_hidden_layers");
    cJSON_Delete(h);

    remove_file("model.safetensors");
    expect_failure("missing model.safetensors", "model.safetensors", "No such file", NULL);
    restore();
}

/* Logits of the first few tokens, to compare a variant of the model with the original. */
static void logits_of(const bert_model *m, float out[3])
{
    static const int32_t ids[] = {101, 4082, 5618, 3123, 2423, 102}, types[6] = {0};
    int len = 6;
    bert_batch b = {ids, types, &len, 1};
    bert_scratch s = {0};
    char err[BS_ERR_LEN];
    CHECK(bert_forward(m, &b, out, &s, err) == 0, "%s", err);
    bert_scratch_free(&s);
}

static void test_weights_variants(void)
{
    size_t data_len = orig_data_len();
    restore();
    bert_model *m = expect_success("original tiny-bert");
    if (!m)
        return;
    float want[3], got[3];
    logits_of(m, want);

    /* TF-era LayerNorm names, and an extra I64 position_ids buffer as older HF exports hold. */
    cJSON *h = header_of(&(size_t){0}), *renamed = cJSON_CreateObject();
    for (cJSON *t = h->child; t; t = t->next) {
        char name[256];
        snprintf(name, sizeof name, "%s", t->string);
        char *p = strstr(name, "LayerNorm.");
        if (p && !strcmp(p, "LayerNorm.weight"))
            strcpy(p, "LayerNorm.gamma");
        else if (p && !strcmp(p, "LayerNorm.bias"))
            strcpy(p, "LayerNorm.beta");
        cJSON_AddItemToObject(renamed, name, cJSON_Duplicate(t, 1));
    }
    {
        int shape[2] = {1, 8};
        cJSON *t = cJSON_AddObjectToObject(renamed, "bert.embeddings.position_ids");
        cJSON_AddStringToObject(t, "dtype", "I64");
        cJSON_AddItemToObject(t, "shape", cJSON_CreateIntArray(shape, 2));
        double offs[2] = {0, 64}; /* the first 64 data bytes: overlaps, so refused */
        cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
    }
    write_weights(renamed, data_len);
    expect_failure("extra tensor overlapping", "model.safetensors", "overlap", NULL);
    {
        /* Now with 64 bytes of its own after the original data. */
        cJSON *t = cJSON_GetObjectItem(renamed, "bert.embeddings.position_ids");
        double offs[2] = {(double)data_len, (double)data_len + 64};
        cJSON_ReplaceItemInObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
    }
    write_weights_extra(renamed, data_len, 64);
    bert_model *legacy = expect_success("gamma/beta names + position_ids");
    if (legacy) {
        logits_of(legacy, got);
        for (int i = 0; i < 3; i++)
            CHECK(got[i] == want[i], "gamma/beta model: logit %d is %g, original %g", i, got[i], want[i]);
        bert_model_free(legacy);
    }
    cJSON_Delete(renamed);
    cJSON_Delete(h);
    bert_model_free(m);
    restore();
}

/* ---- config.json ---- */

static void with_config(const char *what, void (*edit)(cJSON *), const char *frag1, const char *frag2)
{
    restore();
    cJSON *c = cJSON_ParseWithLength(orig_config, orig_config_len);
    edit(c);
    char *text = cJSON_Print(c);
    write_file("config.json", text, strlen(text));
    free(text);
    cJSON_Delete(c);
    expect_failure(what, "config.json", frag1, frag2);
}

static void no_hidden(cJSON *c) { cJSON_DeleteItemFromObject(c, "hidden_size"); }
static void fractional_hidden(cJSON *c) { cJSON_ReplaceItemInObject(c, "hidden_size", cJSON_CreateNumber(32.5)); }
static void string_layers(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_hidden_layers", cJSON_CreateString("2")); }
static void zero_heads(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_attention_heads", cJSON_CreateNumber(0)); }
static void five_heads(cJSON *c) { cJSON_ReplaceItemInObject(c, "num_attention_heads", cJSON_CreateNumber(5)); }
static void relu(cJSON *c) { cJSON_ReplaceItemInObject(c, "hidden_act", cJSON_CreateString("relu")); }
static void gelu_new(cJSON *c) { cJSON_ReplaceItemInObject(c, "hidden_act", cJSON_CreateString("gelu_new")); }
static void negative_eps(cJSON *c) { cJSON_ReplaceItemInObject(c, "layer_norm_eps", cJSON_CreateNumber(-1)); }
static void relative_pos(cJSON *c)
{
    cJSON_ReplaceItemInObject(c, "position_embedding_type", cJSON_CreateString("relative_key"));
}
static void regression(cJSON *c) { cJSON_AddStringToObject(c, "problem_type", "regression"); }
static void label_gap(cJSON *c) { cJSON_DeleteItemFromObject(cJSON_GetObjectItem(c, "id2label"), "1"); }
static void small_vocab(cJSON *c) { cJSON_ReplaceItemInObject(c, "vocab_size", cJSON_CreateNumber(30000)); }
static void two_labels(cJSON *c)
{
    cJSON_DeleteItemFromObject(c, "id2label");
    cJSON_AddNumberToObject(c, "num_labels", 2);
}

static void test_config_errors(void)
{
    with_config("missing hidden_size", no_hidden, "hidden_size", "missing");
    with_config("fractional hidden_size", fractional_hidden, "hidden_size", "integer");
    with_config("string num_hidden_layers", string_layers, "num_hidden_layers", "integer");
    with_config("zero heads", zero_heads, "num_attention_heads", NULL);
    with_config("hidden not divisible by heads", five_heads, "not divisible", NULL);
    with_config("hidden_act relu", relu, "hidden_act", "relu");
    with_config("hidden_act gelu_new", gelu_new, "hidden_act", "gelu_new");
    with_config("negative layer_norm_eps", negative_eps, "layer_norm_eps", NULL);
    with_config("relative positions", relative_pos, "position_embedding_type", NULL);
    with_config("regression", regression, "problem_type", "regression");
    with_config("id2label with a gap", label_gap, "id2label", "id 1");

    /* Config and weights disagree: the message names the weights file and the tensor. */
    restore();
    cJSON *c = cJSON_ParseWithLength(orig_config, orig_config_len);
    small_vocab(c);
    char *text = cJSON_Print(c);
    write_file("config.json", text, strlen(text));
    free(text);
    cJSON_Delete(c);
    expect_failure("vocab_size disagrees", "model.safetensors", "word_embeddings", "[30000, 32]");
    c = cJSON_ParseWithLength(orig_config, orig_config_len);
    two_labels(c);
    text = cJSON_Print(c);
    write_file("config.json", text, strlen(text));
    free(text);
    cJSON_Delete(c);
    expect_failure("num_labels disagrees", "model.safetensors", "classifier.weight", NULL);

    restore();
    write_file("config.json", "{\"hidden_size\": 32,", 19);
    expect_failure("config.json not JSON", "config.json", "not a valid JSON", NULL);
    remove_file("config.json");
    expect_failure("missing config.json", "config.json", "No such file", NULL);
    restore();

    /* No id2label: HF's LABEL_i names, num_labels of them (3 here, to fit the weights). */
    c = cJSON_ParseWithLength(orig_config, orig_config_len);
    cJSON_DeleteItemFromObject(c, "id2label");
    cJSON_AddNumberToObject(c, "_num_labels", 3);
    text = cJSON_Print(c);
    write_file("config.json", text, strlen(text));
    free(text);
    cJSON_Delete(c);
    bert_model *m = expect_success("_num_labels without id2label");
    if (m) {
        CHECK(m->cfg.n_labels == 3 && !strcmp(m->cfg.labels[2], "LABEL_2"), "labels %d %s",
              m->cfg.n_labels, m->cfg.labels[0]);
        bert_model_free(m);
    }
    restore();
}

static void same_labels(cJSON *c)
{
    cJSON *labels = cJSON_CreateObject();
    for (int i = 0; i < 3; i++) {
        char key[4];
        snprintf(key, sizeof key, "%d", i);
        cJSON_AddStringToObject(labels, key, "a");
    }
    cJSON_ReplaceItemInObject(c, "id2label", labels);
}

/* Sets element 0 of a float32 tensor in a copy of the weights to v. */
static void write_weights_with(const char *tensor, float v)
{
    size_t data_start;
    cJSON *h = header_of(&data_start);
    const cJSON *offsets = cJSON_GetObjectItem(cJSON_GetObjectItem(h, tensor), "data_offsets");
    size_t at = data_start + (size_t)cJSON_GetArrayItem(offsets, 0)->valuedouble;
    cJSON_Delete(h);
    char *copy = malloc(orig_weights_len);
    memcpy(copy, orig_weights, orig_weights_len);
    memcpy(copy + at, &v, sizeof v);
    write_file("model.safetensors", copy, orig_weights_len);
    free(copy);
}

/* Model files that lie: non-finite weights, duplicate labels, and files that are not regular
 * or not of a plausible size (issue: a config.json linked to /dev/zero read without end; a
 * vocab.txt FIFO hung startup). Each fails at once, naming the file. */
static void test_lying_files(void)
{
    restore();
    write_weights_with("classifier.bias", NAN);
    expect_failure("NaN in classifier.bias", "model.safetensors", "classifier.bias", "non-finite");
    write_weights_with("bert.encoder.layer.1.output.dense.weight", -INFINITY);
    expect_failure("-Inf in a layer's weight", "bert.encoder.layer.1.output.dense.weight", "non-finite", NULL);
    restore();
    with_config("duplicate label names", same_labels, "id2label", "\"a\" twice");

    char path[BS_PATH_LEN], err[BS_ERR_LEN];
    restore();
    path_join(path, tmp, "config.json", err);
    unlink(path);
    CHECK(symlink("/dev/zero", path) == 0, "symlink");
    expect_failure("config.json linked to /dev/zero", "config.json", "not a regular file", NULL);
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    expect_failure("config.json a FIFO", "config.json", "not a regular file", NULL);
    unlink(path);
    restore();
    CHECK(truncate(path, (off_t)CONFIG_MAX_BYTES + 1) == 0, "truncate");
    expect_failure("config.json of 16 MiB + 1", "config.json", "over the limit", NULL);
    restore();
    path_join(path, tmp, "model.safetensors", err);
    unlink(path);
    CHECK(mkfifo(path, 0600) == 0, "mkfifo");
    expect_failure("model.safetensors a FIFO", "model.safetensors", "not a regular file", NULL);
    unlink(path);
    restore();

    /* A vocab.txt with more tokens than vocab_size: a token past the embedding table; a tokenizer
     * of the other family. */
    bert_model *m = expect_success("the model for the vocabulary check");
    if (m) {
        CHECK(bert_check_tokenizer(m, false, m->cfg.vocab_size, "dir", "vocab.txt", err) == 0,
              "a vocab of vocab_size fits: %s", err);
        CHECK(bert_check_tokenizer(m, false, m->cfg.vocab_size + 1, "dir", "vocab.txt", err) == -1 &&
                  strstr(err, "dir/vocab.txt") && strstr(err, "vocab_size"),
              "one token too many: %s", err);
        CHECK(bert_check_tokenizer(m, true, 10, "dir", "vocab.json", err) == -1 &&
                  strstr(err, "model_type bert needs a WordPiece tokenizer") && strstr(err, "vocab.json"),
              "BERT on byte-level BPE ids: %s", err);
        bert_model_free(m);
    }
}

static void test_batch_errors(void)
{
    restore();
    bert_model *m = expect_success("tiny-bert for batch checks");
    if (!m)
        return;
    int32_t ids[4] = {101, 2000, 3000, 102}, types[4] = {0, 0, 1, 1};
    float logits[6];
    bert_scratch s = {0};
    char err[BS_ERR_LEN];
    struct {
        const char *what;
        int lens[2], n_seqs;
        int32_t bad_id, bad_type;
        const char *frag;
    } cases[] = {
        {"id beyond the vocabulary", {4, 0}, 1, 30522, 0, "vocabulary"},
        {"negative id", {4, 0}, 1, -1, 0, "vocabulary"},
        {"token type 2", {4, 0}, 1, 2000, 2, "token type"},
        {"empty sequence", {2, 0}, 2, 2000, 0, "sequence 1"},
        {"longer than max_position_embeddings", {129, 0}, 1, 2000, 0, "max_position_embeddings"},
        {"no sequences", {4, 0}, 0, 2000, 0, "empty batch"},
    };
    int32_t *long_ids = calloc(129, sizeof *long_ids), *long_types = calloc(129, sizeof *long_types);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ids[1] = cases[i].bad_id;
        types[2] = cases[i].bad_type;
        bert_batch b = {ids, types, cases[i].lens, cases[i].n_seqs};
        if (cases[i].lens[0] > 4)
            b.ids = long_ids, b.type_ids = long_types;
        err[0] = '\0';
        CHECK(bert_forward(m, &b, logits, &s, err) == -1, "%s: accepted", cases[i].what);
        CHECK(strstr(err, cases[i].frag), "%s: message lacks \"%s\": %s", cases[i].what, cases[i].frag, err);
        printf("%-34s -> %s\n", cases[i].what, err);
    }
    free(long_ids);
    free(long_types);
    bert_scratch_free(&s);
    bert_model_free(m);
}

static void test_half_conversions(void)
{
    struct { uint16_t h; float f; } f16[] = {
        {0x0000, 0.0f}, {0x3c00, 1.0f}, {0xc000, -2.0f}, {0x7bff, 65504.0f},
        {0x0400, 6.103515625e-05f}, {0x0001, 5.9604644775390625e-08f}, {0x03ff, 6.097555160522461e-05f},
        {0x8001, -5.9604644775390625e-08f}, {0x3555, 0.333251953125f},
    };
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++)
        CHECK(st_f16_to_f32(f16[i].h) == f16[i].f, "f16 0x%04x -> %.9g, want %.9g", f16[i].h,
              st_f16_to_f32(f16[i].h), f16[i].f);
    CHECK(signbit(st_f16_to_f32(0x8000)) && st_f16_to_f32(0x8000) == 0.0f, "f16 -0");
    CHECK(isinf(st_f16_to_f32(0x7c00)) && st_f16_to_f32(0x7c00) > 0, "f16 +inf");
    CHECK(isinf(st_f16_to_f32(0xfc00)) && st_f16_to_f32(0xfc00) < 0, "f16 -inf");
    CHECK(isnan(st_f16_to_f32(0x7e00)) && isnan(st_f16_to_f32(0x7c01)), "f16 NaN");
    /* Every finite half converts to the value its bits denote. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        int e = (h >> 10) & 0x1f, mant = h & 0x3ff;
        if (e == 0x1f)
            continue;
        double v = e ? ldexp(1024 + mant, e - 25) : ldexp(mant, -24);
        if (h & 0x8000)
            v = -v;
        bad += st_f16_to_f32((uint16_t)h) != (float)v;
    }
    CHECK(bad == 0, "%d half values convert wrongly", bad);

    CHECK(st_bf16_to_f32(0x3f80) == 1.0f && st_bf16_to_f32(0xc040) == -3.0f, "bf16 normal");
    CHECK(st_bf16_to_f32(0x0001) == ldexpf(1, -133), "bf16 subnormal");
    CHECK(isinf(st_bf16_to_f32(0xff80)) && isnan(st_bf16_to_f32(0x7fc0)), "bf16 inf/nan");
}

static void test_probabilities(void)
{
    bert_model m = {0};
    m.cfg.n_labels = 2;
    float a[2] = {-100, 5};
    bert_probabilities(&m, a);
    CHECK(!isnan(a[0]) && !isnan(a[1]) && fabsf(a[0] + a[1] - 1) < 1e-6f && a[1] > 0.999999f,
          "softmax [-100, 5] = [%g, %g]", a[0], a[1]);
    float b[3] = {1000, -1000, 0};
    m.cfg.n_labels = 3;
    bert_probabilities(&m, b);
    CHECK(b[0] == 1.0f && b[1] == 0.0f && b[2] == 0.0f, "softmax [1000, -1000, 0] = [%g, %g, %g]", b[0],
          b[1], b[2]);
    float c[3] = {0, 0, logf(2)};
    bert_probabilities(&m, c);
    CHECK(fabsf(c[0] - 0.25f) < 1e-7f && fabsf(c[2] - 0.5f) < 1e-7f, "softmax [0, 0, ln 2] = [%g, %g, %g]",
          c[0], c[1], c[2]);

    m.cfg.multi_label = true;
    m.cfg.n_labels = 4;
    float d[4] = {0, 1000, -1000, 2};
    bert_probabilities(&m, d);
    CHECK(d[0] == 0.5f && d[1] == 1.0f && d[2] == 0.0f && fabsf(d[3] - 0.8807970779778823f) < 1e-7f,
          "sigmoid [0, 1000, -1000, 2] = [%g, %g, %g, %g]", d[0], d[1], d[2], d[3]);
    float e[1] = {-20};
    m.cfg.n_labels = 1;
    bert_probabilities(&m, e);
    CHECK(fabsf(e[0] - 2.0611536e-09f) < 1e-15f, "sigmoid(-20) = %g", e[0]);
}

int main(void)
{
    char err[BS_ERR_LEN], path[BS_PATH_LEN];
    const char *src = shared_path("models/tiny-bert");
    path_join(path, src, "config.json", err);
    orig_config = read_whole_file(path, SIZE_MAX, &orig_config_len, err);
    path_join(path, src, "model.safetensors", err);
    orig_weights = read_whole_file(path, SIZE_MAX, &orig_weights_len, err);
    snprintf(tmp, sizeof tmp, "/tmp/bertserve-errors-XXXXXX");
    if (!orig_config || !orig_weights || !mkdtemp(tmp)) {
        fprintf(stderr, "FAIL: cannot set up the test directory: %s\n", err);
        return 1;
    }

    test_weights_errors();
    test_weights_variants();
    test_config_errors();
    test_lying_files();
    test_batch_errors();
    test_half_conversions();
    test_probabilities();

    remove_file("config.json");
    remove_file("model.safetensors");
    rmdir(tmp);
    free(orig_config);
    free(orig_weights);
    return test_finish("test_model_errors");
}
