/* One model as the daemon serves it: its tokenizer, its weights in the running dtype, its
 * version and token limit, shared by reference count. The service holds the current one; every
 * /predict call holds the one it was tokenized for until its answer is built, so that a reload
 * (issue 20) swaps models under traffic and the old one is freed when its last call ends. */
#ifndef SERVED_MODEL_H
#define SERVED_MODEL_H

#include "common/fileio.h"
#include "engine/model.h"
#include "server/metrics.h"
#include "server/model_version.h"
#include "text/any_tokenizer.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct {
    any_tokenizer *tok; /* WordPiece or byte-level BPE, as the model's family reads */
    bert_model *model;
    char dir[BS_PATH_LEN];
    char version[MODEL_VERSION_MAX + 1];
    char loaded_at[32];      /* ISO 8601 UTC */
    int max_len;             /* tokens per text, [CLS]/[SEP] included */
    struct metrics_series series; /* where its predictions count (set when it starts serving) */
    atomic_int refs;
    pthread_mutex_t sha_lock;
    char weights_sha256[65]; /* "" until hashed (at load when it names the version, else later) */
} served_model;

/* Loads dir (config.json, the tokenizer's files, model.safetensors) with the encoder in dtype,
 * validates it (the tokenizer's family and vocabulary against the model's, max_length against
 * its positions: 0 means all of them), settles its version (model_version_resolve:
 * version_given may be NULL) and runs one forward pass, so that a model that cannot serve never
 * does. NULL with err naming the file and the problem. The result holds one reference. */
served_model *served_model_load(const char *dir, const char *version_given, enum bert_dtype dtype, int max_length,
                                char *err);

/* Takes one more reference; drops one, freeing the model with the last. NULL is ignored. */
served_model *served_model_hold(served_model *m);
void served_model_release(served_model *m);
/* Hashes model.safetensors now if its hash is not known yet (/info's weights_sha256). */
void served_model_hash_weights(served_model *m);
/* The hash into out[65]: "pending" until known, "unavailable" if the file could not be read. */
void served_model_weights_sha256(served_model *m, char out[65]);

/* The model served now, swapped under traffic by a reload. */
typedef struct {
    pthread_mutex_t lock;
    served_model *current;
    char previous_version[MODEL_VERSION_MAX + 1]; /* "" until the first swap */
} model_slot;

/* Starts serving m (the slot takes over the caller's reference). */
void model_slot_init(model_slot *s, served_model *m);
/* The model served now, held: release it when done. */
served_model *model_slot_acquire(model_slot *s);
/* Serves m from now on (the slot takes over the caller's reference); returns the model it
 * replaces, still held by the caller now. */
served_model *model_slot_swap(model_slot *s, served_model *m);
/* previous_version into out. */
void model_slot_previous_version(model_slot *s, char out[MODEL_VERSION_MAX + 1]);
void model_slot_free(model_slot *s);

#endif
