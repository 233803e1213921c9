/* bertserve: the HTTP daemon. Loads the model, starts the compute workers and the HTTP server,
 * then waits for SIGTERM/SIGINT and drains (see README). */
#include "common/bs_error.h"
#include "common/clock.h"
#include "common/cpu_budget.h"
#include "common/fileio.h"
#include "engine/gemm.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/healthcheck.h"
#include "server/http.h"
#include "server/infer.h"
#include "server/logger.h"
#include "server/metrics.h"
#include "server/model_version.h"
#include "server/prediction_log.h"
#include "server/reload.h"
#include "server/served_model.h"
#include "text/tokenizer.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The one global: the write end of the self-pipe the signal handler wakes main() through.
 * A handler and a pipe (rather than blocking the signals and sigwait) so that the drain can
 * poll for a second signal between its waits, and so that no thread, ours or a library's, has
 * to be started with the signals blocked for a SIGTERM to reach main(). */
static int signal_pipe_write = -1;

static void on_stop_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    ssize_t n = write(signal_pipe_write, &b, 1); /* async-signal-safe; a full pipe is fine */
    (void)n;
}

/* Hashes the first model's weights after startup, so a large file never delays readiness
 * (a reload hashes its model before the swap, on the reloader's thread). */
static void *hash_weights(void *arg)
{
    served_model_hash_weights(arg);
    served_model_release(arg);
    return NULL;
}

static int fail_startup(const struct config *c, const char *msg)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "error", msg);
    log_event(c->log_json, "startup_failed", f);
    return 1;
}

/* Everything main starts, in the order it starts them; stop_daemon undoes it. */
struct daemon {
    struct config cfg;
    int signal_pipe[2];
    served_model *first; /* the model loaded at startup, until the slot takes it */
    served_model *warming; /* the first model, held while the workers warm up on it */
    model_slot models;
    bool serving;        /* models holds a model */
    metrics *metrics;
    prediction_table *predictions; /* what /feedback scores */
    prediction_log *prediction_log; /* --prediction-log */
    batcher *batcher;
    struct infer_service svc;
    struct cpu_budget cpus;
    http_server *http;
    reloader *reloader;
    pthread_t hasher;
    bool hashing;
};

/* SIGTERM and SIGINT write to the self-pipe main waits on; SIGPIPE is ignored. */
static int install_signal_handlers(struct daemon *d)
{
    if (pipe(d->signal_pipe)) {
        perror("bertserve: pipe");
        return -1;
    }
    signal_pipe_write = d->signal_pipe[1];
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL); /* reload the model (reload.h) */
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up is an error return, not a death */
    /* SIGUSR1/SIGUSR2 mean nothing here; their default action would kill the daemon with no
     * log line and no drain. */
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    return 0;
}

/* The first model: tokenizer, weights in --dtype, version, token limit; checked and warmed. */
static int load_model(struct daemon *d, char *err)
{
    enum bert_dtype dtype;
    if (bert_dtype_parse(d->cfg.dtype, &dtype)) /* checked by config_from_command_line */
        return bs_fail(err, "--dtype %s: unknown", d->cfg.dtype);
    d->first = served_model_load(d->cfg.model, d->cfg.model_version, dtype, d->cfg.max_length, err);
    return d->first ? 0 : -1;
}

/* The metrics, the batcher's compute workers, the service and the HTTP server. */
static int start_serving(struct daemon *d, char *err)
{
    const struct config *cfg = &d->cfg;
    /* By default the CPUs are shared out between the workers, so that --workers N does not run
     * N times as many forward-pass threads as there are CPUs. In a container the CPUs are its
     * cgroup quota, not the node's cores the affinity mask shows. */
    cpu_budget_detect(&d->cpus);
    int threads_per_worker = cfg->threads ? cfg->threads : d->cpus.cpus / cfg->workers;
    if (threads_per_worker < 1)
        threads_per_worker = 1;
    if (!(d->metrics = metrics_create(config_version())))
        return bs_fail(err, "out of memory");
    if (!(d->predictions = prediction_table_create(cfg->feedback_window)))
        return bs_fail(err, "out of memory for --feedback-window %d", cfg->feedback_window);
    if (cfg->prediction_log) {
        struct prediction_log_settings ls = {cfg->prediction_log, cfg->prediction_log_max_bytes,
                                             cfg->prediction_log_keep, PREDICTION_LOG_BUFFER_BYTES, cfg->log_json,
                                             d->metrics};
        if (!(d->prediction_log = prediction_log_open(&ls, err)))
            return -1;
    }
    struct batcher_settings bs = {
        .n_workers = cfg->workers,
        .threads_per_worker = threads_per_worker,
        .max_jobs = cfg->max_concurrent_requests,
        .max_batch_tokens = cfg->max_batch_tokens,
        .max_batch_texts = cfg->max_batch_requests,
        .max_wait_seconds = cfg->batch_wait_us * 1e-6,
        .on_batch = metrics_batch,
        .on_batch_arg = d->metrics,
        /* The warm-up: the largest batch the limits allow, as texts of the longest length. */
        .warm_model = d->first->model,
        .warm_len = d->first->max_len,
        .warm_texts = cfg->max_batch_tokens / d->first->max_len,
    };
    if (bs.warm_texts < 1)
        bs.warm_texts = 1;
    if (bs.warm_texts > cfg->max_batch_requests)
        bs.warm_texts = cfg->max_batch_requests;
    d->warming = served_model_hold(d->first); /* a reload during the warm-up must not free it */
    if (!(d->batcher = batcher_start(&bs, err)))
        return -1;
    d->svc.cfg = cfg;
    d->svc.metrics = d->metrics;
    d->svc.predictions = d->predictions;
    d->svc.prediction_log = d->prediction_log;
    model_slot_init(&d->models, NULL);
    d->svc.models = &d->models;
    served_model *none;
    if (infer_serve_model(&d->svc, d->first, &none, err))
        return -1;
    d->first = NULL; /* the slot's now */
    d->serving = true;
    d->svc.batcher = d->batcher;
    d->svc.metrics = d->metrics;
    d->svc.threads_per_worker = threads_per_worker;
    d->svc.cpus = d->cpus.cpus;
    d->svc.cpu_source = d->cpus.source;
    if (!(d->svc.reloader = d->reloader = reloader_start(&d->svc, err)))
        return -1;
    d->http = http_start(cfg, &d->svc, err);
    return d->http ? 0 : -1;
}

/* /info's weights_sha256, computed off the startup path (unless the version needed it). The
 * thread holds the model it hashes: a reload may replace it meanwhile. */
static void start_hashing(struct daemon *d)
{
    served_model *m = model_slot_acquire(&d->models); /* the thread's reference */
    d->hashing = pthread_create(&d->hasher, NULL, hash_weights, m) == 0;
    if (!d->hashing)
        hash_weights(m);
}

/* Waits for the compute workers' warm-up pass (batcher_settings.warm_model); /ready turns 200. */
static int wait_warm(struct daemon *d, double *seconds, char *err)
{
    double t0 = monotonic_seconds();
    int rc = batcher_wait_warm(d->batcher, err);
    served_model_release(d->warming);
    d->warming = NULL;
    *seconds = monotonic_seconds() - t0;
    if (rc == 0)
        http_set_warm(d->http);
    return rc;
}

static void log_ready(const struct daemon *d, double warm_seconds)
{
    const struct config *cfg = &d->cfg;
    cJSON *f = cJSON_CreateObject();
    char addr[300];
    bool v6 = strchr(cfg->host, ':') != NULL;
    snprintf(addr, sizeof addr, "http://%s%s%s:%d", v6 ? "[" : "", cfg->host, v6 ? "]" : "", http_port(d->http));
    cJSON_AddStringToObject(f, "address", addr);
    cJSON_AddNumberToObject(f, "port", http_port(d->http));
    if (http_metrics_port(d->http) >= 0)
        cJSON_AddNumberToObject(f, "metrics_port", http_metrics_port(d->http));
    cJSON_AddNumberToObject(f, "warm_up_ms", warm_seconds * 1e3);
    log_event(cfg->log_json, "ready", f);
}

/* Blocks until SIGTERM or SIGINT, asking for a reload at each SIGHUP; returns which. */
static int wait_for_signal(const struct daemon *d)
{
    for (;;) {
        unsigned char sig = 0;
        while (read(d->signal_pipe[0], &sig, 1) < 0 && errno == EINTR)
            continue;
        if (sig != SIGHUP)
            return sig;
        struct service_error e;
        if (reloader_request(d->reloader, NULL, NULL, "SIGHUP", NULL, NULL, NULL, &e)) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "source", "SIGHUP");
            cJSON_AddStringToObject(f, "error", e.msg);
            log_event(d->cfg.log_json, "model_reload_refused", f);
        }
    }
}

/* Stops taking connections and waits for the requests in progress, up to --grace-seconds.
 * A second signal (an operator's second Ctrl-C) exits at once, without waiting for the running
 * batch. Past the grace period, queued jobs are cancelled (503) and running ones finish. */
static void drain(struct daemon *d, int sig)
{
    const struct config *cfg = &d->cfg;
    double deadline = monotonic_seconds() + cfg->grace_seconds;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cJSON_AddNumberToObject(f, "grace_seconds", cfg->grace_seconds);
    log_event(cfg->log_json, "draining", f);
    http_drain(d->http);
    bool drained = false; /* waited in short steps, so that a second signal is seen */
    while (!(drained = http_wait_idle(d->http, fmin(deadline, monotonic_seconds() + 0.05))) &&
           monotonic_seconds() < deadline) {
        struct pollfd pfd = {.fd = d->signal_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0) {
            f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "reason", "second signal while draining");
            log_event(cfg->log_json, "forced_exit", f);
            _exit(1);
        }
    }
    batcher_stop(d->batcher);
    d->batcher = NULL;
    reloader_stop(d->reloader); /* a reload still loading finishes; its client is answered */
    d->reloader = NULL;
    if (!drained)
        http_wait_idle(d->http, monotonic_seconds() + 5);
    f = cJSON_CreateObject();
    cJSON_AddBoolToObject(f, "drained", drained);
    log_event(cfg->log_json, "stopped", f);
}

/* Undoes whatever of the daemon was started, in reverse order. */
static void stop_daemon(struct daemon *d)
{
    if (d->hashing)
        pthread_join(d->hasher, NULL);
    reloader_stop(d->reloader); /* before the HTTP server: it may resume a connection */
    http_stop(d->http);
    batcher_stop(d->batcher);
    if (d->serving)
        model_slot_free(&d->models);
    served_model_release(d->first);
    served_model_release(d->warming);
    prediction_log_close(d->prediction_log); /* after every request: writes all it accepted */
    prediction_table_free(d->predictions);
    metrics_free(d->metrics);
    close(d->signal_pipe[0]);
    close(d->signal_pipe[1]);
}

int main(int argc, char **argv)
{
    /* Request bodies (up to --max-body-bytes each) come and go with requests. Past glibc's
     * dynamic mmap threshold they came from the heap and stayed there: 564 MB remained after 450
     * clients holding 2 MB bodies left. A fixed threshold makes every allocation over 256 KiB a
     * mapping of its own, returned to the system when it is freed. */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    struct daemon d = {0};
    enum config_result cr = config_from_command_line(argc, argv, &d.cfg, stdout, stderr);
    if (cr != CONFIG_RUN)
        return cr == CONFIG_EXIT_OK ? 0 : 2;
    if (d.cfg.healthcheck) {
        char hc_err[BS_ERR_LEN];
        if (healthcheck(d.cfg.host, d.cfg.port, HEALTHCHECK_TIMEOUT_SECONDS * 1000, hc_err)) {
            fprintf(stderr, "bertserve: unhealthy: %s\n", hc_err);
            return 1;
        }
        return 0;
    }
    if (install_signal_handlers(&d))
        return 1;
    char err[BS_ERR_LEN];
    if (load_model(&d, err) || start_serving(&d, err)) {
        fail_startup(&d.cfg, err);
        stop_daemon(&d);
        return 1;
    }
    log_event(d.cfg.log_json, "loaded", infer_describe(&d.svc));
    start_hashing(&d);
    double warm_seconds = 0;
    if (wait_warm(&d, &warm_seconds, err)) {
        fail_startup(&d.cfg, err);
        stop_daemon(&d);
        return 1;
    }
    log_ready(&d, warm_seconds);
    drain(&d, wait_for_signal(&d));
    stop_daemon(&d);
    return 0;
}
