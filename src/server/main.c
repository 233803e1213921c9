/* bertserve: the HTTP daemon. Loads the model, starts the compute workers and the HTTP server,
 * then waits for SIGTERM/SIGINT and drains (see README). */
#include "common/bs_error.h"
#include "common/clock.h"
#include "common/cpu_budget.h"
#include "common/fileio.h"
#include "common/sha256.h"
#include "engine/gemm.h"
#include "engine/model.h"
#include "engine/threadpool.h"
#include "server/batcher.h"
#include "server/config.h"
#include "server/healthcheck.h"
#include "server/http.h"
#include "server/logger.h"
#include "server/metrics.h"
#include "text/tokenizer.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The one global: the write end of the self-pipe the signal handler wakes main() through.
 * A handler (rather than blocking the signals and sigwait) because OpenBLAS starts its threads
 * before main() with the default signal mask, so a blocked SIGTERM would be delivered to one of
 * them and kill the process. */
static int signal_pipe_write = -1;

static void on_stop_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    ssize_t n = write(signal_pipe_write, &b, 1); /* async-signal-safe; a full pipe is fine */
    (void)n;
}

struct hash_job {
    http_server *http;
    char path[BS_PATH_LEN];
};

/* Hashes the weights after startup, so a large file never delays readiness. */
static void *hash_weights(void *arg)
{
    struct hash_job *h = arg;
    char hex[65], err[BS_ERR_LEN];
    if (sha256_file(h->path, hex, err) == 0)
        http_set_weights_sha256(h->http, hex);
    else
        http_set_weights_sha256(h->http, "unavailable");
    return NULL;
}

static int fail_startup(const struct config *c, const char *msg)
{
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "error", msg);
    log_event(c->log_json, "startup_failed", f);
    return 1;
}

int main(int argc, char **argv)
{
    struct config cfg;
    enum config_result cr = config_parse(argc, argv, &cfg, stdout, stderr);
    if (cr != CONFIG_RUN)
        return cr == CONFIG_EXIT_OK ? 0 : 2;
    if (cfg.healthcheck) {
        char hc_err[BS_ERR_LEN];
        if (healthcheck(cfg.host, cfg.port, HEALTHCHECK_TIMEOUT_SECONDS * 1000, hc_err)) {
            fprintf(stderr, "bertserve: unhealthy: %s\n", hc_err);
            return 1;
        }
        return 0;
    }

    int signal_pipe[2];
    if (pipe(signal_pipe)) {
        perror("bertserve: pipe");
        return 1;
    }
    signal_pipe_write = signal_pipe[1];
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a client that hangs up is an error return, not a death */

    char err[BS_ERR_LEN];
    tokenizer *tok = tokenizer_load(cfg.model, err);
    bert_model *model = tok ? bert_model_load(cfg.model, err) : NULL;
    if (!model) {
        tokenizer_free(tok);
        return fail_startup(&cfg, err);
    }
    int limit = model->cfg.max_positions;
    if (cfg.max_length && (cfg.max_length < 3 || cfg.max_length > limit)) {
        snprintf(err, sizeof err, "--max-length must be from 3 to the model's %d positions", limit);
        bert_model_free(model);
        tokenizer_free(tok);
        return fail_startup(&cfg, err);
    }
    int max_len = cfg.max_length ? cfg.max_length : limit;
    /* By default the CPUs are shared out between the workers, so that --workers N does not run
     * N times as many forward-pass threads as there are CPUs. In a container the CPUs are its
     * cgroup quota, not the node's cores the affinity mask shows. */
    struct cpu_budget cpus;
    cpu_budget_detect(&cpus);
    int threads_per_worker = cfg.threads ? cfg.threads : cpus.cpus / cfg.workers;
    if (threads_per_worker < 1)
        threads_per_worker = 1;

    int rc = 1;
    metrics *met = metrics_create(&model->cfg, cfg.model, config_version(), model->weights_dtype);
    struct batcher_settings ws = {
        .n_workers = cfg.workers,
        .threads_per_worker = threads_per_worker,
        .max_jobs = cfg.max_concurrent_requests,
        .max_batch_tokens = cfg.max_batch_tokens,
        .max_batch_texts = cfg.max_batch_requests,
        .max_wait_seconds = cfg.batch_wait_us * 1e-6,
        .on_batch = metrics_batch,
        .on_batch_arg = met,
    };
    batcher *pool = met ? batcher_start(model, &ws, err) : NULL;
    http_server *http = NULL;
    if (!met)
        snprintf(err, sizeof err, "out of memory");
    if (pool) {
        struct http_deps deps = {.cfg = &cfg, .tok = tok, .model = model, .pool = pool, .metrics = met,
                                 .max_len = max_len, .threads_per_worker = threads_per_worker,
                                 .cpus = cpus.cpus, .cpu_source = cpus.source};
        http = http_start(&deps, err);
    }
    if (!http) {
        fail_startup(&cfg, err);
        goto out;
    }

    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "model", cfg.model);
    cJSON *labels = cJSON_AddArrayToObject(f, "labels");
    for (int k = 0; k < model->cfg.n_labels; k++)
        cJSON_AddItemToArray(labels, cJSON_CreateString(model->cfg.labels[k]));
    cJSON_AddNumberToObject(f, "layers", model->cfg.n_layers);
    cJSON_AddNumberToObject(f, "hidden", model->cfg.hidden);
    cJSON_AddNumberToObject(f, "max_tokens", max_len);
    cJSON_AddStringToObject(f, "weights_dtype", model->weights_dtype);
    cJSON_AddStringToObject(f, "gemm_kernel", gemm_kernel_name());
    cJSON_AddNumberToObject(f, "workers", cfg.workers);
    cJSON_AddNumberToObject(f, "threads_per_worker", threads_per_worker);
    cJSON_AddNumberToObject(f, "max_batch_tokens", cfg.max_batch_tokens);
    cJSON_AddNumberToObject(f, "max_batch_requests", cfg.max_batch_requests);
    cJSON_AddNumberToObject(f, "cpus", cpus.cpus);
    cJSON_AddStringToObject(f, "cpu_source", cpus.source);
    cJSON_AddStringToObject(f, "version", config_version());
    log_event(cfg.log_json, "loaded", f);

    struct hash_job hj = {.http = http};
    pthread_t hasher;
    bool hashing = path_join(hj.path, cfg.model, "model.safetensors", err) == 0 &&
                   pthread_create(&hasher, NULL, hash_weights, &hj) == 0;
    if (!hashing)
        http_set_weights_sha256(http, "unavailable");

    f = cJSON_CreateObject();
    char addr[300];
    bool v6 = strchr(cfg.host, ':') != NULL;
    snprintf(addr, sizeof addr, "http://%s%s%s:%d", v6 ? "[" : "", cfg.host, v6 ? "]" : "", http_port(http));
    cJSON_AddStringToObject(f, "address", addr);
    cJSON_AddNumberToObject(f, "port", http_port(http));
    if (http_metrics_port(http) >= 0)
        cJSON_AddNumberToObject(f, "metrics_port", http_metrics_port(http));
    log_event(cfg.log_json, "ready", f);

    unsigned char sig = 0;
    while (read(signal_pipe[0], &sig, 1) < 0 && errno == EINTR)
        continue;

    double deadline = monotonic_seconds() + cfg.grace_seconds;
    f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
    cJSON_AddNumberToObject(f, "grace_seconds", cfg.grace_seconds);
    log_event(cfg.log_json, "draining", f);
    http_drain(http);
    /* Drain in short steps, so that a second signal (an operator's second Ctrl-C) can cut the
     * wait short: exit at once, without waiting for the running batch. */
    bool drained = false;
    while (!(drained = http_wait_idle(http, fmin(deadline, monotonic_seconds() + 0.05))) &&
           monotonic_seconds() < deadline) {
        struct pollfd pfd = {.fd = signal_pipe[0], .events = POLLIN};
        if (poll(&pfd, 1, 0) > 0) {
            f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "reason", "second signal while draining");
            log_event(cfg.log_json, "forced_exit", f);
            _exit(1);
        }
    }
    /* Past the grace period, queued jobs are cancelled (503) and running ones finish. */
    batcher_stop(pool);
    pool = NULL;
    if (!drained)
        http_wait_idle(http, monotonic_seconds() + 5);
    if (hashing)
        pthread_join(hasher, NULL);
    f = cJSON_CreateObject();
    cJSON_AddBoolToObject(f, "drained", drained);
    log_event(cfg.log_json, "stopped", f);
    rc = 0;

out:
    http_stop(http);
    batcher_stop(pool);
    metrics_free(met);
    bert_model_free(model);
    tokenizer_free(tok);
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    return rc;
}
