#include "server/reload.h"

#include "common/clock.h"
#include "server/logger.h"
#include "server/served_model.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a reload waits for the calls still on the model before last to finish before it
 * loads another one anyway (a call takes milliseconds to seconds; a wedged worker must not
 * block reloads for good). */
#define RETIRE_WAIT_SECONDS 60.0

struct reload_task {
    char dir[BS_PATH_LEN]; /* "" : the model served now's */
    char version[MODEL_VERSION_MAX + 1];
    bool has_version;
    const char *source;
    void (*done)(void *arg, const struct reload_outcome *o);
    void *arg;
};

struct reloader {
    const struct infer_service *svc;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool busy, has_task, stopping;
    struct reload_task task;
    served_model *retired; /* the model the last reload replaced, held until its calls end */
    pthread_t thread;
};

/* Waits (up to RETIRE_WAIT_SECONDS) until no call holds the retired model, then lets it go. */
static void free_retired(reloader *r)
{
    double until = monotonic_seconds() + RETIRE_WAIT_SECONDS;
    while (r->retired && atomic_load(&r->retired->refs) > 1 && monotonic_seconds() < until) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    served_model_release(r->retired);
    r->retired = NULL;
}

static void log_outcome(const struct infer_service *svc, const struct reload_task *t, const struct reload_outcome *o)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "source", t->source);
    cJSON_AddStringToObject(f, "model", o->model);
    if (o->ok) {
        cJSON_AddStringToObject(f, "model_version", o->version);
        cJSON_AddStringToObject(f, "previous_model_version", o->previous_version);
    } else {
        cJSON_AddStringToObject(f, "error", o->message);
    }
    cJSON_AddNumberToObject(f, "seconds", o->seconds);
    log_event(svc->cfg->log_json, o->ok ? "model_reloaded" : "model_reload_failed", f);
}

/* Loads t's model and swaps it in; the outcome says how it went. */
static void reload(reloader *r, const struct reload_task *t, struct reload_outcome *o)
{
    const struct infer_service *svc = r->svc;
    double t0 = monotonic_seconds();
    memset(o, 0, sizeof *o);
    served_model *now = model_slot_acquire(svc->models);
    snprintf(o->model, sizeof o->model, "%s", t->dir[0] ? t->dir : now->dir);
    snprintf(o->previous_version, sizeof o->previous_version, "%s", now->version);
    served_model_release(now);
    free_retired(r); /* before loading: at most two models in memory */
    enum bert_dtype dtype = BERT_F32;
    char err[BS_ERR_LEN];
    served_model *m = NULL;
    if (bert_dtype_parse(svc->cfg->dtype, &dtype) == 0)
        m = served_model_load(o->model, t->has_version ? t->version : NULL, dtype, svc->cfg->max_length, err);
    else
        snprintf(err, sizeof err, "--dtype %s: unknown", svc->cfg->dtype);
    if (m)
        served_model_hash_weights(m); /* off the request path: /info never says "pending" for it */
    if (!m) {
        o->kind = ERROR_BAD_MODEL;
        snprintf(o->message, sizeof o->message, "%s", err);
    } else if (infer_serve_model(svc, m, &r->retired, err)) {
        served_model_release(m);
        o->kind = ERROR_INTERNAL;
        snprintf(o->message, sizeof o->message, "%s", err);
    } else {
        o->ok = true;
        snprintf(o->version, sizeof o->version, "%s", m->version);
    }
    o->seconds = monotonic_seconds() - t0;
    metrics_reload(svc->metrics, o->ok, o->seconds);
    log_outcome(svc, t, o);
}

static void *reloader_main(void *arg)
{
    reloader *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->has_task && !r->stopping)
            pthread_cond_wait(&r->wake, &r->lock);
        if (!r->has_task)
            break;
        struct reload_task t = r->task;
        r->has_task = false;
        pthread_mutex_unlock(&r->lock);
        struct reload_outcome o;
        reload(r, &t, &o);
        pthread_mutex_lock(&r->lock);
        r->busy = false; /* before done: its client may ask again at once */
        pthread_mutex_unlock(&r->lock);
        if (t.done)
            t.done(t.arg, &o);
        pthread_mutex_lock(&r->lock);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

reloader *reloader_start(const struct infer_service *svc, char *err)
{
    reloader *r = calloc(1, sizeof *r);
    if (!r) {
        bs_fail(err, "out of memory");
        return NULL;
    }
    r->svc = svc;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->wake, NULL);
    int rc = pthread_create(&r->thread, NULL, reloader_main, r);
    if (rc) {
        bs_fail(err, "cannot start the reloader thread: %s", strerror(rc));
        pthread_cond_destroy(&r->wake);
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    return r;
}

int reloader_request(reloader *r, const char *dir, const char *version, const char *source,
                     void (*admitted)(void *arg), void (*done)(void *arg, const struct reload_outcome *o), void *arg,
                     struct service_error *e)
{
    struct reload_task t = {.source = source, .done = done, .arg = arg, .has_version = version != NULL};
    if (dir && snprintf(t.dir, sizeof t.dir, "%s", dir) >= (int)sizeof t.dir)
        return service_fail(e, ERROR_BAD_MODEL, "the model directory's path is over %d bytes", BS_PATH_LEN - 1);
    if (version && snprintf(t.version, sizeof t.version, "%s", version) >= (int)sizeof t.version)
        return service_fail(e, ERROR_VALIDATION, "a model version is 1 to %d characters", MODEL_VERSION_MAX);
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    if (r->stopping)
        rc = service_fail(e, ERROR_UNAVAILABLE, "the server is shutting down");
    else if (r->busy)
        rc = service_fail(e, ERROR_CONFLICT, "a model reload is already running; retry when it is over");
    else {
        r->busy = r->has_task = true;
        r->task = t;
        if (admitted)
            admitted(arg);
        pthread_cond_signal(&r->wake);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

void reloader_stop(reloader *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    served_model_release(r->retired); /* calls still on it hold their own references */
    pthread_cond_destroy(&r->wake);
    pthread_mutex_destroy(&r->lock);
    free(r);
}
