/* A sequence-classification encoder loaded from a HuggingFace model directory: config.json +
 * model.safetensors (F32, F16 or BF16 tensors, kept as float32 in memory owned by the process:
 * the file may change or vanish on disk afterwards). Three families, told apart by config.json's
 * model_type (or architectures): BertForSequenceClassification, DistilBertForSequenceClassification
 * and RobertaForSequenceClassification. They share one forward pass; what differs (tensor names,
 * token types, position ids, the head's activation) is described by the config below. */
#ifndef MODEL_H
#define MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BERT_MAX_LABELS 256

enum bert_family {
    BERT_FAMILY_BERT,       /* model_type "bert" (also a config.json without model_type) */
    BERT_FAMILY_DISTILBERT, /* "distilbert" */
    BERT_FAMILY_ROBERTA,    /* "roberta" */
};

/* The head: first token -> dense -> activation -> classifier. BERT's pooler and RoBERTa's
 * classifier.dense are followed by tanh, DistilBERT's pre_classifier by ReLU. */
enum bert_head_act { BERT_HEAD_TANH, BERT_HEAD_RELU };

typedef struct {
    enum bert_family family;
    int vocab_size, hidden, n_layers, n_heads, intermediate;
    int max_positions;   /* rows of the position table (max_position_embeddings) */
    int type_vocab_size; /* 0: the family has no token types (DistilBERT), type ids are ignored */
    /* Position ids: token t of a sequence gets position_offset + (the number of tokens before
     * it whose id is not position_pad_id); a token whose id is position_pad_id gets position
     * position_pad_id. BERT, DistilBERT: offset 0, pad -1 (positions 0..T-1). RoBERTa: HF's
     * create_position_ids_from_input_ids, offset pad_token_id + 1, pad pad_token_id. */
    int position_offset, position_pad_id;
    int max_tokens; /* the longest sequence the positions allow: max_positions - position_offset */
    enum bert_head_act head_act;
    float layer_norm_eps;
    int n_labels;
    char *labels[BERT_MAX_LABELS]; /* id2label, in id order (heap strings) */
    bool multi_label;              /* problem_type "multi_label_classification": sigmoid */
} bert_config;

/* The number type of the encoder layers' four linear weights (--dtype). Everything else
 * (embeddings, LayerNorms, biases, pooler, classifier, attention, activations) is float32
 * in each. */
enum bert_dtype {
    BERT_F32,  /* packed by gemm_pack, products by gemm_linear */
    BERT_BF16, /* packed by gemm_pack_bf16, products by gemm_linear_bf16 (gemm_bf16.h) */
    BERT_INT8, /* quantized and packed by gemm_pack_int8, products by gemm_linear_int8 (gemm_int8.h) */
};

/* One encoder layer. The nn.Linear weights ([out][in] in the file) are kept packed for the
 * GEMM kernel (include/engine/gemm.h: gemm_pack); biases and LayerNorm parameters as they are.
 * In a BERT_BF16 model the four *_w are NULL and the *_w16 hold the weights, packed by
 * gemm_pack_bf16; in a BERT_INT8 model the *_w8 hold them, quantized and packed by
 * gemm_pack_int8; only the dtype's own pointers are set, the others NULL. */
typedef struct {
    float *qkv_w, *qkv_b;   /* [3H][H], [3H]: query, key and value stacked, so one GEMM */
    float *attn_out_w, *attn_out_b; /* [H][H], [H] */
    float *ln1_g, *ln1_b;   /* attention output LayerNorm */
    float *ffn_in_w, *ffn_in_b;   /* [I][H], [I] */
    float *ffn_out_w, *ffn_out_b; /* [H][I], [H] */
    float *ln2_g, *ln2_b;   /* output LayerNorm */
    uint16_t *qkv_w16, *attn_out_w16, *ffn_in_w16, *ffn_out_w16; /* BERT_BF16 only */
    int8_t *qkv_w8, *attn_out_w8, *ffn_in_w8, *ffn_out_w8;       /* BERT_INT8 only */
} bert_layer;

typedef struct {
    bert_config cfg;
    char weights_dtype[8];  /* as stored in the file: "F32", "F16" or "BF16" */
    float *word_emb, *pos_emb, *type_emb; /* [V][H], [P][H], [T][H] */
    float *emb_ln_g, *emb_ln_b;
    bert_layer *layers;     /* cfg.n_layers */
    float *pool_w, *pool_b; /* [H][H] packed, [H]: the head's dense layer (BERT's pooler,
                               DistilBERT's pre_classifier, RoBERTa's classifier.dense) */
    float *cls_w, *cls_b;   /* [n_labels][H] packed, [n_labels]: classifier (RoBERTa's out_proj) */
    void *storage;          /* owns every array above */
    size_t storage_bytes;   /* what the arrays take in storage (before rounding to huge pages) */
    enum bert_dtype dtype;
} bert_model;

/* Loads dir/config.json and dir/model.safetensors, validating everything (header length
 * and JSON, dtypes, shapes against the config, offsets inside the file and not
 * overlapping, every tensor present). Returns NULL with a message naming the file and the
 * tensor or field on failure. */
bert_model *bert_model_load(const char *dir, char *err);
/* The same, with the encoder layers' linear weights in dtype (bert_model_load is BERT_F32). */
bert_model *bert_model_load_dtype(const char *dir, enum bert_dtype dtype, char *err);
void bert_model_free(bert_model *m);

/* "bert", "distilbert" or "roberta" (config.json's model_type). */
const char *bert_family_name(enum bert_family family);

/* Bytes the model's weights take in memory (its storage, without the huge-page rounding). */
size_t bert_model_bytes(const bert_model *m);

/* "f32", "bf16" or "int8"; and back: 0, or -1 for an unknown name. "auto" parses to the fastest
 * dtype this CPU runs natively: int8 with AVX512-VNNI, else bf16 with AVX512-BF16, else f32. */
const char *bert_dtype_name(enum bert_dtype dtype);
int bert_dtype_parse(const char *name, enum bert_dtype *dtype);

/* The kernel the encoder layers' linears run on: "avx512-bf16", "portable-bf16", "avx512-f32",
 * "avx2-f32" or "generic-f32" (/info's kernel). */
const char *bert_model_kernel_name(const bert_model *m);

/* 0 if a tokenizer fits the model, else -1 with err naming the file: its family must be the
 * model's (RoBERTa reads byte-level BPE ids, BERT and DistilBERT WordPiece ids: the other would
 * give valid ids for the wrong tokens), and a vocabulary of n_tokens must fit config.json's
 * vocab_size (a token id past the table has no embedding). vocab_file is the tokenizer's file,
 * relative to dir (vocab.txt, vocab.json or tokenizer.json). */
int bert_check_tokenizer(const bert_model *m, bool byte_level_bpe, int n_tokens, const char *dir,
                         const char *vocab_file, char *err);

/* The tensors of a checkpoint, in the order tools/random_model.c writes them (the loader finds
 * them by name, in any order; tensors no table names, such as old checkpoints' position_ids
 * buffers, are ignored): the embeddings', each layer's in turn, then the head's. One set of
 * tables per family in model.c names them all. */
typedef struct {
    char name[96];    /* HF's name, e.g. "bert.encoder.layer.3.attention.self.query.weight" */
    int ndim;         /* 2 for a matrix [rows][cols], 1 for a vector [rows] */
    int64_t shape[2]; /* as config.json implies */
} bert_tensor;

/* How many tensors a checkpoint for config c holds. */
int bert_tensor_count(const bert_config *c);
/* Tensor i of a checkpoint for config c, 0 <= i < bert_tensor_count(c). */
void bert_tensor_describe(const bert_config *c, int i, bert_tensor *t);

/* Parses dir/config.json alone (used by bert_model_load, and by tools that make weights). */
int bert_config_load(const char *path, bert_config *cfg, char *err);
/* The same for config.json's text held in memory (len bytes, not NUL-terminated); path names
 * the file in messages. For tests and fuzzing. */
int bert_config_parse_json(const char *json, size_t len, const char *path, bert_config *cfg, char *err);
void bert_config_free(bert_config *cfg);

#endif
