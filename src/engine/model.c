/* For madvise(MADV_HUGEPAGE), a Linux extension. */
#define _DEFAULT_SOURCE
#include "engine/model.h"

#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/gemm.h"
#include "engine/gemm_bf16.h"
#include "engine/gemm_int8.h"
#include "engine/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- config.json ---- */

/* An integer field in [lo, hi]. JSON has only doubles, so 12.0 is accepted and 12.5 is not. */
static int config_int(const cJSON *root, const char *path, const char *key, int lo, int hi,
                      int *out, char *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!j)
        return bs_fail(err, "%s: required field %s is missing", path, key);
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < lo ||
        j->valuedouble > hi)
        return bs_fail(err, "%s: field %s must be an integer from %d to %d", path, key, lo, hi);
    *out = (int)j->valuedouble;
    return 0;
}

static int config_labels(const cJSON *root, const char *path, bert_config *cfg, char *err)
{
    const cJSON *id2label = cJSON_GetObjectItemCaseSensitive(root, "id2label");
    if (id2label && !cJSON_IsNull(id2label)) {
        if (!cJSON_IsObject(id2label))
            return bs_fail(err, "%s: field id2label must be an object", path);
        int n = cJSON_GetArraySize(id2label);
        if (n < 1 || n > BERT_MAX_LABELS)
            return bs_fail(err, "%s: field id2label must hold 1 to %d labels", path, BERT_MAX_LABELS);
        /* Keys are "0".."n-1" in any order; every id must be there exactly once. */
        for (int i = 0; i < n; i++) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            const cJSON *label = cJSON_GetObjectItemCaseSensitive(id2label, key);
            if (!cJSON_IsString(label))
                return bs_fail(err, "%s: field id2label has no string label for id %d", path, i);
            for (int k = 0; k < i; k++) /* answers key scores by label: names must differ */
                if (!strcmp(cfg->labels[k], label->valuestring))
                    return bs_fail(err, "%s: field id2label names label \"%s\" twice (ids %d and %d)", path,
                                   label->valuestring, k, i);
            if (!(cfg->labels[i] = strdup(label->valuestring)))
                return bs_fail(err, "%s: out of memory", path);
            cfg->n_labels = i + 1;
        }
        return 0;
    }
    int n = 2; /* HF's default */
    const char *key = cJSON_GetObjectItemCaseSensitive(root, "num_labels") ? "num_labels"
                      : cJSON_GetObjectItemCaseSensitive(root, "_num_labels") ? "_num_labels"
                                                                               : NULL;
    if (key && config_int(root, path, key, 1, BERT_MAX_LABELS, &n, err) != 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "LABEL_%d", i);
        if (!(cfg->labels[i] = strdup(name)))
            return bs_fail(err, "%s: out of memory", path);
        cfg->n_labels = i + 1;
    }
    return 0;
}

static const char *const FAMILY_NAMES[] = {"bert", "distilbert", "roberta"};
/* The class-name prefix of each family's architectures entry (BertForSequenceClassification...). */
static const char *const FAMILY_ARCH[] = {"BertFor", "DistilBertFor", "RobertaFor"};
#define N_FAMILIES 3

const char *bert_family_name(enum bert_family family) { return FAMILY_NAMES[family]; }

/* model_type names the family; a config without it (older BERT checkpoints) is told by its
 * architectures, and one with neither is BERT, as before families existed. */
static int config_family(const cJSON *root, const char *path, bert_config *cfg, char *err)
{
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *name = NULL, *field = "model_type";
    if (mt && !cJSON_IsNull(mt)) {
        name = cJSON_IsString(mt) ? mt->valuestring : "(not a string)";
        for (int f = 0; f < N_FAMILIES; f++)
            if (!strcmp(name, FAMILY_NAMES[f]))
                return cfg->family = (enum bert_family)f, 0;
    } else if (cJSON_IsArray(arch) && cJSON_GetArraySize(arch) > 0) {
        const cJSON *a = cJSON_GetArrayItem(arch, 0);
        name = cJSON_IsString(a) ? a->valuestring : "(not a string)";
        field = "architectures";
        for (int f = 0; f < N_FAMILIES; f++)
            if (!strncmp(name, FAMILY_ARCH[f], strlen(FAMILY_ARCH[f])))
                return cfg->family = (enum bert_family)f, 0;
    } else {
        return cfg->family = BERT_FAMILY_BERT, 0;
    }
    return bs_fail(err, "%s: %s %s is not supported (supported: bert, distilbert, roberta)", path, field, name);
}

/* A string field that must be absent, null or one value: the encoders are written for HF's
 * exact erf "gelu" and absolute positions; anything else would give other logits. */
static int config_only(const cJSON *root, const char *path, const char *key, const char *value, const char *why,
                       char *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(root, key);
    if (j && !cJSON_IsNull(j) && (!cJSON_IsString(j) || strcmp(j->valuestring, value)))
        return bs_fail(err, "%s: %s %s is not supported (only \"%s\"%s)", path, key,
                       cJSON_IsString(j) ? j->valuestring : "(not a string)", value, why);
    return 0;
}

/* BERT and RoBERTa share BertConfig's names. The bounds keep every product of sizes far inside
 * size_t and int token offsets. */
static int config_bert_sizes(const cJSON *root, const char *path, bert_config *cfg, char *err)
{
    if (config_int(root, path, "hidden_size", 1, 1 << 16, &cfg->hidden, err) ||
        config_int(root, path, "num_hidden_layers", 1, 1024, &cfg->n_layers, err) ||
        config_int(root, path, "num_attention_heads", 1, 1 << 16, &cfg->n_heads, err) ||
        config_int(root, path, "intermediate_size", 1, 1 << 18, &cfg->intermediate, err) ||
        config_int(root, path, "type_vocab_size", 1, 1 << 16, &cfg->type_vocab_size, err))
        return -1;
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "layer_norm_eps");
    cfg->layer_norm_eps = 1e-12f; /* HF's default */
    if (eps) {
        /* Checked as the float it becomes: 1e-50 is above 0 as a double but 0 as a float, and
         * LayerNorm would then divide by zero on a constant row. */
        float v = cJSON_IsNumber(eps) ? (float)eps->valuedouble : 0;
        if (!(v > 0 && v < 1))
            return bs_fail(err, "%s: field layer_norm_eps must be a number between 0 and 1 (above 1e-45)", path);
        cfg->layer_norm_eps = v;
    }
    return config_only(root, path, "hidden_act", "gelu", ", the exact erf GELU", err) ||
                   config_only(root, path, "position_embedding_type", "absolute", "", err)
               ? -1
               : 0;
}

/* DistilBertConfig's own names (hidden_size etc. are only its attribute_map aliases, never
 * written to config.json). It has no token types, and HF hard-codes its LayerNorms' eps to 1e-12.
 * sinusoidal_pos_embds only changes how HF initialises the position table, which the checkpoint
 * holds either way. */
static int config_distilbert_sizes(const cJSON *root, const char *path, bert_config *cfg, char *err)
{
    if (config_int(root, path, "dim", 1, 1 << 16, &cfg->hidden, err) ||
        config_int(root, path, "n_layers", 1, 1024, &cfg->n_layers, err) ||
        config_int(root, path, "n_heads", 1, 1 << 16, &cfg->n_heads, err) ||
        config_int(root, path, "hidden_dim", 1, 1 << 18, &cfg->intermediate, err))
        return -1;
    cfg->type_vocab_size = 0;
    cfg->layer_norm_eps = 1e-12f;
    cfg->head_act = BERT_HEAD_RELU;
    return config_only(root, path, "activation", "gelu", ", the exact erf GELU", err);
}

/* RoBERTa numbers positions from pad_token_id + 1 (HF's create_position_ids_from_input_ids), so
 * its position table holds pad_token_id + 1 more rows than the longest sequence. */
static int config_positions(const cJSON *root, const char *path, bert_config *cfg, char *err)
{
    cfg->position_offset = 0;
    cfg->position_pad_id = -1;
    if (cfg->family == BERT_FAMILY_ROBERTA) {
        int pad = 1; /* RobertaConfig's default */
        if (cJSON_GetObjectItemCaseSensitive(root, "pad_token_id") &&
            config_int(root, path, "pad_token_id", 0, cfg->vocab_size - 1, &pad, err))
            return -1;
        if (pad >= cfg->vocab_size) /* the default too (fuzz_config found a vocab_size of 1) */
            return bs_fail(err, "%s: pad_token_id %d (RoBERTa's default when absent) is past vocab_size %d", path, pad,
                           cfg->vocab_size);
        if (pad + 1 >= cfg->max_positions)
            return bs_fail(err, "%s: max_position_embeddings %d leaves no position for a token after "
                           "pad_token_id %d + 1 (RoBERTa numbers positions from there)", path, cfg->max_positions, pad);
        cfg->position_offset = pad + 1;
        cfg->position_pad_id = pad;
    }
    cfg->max_tokens = cfg->max_positions - cfg->position_offset;
    return 0;
}

static int config_parse(const cJSON *root, const char *path, bert_config *cfg, char *err)
{
    if (!cJSON_IsObject(root))
        return bs_fail(err, "%s: not a valid JSON object", path);
    if (config_family(root, path, cfg, err))
        return -1;
    int rc = cfg->family == BERT_FAMILY_DISTILBERT ? config_distilbert_sizes(root, path, cfg, err)
                                                   : config_bert_sizes(root, path, cfg, err);
    if (rc || config_int(root, path, "max_position_embeddings", 1, 1 << 16, &cfg->max_positions, err) ||
        config_int(root, path, "vocab_size", 1, 1 << 24, &cfg->vocab_size, err) ||
        config_positions(root, path, cfg, err))
        return -1;
    const char *heads = cfg->family == BERT_FAMILY_DISTILBERT ? "n_heads" : "num_attention_heads";
    if (cfg->hidden % cfg->n_heads != 0)
        return bs_fail(err, "%s: %s %d is not divisible by %s %d", path,
                       cfg->family == BERT_FAMILY_DISTILBERT ? "dim" : "hidden_size", cfg->hidden, heads, cfg->n_heads);

    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(root, "problem_type");
    if (pt && !cJSON_IsNull(pt)) {
        if (cJSON_IsString(pt) && !strcmp(pt->valuestring, "multi_label_classification"))
            cfg->multi_label = true;
        else if (!cJSON_IsString(pt) || strcmp(pt->valuestring, "single_label_classification"))
            return bs_fail(err,
                           "%s: problem_type %s is not supported (single_label_classification or "
                           "multi_label_classification)",
                           path, cJSON_IsString(pt) ? pt->valuestring : "(not a string)");
    }
    return config_labels(root, path, cfg, err);
}

int bert_config_load(const char *path, bert_config *cfg, char *err)
{
    memset(cfg, 0, sizeof *cfg);
    size_t len;
    char *text = read_whole_file(path, CONFIG_MAX_BYTES, &len, err);
    if (!text)
        return -1;
    int rc = bert_config_parse_json(text, len, path, cfg, err);
    free(text);
    return rc;
}

int bert_config_parse_json(const char *json, size_t len, const char *path, bert_config *cfg, char *err)
{
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = cJSON_ParseWithLength(json, len);
    int rc = config_parse(root, path, cfg, err);
    cJSON_Delete(root);
    if (rc != 0)
        bert_config_free(cfg);
    return rc;
}

void bert_config_free(bert_config *cfg)
{
    for (int i = 0; i < BERT_MAX_LABELS; i++) {
        free(cfg->labels[i]);
        cfg->labels[i] = NULL;
    }
    cfg->n_labels = 0;
}

/* ---- weights ---- */

/* Hands out 64-byte aligned slices of one allocation. With base NULL it only counts, so
 * the same code sizes the allocation and then fills in the pointers. */
static float *carve(float *base, size_t *used, size_t n)
{
    float *p = base ? base + *used : NULL;
    *used += (n + 15) & ~(size_t)15;
    return p;
}

/* Linear weights get room for their packed form, which pads the output dimension to
 * whole GEMM panels; they are read in row-major order first and packed in place after. */
static float *carve_linear(float *base, size_t *used, size_t out, size_t in)
{
    size_t packed = gemm_packed_floats((int)out, (int)in);
    return carve(base, used, packed > out * in ? packed : out * in);
}

/* A bf16-packed linear weight: gemm_pack_bf16's panels, in the same storage (two bf16 a float). */
static uint16_t *carve_bf16(float *base, size_t *used, size_t out, size_t in)
{
    return (uint16_t *)(void *)carve(base, used, (gemm_packed_bf16_size((int)out, (int)in) + 1) / 2);
}

/* An int8-packed linear weight: gemm_pack_int8's panels (with their column sums and scales), in
 * the same storage (four bytes a float). */
static int8_t *carve_int8(float *base, size_t *used, size_t out, size_t in)
{
    return (int8_t *)(void *)carve(base, used, (gemm_packed_int8_size((int)out, (int)in) + 3) / 4);
}

/* An encoder layer's four linear weights: float32 panels (packed in place after reading), or in
 * a bf16 or int8 model only their bf16 or int8 panels, half or a quarter of the size;
 * read_tensors fills those from a float32 staging buffer of one layer, so no float32 copy of
 * them outlives the load. */
static void layout_linears(bert_layer *L, enum bert_dtype dtype, float *base, size_t *used, size_t H, size_t I)
{
    if (dtype == BERT_INT8) {
        L->qkv_w8 = carve_int8(base, used, 3 * H, H);
        L->attn_out_w8 = carve_int8(base, used, H, H);
        L->ffn_in_w8 = carve_int8(base, used, I, H);
        L->ffn_out_w8 = carve_int8(base, used, H, I);
        return;
    }
    if (dtype == BERT_BF16) {
        L->qkv_w16 = carve_bf16(base, used, 3 * H, H);
        L->attn_out_w16 = carve_bf16(base, used, H, H);
        L->ffn_in_w16 = carve_bf16(base, used, I, H);
        L->ffn_out_w16 = carve_bf16(base, used, H, I);
        return;
    }
    L->qkv_w = carve_linear(base, used, 3 * H, H);
    L->attn_out_w = carve_linear(base, used, H, H);
    L->ffn_in_w = carve_linear(base, used, I, H);
    L->ffn_out_w = carve_linear(base, used, H, I);
}

/* The storage, for a FinBERT-shaped model (12 layers x 768 hidden, 3072 intermediate, 30522
 * words): 438.0 MB in BERT_F32, 268.2 MB in BERT_BF16, 183.9 MB in BERT_INT8 (bertserve-cli
 * bench prints it). The encoder linears are 84.9 M weights, 340 MB in float32, 170 MB in bf16
 * and 85 MB in int8 (plus 0.7 MB of column sums and scales); the rest, mostly the word
 * embeddings (94 MB), stays float32. Peak RSS of bench: 462 MB, 296 MB and 214 MB. */
static void layout(bert_model *m, float *base, size_t *used)
{
    const bert_config *c = &m->cfg;
    size_t H = (size_t)c->hidden, I = (size_t)c->intermediate;
    m->word_emb = carve(base, used, (size_t)c->vocab_size * H);
    m->pos_emb = carve(base, used, (size_t)c->max_positions * H);
    m->type_emb = c->type_vocab_size ? carve(base, used, (size_t)c->type_vocab_size * H) : NULL;
    m->emb_ln_g = carve(base, used, H);
    m->emb_ln_b = carve(base, used, H);
    for (int l = 0; l < c->n_layers; l++) {
        bert_layer *L = &m->layers[l];
        layout_linears(L, m->dtype, base, used, H, I);
        L->qkv_b = carve(base, used, 3 * H);
        L->attn_out_b = carve(base, used, H);
        L->ln1_g = carve(base, used, H);
        L->ln1_b = carve(base, used, H);
        L->ffn_in_b = carve(base, used, I);
        L->ffn_out_b = carve(base, used, H);
        L->ln2_g = carve(base, used, H);
        L->ln2_b = carve(base, used, H);
    }
    m->pool_w = carve_linear(base, used, H, H);
    m->pool_b = carve(base, used, H);
    m->cls_w = carve_linear(base, used, (size_t)c->n_labels, H);
    m->cls_b = carve(base, used, (size_t)c->n_labels);
}

/* Packs one row-major [out][in] matrix in place, through tmp (room for out * in floats). */
static void pack_in_place(float *w, int out, int in, float *tmp)
{
    memcpy(tmp, w, (size_t)out * (size_t)in * sizeof(float));
    gemm_pack(tmp, in, out, in, w);
}

static int pack_weights(bert_model *m, const char *path, char *err)
{
    const bert_config *c = &m->cfg;
    int H = c->hidden, I = c->intermediate;
    size_t largest = (size_t)(I > 3 * H ? I : 3 * H) * (size_t)H;
    float *tmp = malloc(largest * sizeof(float));
    if (!tmp)
        return bs_fail(err, "%s: out of memory while packing the weights", path);
    for (int l = 0; l < c->n_layers && m->dtype == BERT_F32; l++) { /* bf16, int8: packed as read */
        bert_layer *L = &m->layers[l];
        pack_in_place(L->qkv_w, 3 * H, H, tmp);
        pack_in_place(L->attn_out_w, H, H, tmp);
        pack_in_place(L->ffn_in_w, I, H, tmp);
        pack_in_place(L->ffn_out_w, H, I, tmp);
    }
    pack_in_place(m->pool_w, H, H, tmp);
    pack_in_place(m->cls_w, c->n_labels, H, tmp);
    free(tmp);
    return 0;
}

/* ---- the checkpoint's tensors ---- */

/* A tensor's dimensions, in terms of the config. */
enum dim { DIM_NONE, DIM_HIDDEN, DIM_INTERMEDIATE, DIM_VOCAB, DIM_POSITIONS, DIM_TYPES, DIM_LABELS };

/* One tensor of a checkpoint, and where the loader puts it: dst is the offset of a float *
 * field of bert_model (of bert_layer for a layer's tensors), and block says which rows x cols
 * block of that array it fills (Q, K and V lie stacked in qkv_w and qkv_b, so a single GEMM
 * computes all three). */
struct tensor_spec {
    const char *name; /* a layer's tensors hold %d for the layer number */
    enum dim rows, cols; /* cols DIM_NONE: a vector of rows */
    size_t dst;
    int block;
};

#define IN_MODEL(field) offsetof(bert_model, field)
#define IN_LAYER(field) offsetof(bert_layer, field)

static const struct tensor_spec bert_embeddings[] = {
    {"bert.embeddings.word_embeddings.weight", DIM_VOCAB, DIM_HIDDEN, IN_MODEL(word_emb), 0},
    {"bert.embeddings.position_embeddings.weight", DIM_POSITIONS, DIM_HIDDEN, IN_MODEL(pos_emb), 0},
    {"bert.embeddings.token_type_embeddings.weight", DIM_TYPES, DIM_HIDDEN, IN_MODEL(type_emb), 0},
    {"bert.embeddings.LayerNorm.weight", DIM_HIDDEN, DIM_NONE, IN_MODEL(emb_ln_g), 0},
    {"bert.embeddings.LayerNorm.bias", DIM_HIDDEN, DIM_NONE, IN_MODEL(emb_ln_b), 0},
};

static const struct tensor_spec bert_layer_tensors[] = {
    {"bert.encoder.layer.%d.attention.self.query.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(qkv_w), 0},
    {"bert.encoder.layer.%d.attention.self.query.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(qkv_b), 0},
    {"bert.encoder.layer.%d.attention.self.key.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(qkv_w), 1},
    {"bert.encoder.layer.%d.attention.self.key.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(qkv_b), 1},
    {"bert.encoder.layer.%d.attention.self.value.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(qkv_w), 2},
    {"bert.encoder.layer.%d.attention.self.value.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(qkv_b), 2},
    {"bert.encoder.layer.%d.attention.output.dense.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(attn_out_w), 0},
    {"bert.encoder.layer.%d.attention.output.dense.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(attn_out_b), 0},
    {"bert.encoder.layer.%d.attention.output.LayerNorm.weight", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln1_g), 0},
    {"bert.encoder.layer.%d.attention.output.LayerNorm.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln1_b), 0},
    {"bert.encoder.layer.%d.intermediate.dense.weight", DIM_INTERMEDIATE, DIM_HIDDEN, IN_LAYER(ffn_in_w), 0},
    {"bert.encoder.layer.%d.intermediate.dense.bias", DIM_INTERMEDIATE, DIM_NONE, IN_LAYER(ffn_in_b), 0},
    {"bert.encoder.layer.%d.output.dense.weight", DIM_HIDDEN, DIM_INTERMEDIATE, IN_LAYER(ffn_out_w), 0},
    {"bert.encoder.layer.%d.output.dense.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(ffn_out_b), 0},
    {"bert.encoder.layer.%d.output.LayerNorm.weight", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln2_g), 0},
    {"bert.encoder.layer.%d.output.LayerNorm.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln2_b), 0},
};

static const struct tensor_spec bert_head[] = {
    {"bert.pooler.dense.weight", DIM_HIDDEN, DIM_HIDDEN, IN_MODEL(pool_w), 0},
    {"bert.pooler.dense.bias", DIM_HIDDEN, DIM_NONE, IN_MODEL(pool_b), 0},
    {"classifier.weight", DIM_LABELS, DIM_HIDDEN, IN_MODEL(cls_w), 0},
    {"classifier.bias", DIM_LABELS, DIM_NONE, IN_MODEL(cls_b), 0},
};

/* DistilBERT: no token types; attention and FFN under their own names. */
static const struct tensor_spec distilbert_embeddings[] = {
    {"distilbert.embeddings.word_embeddings.weight", DIM_VOCAB, DIM_HIDDEN, IN_MODEL(word_emb), 0},
    {"distilbert.embeddings.position_embeddings.weight", DIM_POSITIONS, DIM_HIDDEN, IN_MODEL(pos_emb), 0},
    {"distilbert.embeddings.LayerNorm.weight", DIM_HIDDEN, DIM_NONE, IN_MODEL(emb_ln_g), 0},
    {"distilbert.embeddings.LayerNorm.bias", DIM_HIDDEN, DIM_NONE, IN_MODEL(emb_ln_b), 0},
};

static const struct tensor_spec distilbert_layer_tensors[] = {
    {"distilbert.transformer.layer.%d.attention.q_lin.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(qkv_w), 0},
    {"distilbert.transformer.layer.%d.attention.q_lin.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(qkv_b), 0},
    {"distilbert.transformer.layer.%d.attention.k_lin.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(qkv_w), 1},
    {"distilbert.transformer.layer.%d.attention.k_lin.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(qkv_b), 1},
    {"distilbert.transformer.layer.%d.attention.v_lin.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(qkv_w), 2},
    {"distilbert.transformer.layer.%d.attention.v_lin.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(qkv_b), 2},
    {"distilbert.transformer.layer.%d.attention.out_lin.weight", DIM_HIDDEN, DIM_HIDDEN, IN_LAYER(attn_out_w), 0},
    {"distilbert.transformer.layer.%d.attention.out_lin.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(attn_out_b), 0},
    {"distilbert.transformer.layer.%d.sa_layer_norm.weight", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln1_g), 0},
    {"distilbert.transformer.layer.%d.sa_layer_norm.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln1_b), 0},
    {"distilbert.transformer.layer.%d.ffn.lin1.weight", DIM_INTERMEDIATE, DIM_HIDDEN, IN_LAYER(ffn_in_w), 0},
    {"distilbert.transformer.layer.%d.ffn.lin1.bias", DIM_INTERMEDIATE, DIM_NONE, IN_LAYER(ffn_in_b), 0},
    {"distilbert.transformer.layer.%d.ffn.lin2.weight", DIM_HIDDEN, DIM_INTERMEDIATE, IN_LAYER(ffn_out_w), 0},
    {"distilbert.transformer.layer.%d.ffn.lin2.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(ffn_out_b), 0},
    {"distilbert.transformer.layer.%d.output_layer_norm.weight", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln2_g), 0},
    {"distilbert.transformer.layer.%d.output_layer_norm.bias", DIM_HIDDEN, DIM_NONE, IN_LAYER(ln2_b), 0},
};

static const struct tensor_spec distilbert_head[] = {
    {"pre_classifier.weight", DIM_HIDDEN, DIM_HIDDEN, IN_MODEL(pool_w), 0},
    {"pre_classifier.bias", DIM_HIDDEN, DIM_NONE, IN_MODEL(pool_b), 0},
    {"classifier.weight", DIM_LABELS, DIM_HIDDEN, IN_MODEL(cls_w), 0},
    {"classifier.bias", DIM_LABELS, DIM_NONE, IN_MODEL(cls_b), 0},
};

/* RoBERTa: BERT's layers under "roberta.", no pooler; its head is classifier.dense + out_proj. */
static const struct tensor_spec roberta_embeddings[] = {
    {"roberta.embeddings.word_embeddings.weight", DIM_VOCAB, DIM_HIDDEN, IN_MODEL(word_emb), 0},
    {"roberta.embeddings.position_embeddings.weight", DIM_POSITIONS, DIM_HIDDEN, IN_MODEL(pos_emb), 0},
    {"roberta.embeddings.token_type_embeddings.weight", DIM_TYPES, DIM_HIDDEN, IN_MODEL(type_emb), 0},
    {"roberta.embeddings.LayerNorm.weight", DIM_HIDDEN, DIM_NONE, IN_MODEL(emb_ln_g), 0},
    {"roberta.embeddings.LayerNorm.bias", DIM_HIDDEN, DIM_NONE, IN_MODEL(emb_ln_b), 0},
};

static const struct tensor_spec roberta_head[] = {
    {"classifier.dense.weight", DIM_HIDDEN, DIM_HIDDEN, IN_MODEL(pool_w), 0},
    {"classifier.dense.bias", DIM_HIDDEN, DIM_NONE, IN_MODEL(pool_b), 0},
    {"classifier.out_proj.weight", DIM_LABELS, DIM_HIDDEN, IN_MODEL(cls_w), 0},
    {"classifier.out_proj.bias", DIM_LABELS, DIM_NONE, IN_MODEL(cls_b), 0},
};

#define COUNT(table) (int)(sizeof table / sizeof table[0])

/* A family's tables. layer_prefix (the layers' names with the layer number replaced by %d and
 * the rest cut) finds tensors of layers the config does not have. RoBERTa's layers are BERT's
 * tables renamed at run time: layer_rename replaces the leading "bert." of each. */
struct family_tables {
    const struct tensor_spec *embeddings, *layer, *head;
    int n_embeddings, n_layer, n_head;
    const char *layer_prefix, *layer_rename;
};

static const struct family_tables FAMILY_TABLES[N_FAMILIES] = {
    [BERT_FAMILY_BERT] = {bert_embeddings, bert_layer_tensors, bert_head, COUNT(bert_embeddings),
                          COUNT(bert_layer_tensors), COUNT(bert_head), "bert.encoder.layer.%d.", NULL},
    [BERT_FAMILY_DISTILBERT] = {distilbert_embeddings, distilbert_layer_tensors, distilbert_head,
                                COUNT(distilbert_embeddings), COUNT(distilbert_layer_tensors), COUNT(distilbert_head),
                                "distilbert.transformer.layer.%d.", NULL},
    [BERT_FAMILY_ROBERTA] = {roberta_embeddings, bert_layer_tensors, roberta_head, COUNT(roberta_embeddings),
                             COUNT(bert_layer_tensors), COUNT(roberta_head), "roberta.encoder.layer.%d.", "roberta."},
};

int bert_tensor_count(const bert_config *c)
{
    const struct family_tables *f = &FAMILY_TABLES[c->family];
    return f->n_embeddings + c->n_layers * f->n_layer + f->n_head;
}

/* Tensor i's entry in the tables; *layer is its layer, or -1 outside the layers. */
static const struct tensor_spec *tensor_spec(const bert_config *c, int i, int *layer)
{
    const struct family_tables *f = &FAMILY_TABLES[c->family];
    *layer = -1;
    if (i < f->n_embeddings)
        return &f->embeddings[i];
    i -= f->n_embeddings;
    if (i < c->n_layers * f->n_layer) {
        *layer = i / f->n_layer;
        return &f->layer[i % f->n_layer];
    }
    return &f->head[i - c->n_layers * f->n_layer];
}

static int64_t dim_size(const bert_config *c, enum dim d)
{
    switch (d) {
    case DIM_HIDDEN: return c->hidden;
    case DIM_INTERMEDIATE: return c->intermediate;
    case DIM_VOCAB: return c->vocab_size;
    case DIM_POSITIONS: return c->max_positions;
    case DIM_TYPES: return c->type_vocab_size;
    case DIM_LABELS: return c->n_labels;
    case DIM_NONE: break;
    }
    return 0;
}

void bert_tensor_describe(const bert_config *c, int i, bert_tensor *t)
{
    int layer;
    const struct tensor_spec *s = tensor_spec(c, i, &layer);
    const char *rename = FAMILY_TABLES[c->family].layer_rename;
    if (layer >= 0 && rename) { /* "bert.encoder..." -> "roberta.encoder..." */
        char name[96];
        snprintf(name, sizeof name, "%s%s", rename, s->name + strlen("bert."));
        snprintf(t->name, sizeof t->name, name, layer);
    } else {
        snprintf(t->name, sizeof t->name, s->name, layer);
    }
    t->ndim = s->cols == DIM_NONE ? 1 : 2;
    t->shape[0] = dim_size(c, s->rows);
    t->shape[1] = dim_size(c, s->cols);
}

/* Where tensor i goes in m's storage (laid out by layout() above). */
static float *tensor_destination(bert_model *m, int i)
{
    int layer;
    const struct tensor_spec *s = tensor_spec(&m->cfg, i, &layer);
    char *owner = layer >= 0 ? (char *)&m->layers[layer] : (char *)m;
    float *array = *(float **)(owner + s->dst);
    int64_t floats = dim_size(&m->cfg, s->rows) * (s->cols == DIM_NONE ? 1 : dim_size(&m->cfg, s->cols));
    return array + (size_t)s->block * (size_t)floats;
}

/* TF-era checkpoints name LayerNorm parameters gamma and beta. */
static const st_tensor *find_tensor(const st_file *st, const char *name)
{
    const st_tensor *t = st_find(st, name);
    size_t len = strlen(name);
    const char *suffixes[2][2] = {{"LayerNorm.weight", "LayerNorm.gamma"}, {"LayerNorm.bias", "LayerNorm.beta"}};
    for (int i = 0; i < 2 && !t; i++) {
        size_t sl = strlen(suffixes[i][0]);
        if (len >= sl && !strcmp(name + len - sl, suffixes[i][0]) && len - sl + strlen(suffixes[i][1]) < 160) {
            char alt[160];
            snprintf(alt, sizeof alt, "%.*s%s", (int)(len - sl), name, suffixes[i][1]);
            t = st_find(st, alt);
        }
    }
    return t;
}

static void shape_str(char *out, size_t cap, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(out + k, cap - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < cap)
        snprintf(out + k, cap - k, "]");
}

/* Finds and checks every tensor of the checkpoint before any data is read, so a bad file fails
 * fast; found[i] receives tensor i. */
static int check_tensors(const st_file *st, bert_model *m, const st_tensor **found, char *err)
{
    const char *first_dtype = NULL;
    bool mixed = false;
    for (int i = 0; i < bert_tensor_count(&m->cfg); i++) {
        bert_tensor want;
        bert_tensor_describe(&m->cfg, i, &want);
        const st_tensor *t = find_tensor(st, want.name);
        if (!t)
            return bs_fail(err, "%s: required tensor %s is missing", st->path, want.name);
        if (strcmp(t->dtype, "F32") && strcmp(t->dtype, "F16") && strcmp(t->dtype, "BF16"))
            return bs_fail(err, "%s: tensor %s has dtype %s; only F32, F16 and BF16 are supported",
                           st->path, t->name, t->dtype);
        bool same = t->ndim == want.ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = t->shape[d] == want.shape[d];
        if (!same) {
            char got[96], expect[96];
            shape_str(got, sizeof got, t->ndim, t->shape);
            shape_str(expect, sizeof expect, want.ndim, want.shape);
            return bs_fail(err, "%s: tensor %s has shape %s but config.json implies %s", st->path,
                           t->name, got, expect);
        }
        mixed = mixed || (first_dtype && strcmp(first_dtype, t->dtype));
        if (!first_dtype)
            first_dtype = t->dtype;
        found[i] = t;
    }
    snprintf(m->weights_dtype, sizeof m->weights_dtype, "%s", mixed ? "mixed" : first_dtype);

    /* Layers beyond num_hidden_layers mean the config does not describe these weights. */
    for (int i = 0; i < st->n_tensors; i++) {
        int layer;
        if (sscanf(st->tensors[i].name, FAMILY_TABLES[m->cfg.family].layer_prefix, &layer) == 1 &&
            (layer < 0 || layer >= m->cfg.n_layers))
            return bs_fail(err, "%s: tensor %s belongs to a layer beyond num_hidden_layers %d in config.json",
                           st->path, st->tensors[i].name, m->cfg.n_layers);
    }
    return 0;
}

/* ---- reading ---- */

/* A bf16 or int8 model reads each layer's four linear weights, row-major, into staging (one
 * layer's worth: 4H² + 2HI floats, 28 MB at FinBERT's shape), then packs them to bf16 or int8
 * once the layer's last tensor is in: the float pointers lead to staging only meanwhile. */
static size_t staging_floats(const bert_config *c)
{
    size_t H = (size_t)c->hidden, I = (size_t)c->intermediate;
    return 4 * H * H + 2 * H * I;
}

static void stage_layer(bert_layer *L, float *staging, size_t H, size_t I)
{
    L->qkv_w = staging;
    L->attn_out_w = L->qkv_w + 3 * H * H;
    L->ffn_in_w = L->attn_out_w + H * H;
    L->ffn_out_w = L->ffn_in_w + I * H;
}

static void pack_layer_bf16(bert_layer *L, int H, int I)
{
    gemm_pack_bf16(L->qkv_w, H, 3 * H, H, L->qkv_w16);
    gemm_pack_bf16(L->attn_out_w, H, H, H, L->attn_out_w16);
    gemm_pack_bf16(L->ffn_in_w, H, I, H, L->ffn_in_w16);
    gemm_pack_bf16(L->ffn_out_w, I, H, I, L->ffn_out_w16);
    L->qkv_w = L->attn_out_w = L->ffn_in_w = L->ffn_out_w = NULL;
}

static void pack_layer_int8(bert_layer *L, int H, int I)
{
    gemm_pack_int8(L->qkv_w, H, 3 * H, H, L->qkv_w8);
    gemm_pack_int8(L->attn_out_w, H, H, H, L->attn_out_w8);
    gemm_pack_int8(L->ffn_in_w, H, I, H, L->ffn_in_w8);
    gemm_pack_int8(L->ffn_out_w, I, H, I, L->ffn_out_w8);
    L->qkv_w = L->attn_out_w = L->ffn_in_w = L->ffn_out_w = NULL;
}

/* Reads every tensor in table order (a layer's tensors are consecutive), staging and packing
 * a bf16 or int8 model's linear weights layer by layer. */
static int read_tensors(bert_model *m, st_file *st, const st_tensor **found, char *err)
{
    const bert_config *c = &m->cfg;
    bool staged = m->dtype != BERT_F32;
    float *staging = staged ? malloc(staging_floats(c) * sizeof(float)) : NULL;
    if (staged && !staging)
        return bs_fail(err, "%s: out of memory while packing the weights", st->path);
    void *buf = NULL;
    size_t buf_cap = 0;
    int rc = 0;
    for (int i = 0; i < bert_tensor_count(c) && rc == 0; i++) {
        int layer, k = i - FAMILY_TABLES[c->family].n_embeddings, per = FAMILY_TABLES[c->family].n_layer;
        tensor_spec(c, i, &layer); /* k: the tensor's place in its layer, when in one */
        bool starts = layer >= 0 && k % per == 0, ends = layer >= 0 && k % per == per - 1;
        if (staged && starts)
            stage_layer(&m->layers[layer], staging, (size_t)c->hidden, (size_t)c->intermediate);
        rc = st_read_f32(st, found[i], tensor_destination(m, i), &buf, &buf_cap, err);
        if (m->dtype == BERT_BF16 && ends && rc == 0)
            pack_layer_bf16(&m->layers[layer], c->hidden, c->intermediate);
        if (m->dtype == BERT_INT8 && ends && rc == 0)
            pack_layer_int8(&m->layers[layer], c->hidden, c->intermediate);
    }
    free(buf);
    free(staging);
    return rc;
}

static int load_weights(bert_model *m, const char *path, char *err)
{
    st_file st;
    if (st_open(&st, path, err) != 0)
        return -1;
    int n = bert_tensor_count(&m->cfg);
    const st_tensor **found = malloc((size_t)n * sizeof *found);
    if (!found) {
        st_close(&st);
        return bs_fail(err, "%s: out of memory", path);
    }
    int rc = check_tensors(&st, m, found, err);
    if (rc == 0)
        rc = read_tensors(m, &st, found, err);
    free(found);
    st_close(&st);
    return rc;
}

#define HUGE_PAGE ((size_t)2 << 20)

bert_model *bert_model_load(const char *dir, char *err)
{
    return bert_model_load_dtype(dir, BERT_F32, err);
}

bert_model *bert_model_load_dtype(const char *dir, enum bert_dtype dtype, char *err)
{
    char config_path[BS_PATH_LEN], weights_path[BS_PATH_LEN];
    if (path_join(config_path, dir, "config.json", err) || path_join(weights_path, dir, "model.safetensors", err))
        return NULL;
    bert_model *m = calloc(1, sizeof *m);
    if (!m)
        return bs_fail(err, "%s: out of memory", dir), NULL;
    if (bert_config_load(config_path, &m->cfg, err) != 0) {
        free(m);
        return NULL;
    }
    m->dtype = dtype;
    int widest = m->cfg.hidden > m->cfg.intermediate ? m->cfg.hidden : m->cfg.intermediate;
    if (dtype == BERT_INT8 && widest > GEMM_INT8_MAX_K) { /* its int32 sums could overflow */
        bs_fail(err, "%s: int8 needs hidden_size and intermediate_size <= %d, not %d", config_path, GEMM_INT8_MAX_K,
                widest);
        bert_config_free(&m->cfg);
        free(m);
        return NULL;
    }
    m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    size_t floats = 0;
    layout(m, NULL, &floats);
    m->storage_bytes = floats * sizeof(float);
    /* 2 MB aligned and advised for huge pages: a bert-base model is 110M floats, and with
     * 4 kB pages the first touch of each page and the TLB misses in the GEMMs cost time. */
    size_t bytes = (floats * sizeof(float) + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    m->storage = m->layers ? aligned_alloc(HUGE_PAGE, bytes) : NULL;
#ifdef MADV_HUGEPAGE
    if (m->storage)
        madvise(m->storage, bytes, MADV_HUGEPAGE); /* only advice: ignore failure */
#endif
    if (!m->storage) {
        bert_model_free(m);
        return bs_fail(err, "%s: out of memory for %zu weights", weights_path, floats), NULL;
    }
    layout(m, m->storage, &(size_t){0});
    if (load_weights(m, weights_path, err) != 0 || pack_weights(m, weights_path, err) != 0) {
        bert_model_free(m);
        return NULL;
    }
    return m;
}

void bert_model_free(bert_model *m)
{
    if (!m)
        return;
    bert_config_free(&m->cfg);
    free(m->layers);
    free(m->storage);
    free(m);
}

size_t bert_model_bytes(const bert_model *m) { return m->storage_bytes; }

const char *bert_dtype_name(enum bert_dtype dtype)
{
    return dtype == BERT_BF16 ? "bf16" : dtype == BERT_INT8 ? "int8" : "f32";
}

/* auto: the fastest dtype whose products this CPU runs natively, each holding its accuracy gate
 * (tests/unit/test_model_{bf16,int8}.c). Measured on Zen 4, FinBERT's shape, 16 x 32, 2 threads:
 * int8 (vpdpbusd) 157 ms, bf16 (vdpbf16ps) 229 ms, f32 449 ms (README). The portable int8 and
 * bf16 kernels are slower than the fp32 ones, so without the instructions auto is f32, exact. */
static enum bert_dtype dtype_auto(void)
{
    if (strcmp(gemm_int8_kernel_name(), "portable-int8"))
        return BERT_INT8;
    return strcmp(gemm_bf16_kernel_name(), "portable-bf16") ? BERT_BF16 : BERT_F32;
}

int bert_dtype_parse(const char *name, enum bert_dtype *dtype)
{
    if (!strcmp(name, "f32"))
        *dtype = BERT_F32;
    else if (!strcmp(name, "bf16"))
        *dtype = BERT_BF16;
    else if (!strcmp(name, "int8"))
        *dtype = BERT_INT8;
    else if (!strcmp(name, "auto"))
        *dtype = dtype_auto();
    else
        return -1;
    return 0;
}

const char *bert_model_kernel_name(const bert_model *m)
{
    if (m->dtype == BERT_BF16)
        return gemm_bf16_kernel_name();
    if (m->dtype == BERT_INT8)
        return gemm_int8_kernel_name();
    static const struct {
        const char *fp32, *name;
    } names[] = {{"avx512", "avx512-f32"}, {"avx2", "avx2-f32"}, {"generic", "generic-f32"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(gemm_kernel_name(), names[i].fp32))
            return names[i].name;
    return gemm_kernel_name();
}

int bert_check_tokenizer(const bert_model *m, bool byte_level_bpe, int n_tokens, const char *dir,
                         const char *vocab_file, char *err)
{
    bool roberta = m->cfg.family == BERT_FAMILY_ROBERTA;
    if (byte_level_bpe != roberta)
        return bs_fail(err, "%s: model_type %s needs a %s tokenizer, but the directory holds a %s one (%s)", dir,
                       bert_family_name(m->cfg.family), roberta ? "byte-level BPE" : "WordPiece",
                       byte_level_bpe ? "byte-level BPE" : "WordPiece", vocab_file);
    if (n_tokens > m->cfg.vocab_size)
        return bs_fail(err, "%s/%s: %d tokens, more than config.json's vocab_size of %d", dir, vocab_file, n_tokens,
                       m->cfg.vocab_size);
    return 0;
}
