#include "server/served_model.h"

#include "common/bs_error.h"
#include "common/clock.h"
#include "common/sha256.h"
#include "engine/bert.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One forward pass over [CLS] word [SEP] (<s> word </s>) on one thread: a model whose pass
 * fails, or whose logits are not finite, is refused before it serves rather than on its first
 * request. */
static int warm_up(const served_model *m, char *err)
{
    const bert_config *c = &m->model->cfg;
    int32_t ids[3] = {0, 0, 0}, types[3] = {0, 0, 0};
    encoding e = {0};
    if (any_tokenizer_encode(m->tok, "profit", 6, NULL, 0, 3, TRUNCATE_RIGHT, &e, err) == 0 && e.n <= 3)
        memcpy(ids, e.ids, (size_t)e.n * sizeof *ids);
    int len = e.n > 0 ? e.n : 1;
    encoding_free(&e);
    float logits[BERT_MAX_LABELS];
    bert_scratch scratch = {.n_threads = 1};
    bert_batch b = {.ids = ids, .type_ids = types, .lens = &len, .n_seqs = 1};
    char why[BS_ERR_LEN];
    int rc = bert_forward(m->model, &b, logits, &scratch, why);
    bert_scratch_free(&scratch);
    if (rc)
        return bs_fail(err, "%s: the warm-up forward pass failed: %s", m->dir, why);
    for (int k = 0; k < c->n_labels; k++)
        if (!isfinite(logits[k]))
            return bs_fail(err, "%s: the warm-up forward pass gave a non-finite logit (label %d)", m->dir, k);
    return 0;
}

served_model *served_model_load(const char *dir, const char *version_given, enum bert_dtype dtype, int max_length,
                                char *err)
{
    served_model *m = calloc(1, sizeof *m);
    if (!m) {
        bs_fail(err, "out of memory");
        return NULL;
    }
    atomic_init(&m->refs, 1);
    pthread_mutex_init(&m->sha_lock, NULL);
    snprintf(m->dir, sizeof m->dir, "%s", dir);
    int rc = -1;
    if ((m->tok = any_tokenizer_load(dir, err)) && (m->model = bert_model_load_dtype(dir, dtype, err)) &&
        bert_check_tokenizer(m->model, any_tokenizer_family(m->tok) == TOKENIZER_BPE, any_tokenizer_vocab_size(m->tok),
                             dir, any_tokenizer_vocab_file(m->tok), err) == 0) {
        int limit = m->model->cfg.max_tokens; /* RoBERTa: its positions less pad_token_id + 1 */
        if (max_length && (max_length < 3 || max_length > limit))
            bs_fail(err, "%s: --max-length %d must be from 3 to the model's %d positions", dir, max_length, limit);
        else if (model_version_resolve(version_given, dir, m->version, m->weights_sha256, err) == 0) {
            m->max_len = max_length ? max_length : limit;
            rc = warm_up(m, err);
        }
    }
    if (rc) {
        served_model_release(m);
        return NULL;
    }
    utc_timestamp(m->loaded_at);
    return m;
}

served_model *served_model_hold(served_model *m)
{
    if (m)
        atomic_fetch_add(&m->refs, 1);
    return m;
}

void served_model_release(served_model *m)
{
    if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
        return;
    bert_model_free(m->model);
    any_tokenizer_free(m->tok);
    pthread_mutex_destroy(&m->sha_lock);
    free(m);
}

void served_model_hash_weights(served_model *m)
{
    pthread_mutex_lock(&m->sha_lock);
    bool known = m->weights_sha256[0] != '\0';
    pthread_mutex_unlock(&m->sha_lock);
    if (known)
        return;
    char path[BS_PATH_LEN], hex[65], err[BS_ERR_LEN];
    if (path_join(path, m->dir, "model.safetensors", err) || sha256_file(path, hex, err))
        snprintf(hex, sizeof hex, "unavailable");
    pthread_mutex_lock(&m->sha_lock);
    memcpy(m->weights_sha256, hex, sizeof hex);
    pthread_mutex_unlock(&m->sha_lock);
}

void served_model_weights_sha256(served_model *m, char out[65])
{
    pthread_mutex_lock(&m->sha_lock);
    snprintf(out, 65, "%s", m->weights_sha256[0] ? m->weights_sha256 : "pending");
    pthread_mutex_unlock(&m->sha_lock);
}

void model_slot_init(model_slot *s, served_model *m)
{
    pthread_mutex_init(&s->lock, NULL);
    s->current = m;
    s->previous_version[0] = '\0';
}

served_model *model_slot_acquire(model_slot *s)
{
    pthread_mutex_lock(&s->lock);
    served_model *m = served_model_hold(s->current);
    pthread_mutex_unlock(&s->lock);
    return m;
}

served_model *model_slot_swap(model_slot *s, served_model *m)
{
    pthread_mutex_lock(&s->lock);
    served_model *old = s->current;
    s->current = m;
    snprintf(s->previous_version, sizeof s->previous_version, "%s", old ? old->version : "");
    pthread_mutex_unlock(&s->lock);
    return old;
}

void model_slot_previous_version(model_slot *s, char out[MODEL_VERSION_MAX + 1])
{
    pthread_mutex_lock(&s->lock);
    memcpy(out, s->previous_version, MODEL_VERSION_MAX + 1);
    pthread_mutex_unlock(&s->lock);
}

void model_slot_free(model_slot *s)
{
    served_model_release(s->current);
    s->current = NULL;
    pthread_mutex_destroy(&s->lock);
}
