/* Model reloads (issue 20). SIGHUP and POST /admin/reload ask; one thread of its own loads,
 * checks and warms the new model (served_model_load) while the old one keeps serving, then
 * swaps it in (infer_serve_model). Calls tokenized for the old model finish on it; it is freed
 * when the last of them ends, and the next reload waits for that, so that at most two models
 * are ever in memory. A reload that fails changes nothing. One reload at a time. */
#ifndef RELOAD_H
#define RELOAD_H

#include "common/fileio.h"
#include "server/errors.h"
#include "server/infer.h"
#include "server/model_version.h"

#include <stdbool.h>

typedef struct reloader reloader;

struct reload_outcome {
    bool ok;
    enum error_kind kind; /* when not ok: ERROR_BAD_MODEL (the directory cannot serve), ERROR_INTERNAL */
    char message[BS_ERR_LEN + 128];
    char model[BS_PATH_LEN];
    char version[MODEL_VERSION_MAX + 1];          /* the new model's, when ok */
    char previous_version[MODEL_VERSION_MAX + 1]; /* the model it replaced */
    double seconds;
};

/* The reloader of the service's models (svc must outlive it). NULL with err. */
reloader *reloader_start(const struct infer_service *svc, char *err);

/* Asks for a reload of dir (NULL: the directory of the model served now) as version (NULL: dir's
 * VERSION file, else its weights' hash; --model-version names the first model only). source
 * names the asker in the log ("SIGHUP", "/admin/reload"). Once the request is accepted,
 * admitted(arg) runs first, on this thread (the transport suspends its connection there, so
 * that done never resumes a connection not yet suspended); done(arg, outcome) runs once, on the
 * reloader's thread, when the reload is over (done NULL: nobody waits; the log and the metrics
 * tell). -1 with e: ERROR_CONFLICT while another reload runs, ERROR_UNAVAILABLE once stopping. */
int reloader_request(reloader *r, const char *dir, const char *version, const char *source,
                     void (*admitted)(void *arg), void (*done)(void *arg, const struct reload_outcome *o), void *arg,
                     struct service_error *e);

/* Finishes the running reload, if any, stops the thread and frees the reloader. */
void reloader_stop(reloader *r);

#endif
