/* The daemon's settings: every one a command-line flag and an environment variable
 * (the flag wins), with the defaults --help shows. */
#ifndef CONFIG_H
#define CONFIG_H

#include <stdbool.h>
#include <stdio.h>

struct config {
    const char *model, *host;
    const char *model_version; /* NULL: DIR/VERSION, else the weights' hash (model_version.h) */
    const char *model_name;    /* the KServe v2 name; NULL: the model directory's last component */
    const char *dtype;    /* --dtype as given: "f32", "bf16" or "auto" (bert_dtype_parse) */
    int port;             /* 0: an ephemeral port, printed at startup */
    int metrics_port;     /* -1: /metrics on port; else /metrics alone on this port (0: ephemeral) */
    int max_texts;        /* texts (or pairs) per request */
    long max_body_bytes;
    long max_buffered_bytes; /* request bodies held at once, across every connection */
    int max_length;       /* tokens per text incl. [CLS]/[SEP]; 0: the model's max_positions */
    int max_concurrent_requests; /* /predict requests admitted to the compute queue (waiting or running) */
    int max_batch_tokens, max_batch_requests; /* a batch's budget: tokens, texts */
    int batch_wait_us;    /* how long a batch with room may wait for company */
    int max_connections;
    int timeout_seconds;  /* idle/slow connection timeout */
    int header_timeout_seconds; /* a request's headers are due this long after the connection opened
                                 * or its last answer; 0: no deadline */
    int workers;          /* compute workers (batches in parallel) */
    int threads;          /* forward-pass threads per worker; 0: CPUs available / workers */
    int stall_seconds;    /* /health turns 503 after the workers stall this long; 0: never */
    int grace_seconds;    /* drain bound after SIGTERM/SIGINT */
    bool log_json, log_text;
    bool no_ui;           /* --no-ui: no playground page at GET / (404) */
    const char *api_key;  /* NULL: /predict is open; else it needs "Authorization: Bearer KEY" */
    bool healthcheck;     /* --healthcheck: probe the running daemon's /health, do not serve */
    const char *admin_key; /* NULL: /admin/reload answers 404 (SIGHUP still reloads) */
    const char *prediction_log; /* NULL: no prediction log; else its file (prediction_log.h) */
    long prediction_log_max_bytes; /* rotate the file at this size */
    int prediction_log_keep;       /* old files kept: FILE.1 ... FILE.N */
    int feedback_window;  /* recent predictions /feedback can score (prediction_table.h) */
    const char *cors_allow_origin; /* NULL: no CORS; else origins (comma-separated, or "*") browsers may call from */
};

/* How long `--healthcheck` waits for /health: well inside Docker's and Kubernetes' probe timeouts. */
#define HEALTHCHECK_TIMEOUT_SECONDS 3

enum config_result { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_EXIT_USAGE };

/* Fills c from the defaults, then the environment, then argv. --help and --version print to
 * out and return CONFIG_EXIT_OK; a bad flag or value prints one sentence to err_out and
 * returns CONFIG_EXIT_USAGE. Strings point into argv or the environment. */
enum config_result config_from_command_line(int argc, char **argv, struct config *c, FILE *out,
                                            FILE *err_out);

/* "0.1.0 (Release, gcc 12.2.0, sanitizers off)": the version and how it was built. */
const char *config_version(void);
const char *config_build_info(void);

#endif
