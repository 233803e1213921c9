#include "server/config.h"

#include "engine/model.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#ifndef BERTSERVE_VERSION
#define BERTSERVE_VERSION "unknown"
#endif
#ifndef BERTSERVE_BUILD_TYPE
#define BERTSERVE_BUILD_TYPE "unknown"
#endif
#ifdef BERTSERVE_SANITIZED
#define SANITIZERS "address,undefined"
#else
#define SANITIZERS "off"
#endif

const char *config_version(void)
{
    return BERTSERVE_VERSION;
}

const char *config_build_info(void)
{
    return "build " BERTSERVE_BUILD_TYPE ", compiler " __VERSION__ ", sanitizers " SANITIZERS
           ", built " __DATE__ " " __TIME__;
}

enum kind { STR, INT, LONG, FLAG, LOGFMT, DTYPE };

/* One row per setting: the table drives parsing, the environment and --help alike. */
struct option_spec {
    const char *flag, *env, *arg, *help;
    enum kind kind;
    size_t offset;
    long min, max;
};

#define OFF(f) offsetof(struct config, f)
static const struct option_spec specs[] = {
    {"--model", "BERTSERVE_MODEL", "DIR",
     "HuggingFace model directory (config.json, vocab.txt or vocab.json + merges.txt, model.safetensors)",
     STR, OFF(model), 0, 0},
    {"--model-name", "BERTSERVE_MODEL_NAME", "NAME",
     "the model's name in the KServe v2 routes, /v2/models/NAME (default: the model directory's last component)",
     STR, OFF(model_name), 0, 0},
    {"--model-version", "BERTSERVE_MODEL_VERSION", "NAME",
     "the model's version in answers, /info and metrics (default: DIR/VERSION, else the weights' sha256, 12 hex "
     "digits)",
     STR, OFF(model_version), 0, 0},
    {"--dtype", "BERTSERVE_DTYPE", "f32|bf16|int8|auto",
     "number type of the encoder's matrix products: f32 (exact), bf16 (AVX512-BF16), int8 (dynamic quantization, "
     "AVX512-VNNI), auto (the fastest this CPU runs natively; see README)",
     DTYPE, OFF(dtype), 0, 0},
    {"--host", "BERTSERVE_HOST", "ADDR", "address to listen on (IPv4 or IPv6)", STR, OFF(host), 0, 0},
    {"--port", "BERTSERVE_PORT", "N", "TCP port; 0 picks a free one and prints it", INT, OFF(port), 0, 65535},
    {"--metrics-port", "BERTSERVE_METRICS_PORT", "N",
     "serve /metrics alone on this port, not on --port (-1: on --port; 0: a free one, printed)", INT,
     OFF(metrics_port), -1, 65535},
    {"--max-texts", "BERTSERVE_MAX_TEXTS", "N", "texts (or pairs) per request", INT, OFF(max_texts), 1, 100000},
    {"--feedback-window", "BERTSERVE_FEEDBACK_WINDOW", "N",
     "recent predictions (texts) POST /feedback can score; 120-128 bytes each (12.5 MB at 100000), held from startup", INT,
     OFF(feedback_window), 1, 100000000},
    {"--prediction-log", "BERTSERVE_PREDICTION_LOG", "FILE",
     "write one JSON line per prediction to FILE, off the request path (lines dropped and counted when the disk "
     "lags; texts only with --log-text; default: none)",
     STR, OFF(prediction_log), 0, 0},
    {"--prediction-log-max-bytes", "BERTSERVE_PREDICTION_LOG_MAX_BYTES", "N",
     "rotate the prediction log before it passes this size", LONG, OFF(prediction_log_max_bytes), 1, 1L << 50},
    {"--prediction-log-keep", "BERTSERVE_PREDICTION_LOG_KEEP", "N",
     "rotated prediction logs kept, FILE.1 (newest) ... FILE.N (0: none)", INT, OFF(prediction_log_keep), 0, 1000},
    {"--max-body-bytes", "BERTSERVE_MAX_BODY_BYTES", "N", "largest request body (413 beyond)", LONG,
     OFF(max_body_bytes), 2, 1L << 30},
    {"--max-buffered-bytes", "BERTSERVE_MAX_BUFFERED_BYTES", "N",
     "request body bytes held at once across all connections, bodies still arriving included (429 beyond)", LONG,
     OFF(max_buffered_bytes), 1, 1L << 40},
    {"--max-length", "BERTSERVE_MAX_LENGTH", "N",
     "tokens per text incl. [CLS]/[SEP] (0: the model's max_position_embeddings)", INT, OFF(max_length), 0, 1 << 20},
    {"--max-concurrent-requests", "BERTSERVE_MAX_CONCURRENT_REQUESTS", "N",
     "/predict requests held waiting or running (429 beyond)", INT, OFF(max_concurrent_requests), 1, 1000000},
    {"--max-batch-tokens", "BERTSERVE_MAX_BATCH_TOKENS", "N",
     "a batch takes texts from the queue up to this many tokens (a longer text runs alone)", INT,
     OFF(max_batch_tokens), 1, 1 << 24},
    {"--max-batch-requests", "BERTSERVE_MAX_BATCH_REQUESTS", "N", "and up to this many texts; 1 turns batching off",
     INT, OFF(max_batch_requests), 1, 100000},
    {"--batch-wait-us", "BERTSERVE_BATCH_WAIT_US", "N",
     "after a batch of several texts, how long the next one may wait for those clients to come back, in "
     "microseconds (0: never)",
     INT,
     OFF(batch_wait_us), 0, 10000000},
    {"--max-connections", "BERTSERVE_MAX_CONNECTIONS", "N", "open HTTP connections", INT, OFF(max_connections), 1,
     100000},
    {"--timeout-seconds", "BERTSERVE_TIMEOUT_SECONDS", "N", "close a connection idle or stalled this long", INT,
     OFF(timeout_seconds), 1, 86400},
    {"--header-timeout-seconds", "BERTSERVE_HEADER_TIMEOUT_SECONDS", "N",
     "close a connection whose request headers are not in this long after it opened or after its last answer "
     "(0: never)",
     INT, OFF(header_timeout_seconds), 0, 86400},
    {"--workers", "BERTSERVE_WORKERS", "N", "compute workers: batches run in parallel", INT, OFF(workers), 1, 256},
    {"--threads", "BERTSERVE_THREADS", "N",
     "forward-pass threads per worker (0: the CPUs available, shared out between the workers)", INT, OFF(threads), 0,
     1024},
    {"--stall-seconds", "BERTSERVE_STALL_SECONDS", "N",
     "/health answers 503 once the workers are busy this long without finishing a batch (0: never)", INT,
     OFF(stall_seconds), 0, 86400},
    {"--grace-seconds", "BERTSERVE_GRACE_SECONDS", "N", "drain bound after SIGTERM/SIGINT", INT, OFF(grace_seconds),
     0, 86400},
    {"--log-format", "BERTSERVE_LOG_FORMAT", "text|json", "request log format on stderr", LOGFMT, OFF(log_json), 0,
     0},
    {"--no-ui", "BERTSERVE_NO_UI", NULL, "no playground page at GET / (it answers 404)", FLAG, OFF(no_ui), 0, 0},
    {"--log-text", "BERTSERVE_LOG_TEXT", NULL, "include request texts in the request log and the prediction log (off: they may be private)", FLAG,
     OFF(log_text), 0, 0},
    {"--admin-key", "BERTSERVE_ADMIN_KEY", "KEY",
     "enable POST /admin/reload for \"Authorization: Bearer KEY\" (unset: 404; SIGHUP reloads either way)", STR,
     OFF(admin_key), 0, 0},
    {"--api-key", "BERTSERVE_API_KEY", "KEY",
     "require \"Authorization: Bearer KEY\" on /predict (prefer the environment: argv is visible to all)", STR,
     OFF(api_key), 0, 0},
    {"--cors-allow-origin", "BERTSERVE_CORS_ALLOW_ORIGIN", "ORIGINS",
     "let browser pages from these comma-separated origins (or \"*\": any) call the API: CORS headers and "
     "preflights (default: none)",
     STR, OFF(cors_allow_origin), 0, 0},
};

static void usage(FILE *f, const struct config *d)
{
    fprintf(f, "usage: bertserve [options]\n\nServes a BERT text classifier over HTTP (see README).\n\n");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        const struct option_spec *s = &specs[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", s->flag, s->arg ? " " : "", s->arg ? s->arg : "");
        const char *p = (const char *)d + s->offset;
        char def[128] = "";
        if ((s->kind == STR || s->kind == DTYPE) && *(const char *const *)p)
            snprintf(def, sizeof def, " (default %s)", *(const char *const *)p);
        else if (s->kind == INT)
            snprintf(def, sizeof def, " (default %d)", *(const int *)p);
        else if (s->kind == LONG)
            snprintf(def, sizeof def, " (default %ld)", *(const long *)p);
        else if (s->kind == LOGFMT)
            snprintf(def, sizeof def, " (default text)");
        fprintf(f, "  %-28s %s%s\n  %-28s env %s\n", left, s->help, def, "", s->env);
    }
    fprintf(f, "  %-28s GET /health of the daemon running on --host/--port (as configured, env\n"
               "  %-28s included); exit 0 if it answers 200 within %d s, else 1 (a container HEALTHCHECK)\n",
            "--healthcheck", "", HEALTHCHECK_TIMEOUT_SECONDS);
    fprintf(f, "  %-28s this help\n  %-28s version and build information\n", "--help", "--version");
}

/* Stores value into the setting; one sentence to err_out on a bad value. */
static int set_value(const struct option_spec *s, const char *value, const char *source, struct config *c,
                     FILE *err_out)
{
    char *p = (char *)c + s->offset;
    if (s->kind == STR) {
        if (!*value) {
            fprintf(err_out, "bertserve: %s must not be empty\n", source);
            return -1;
        }
        *(const char **)p = value;
    } else if (s->kind == FLAG) {
        bool on = !strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "on");
        bool off = !*value || !strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no") ||
                   !strcmp(value, "off");
        if (!on && !off) {
            fprintf(err_out, "bertserve: %s must be true or false, not \"%s\"\n", source, value);
            return -1;
        }
        *(bool *)p = on;
    } else if (s->kind == DTYPE) {
        enum bert_dtype dtype;
        if (bert_dtype_parse(value, &dtype)) {
            fprintf(err_out, "bertserve: %s must be f32, bf16, int8 or auto, not \"%s\"\n", source, value);
            return -1;
        }
        *(const char **)p = value;
    } else if (s->kind == LOGFMT) {
        if (strcmp(value, "text") && strcmp(value, "json")) {
            fprintf(err_out, "bertserve: %s must be text or json, not \"%s\"\n", source, value);
            return -1;
        }
        *(bool *)p = !strcmp(value, "json");
    } else {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (!*value || *end || errno || v < s->min || v > s->max) {
            fprintf(err_out, "bertserve: %s must be an integer from %ld to %ld, not \"%s\"\n", source, s->min,
                    s->max, value);
            return -1;
        }
        if (s->kind == INT)
            *(int *)p = (int)v;
        else
            *(long *)p = v;
    }
    return 0;
}

enum config_result config_from_command_line(int argc, char **argv, struct config *c, FILE *out,
                                            FILE *err_out)
{
    *c = (struct config){
        .model = "models/finsent-mini",
        .dtype = "f32",
        .host = "0.0.0.0",
        .port = 8080,
        .metrics_port = -1,
        .max_texts = 64,
        .feedback_window = 100000,
        .prediction_log_max_bytes = 100000000,
        .prediction_log_keep = 5,
        .max_body_bytes = 2000000,
        .max_buffered_bytes = 64L << 20,
        .max_length = 0,
        .max_concurrent_requests = 512,
        .max_batch_tokens = 1024,
        .max_batch_requests = 64,
        .batch_wait_us = 3000,
        .stall_seconds = 60,
        .max_connections = 512,
        .timeout_seconds = 30,
        .header_timeout_seconds = 10,
        .workers = 1,
        .grace_seconds = 30,
    };
    struct config defaults = *c;
    size_t n_specs = sizeof specs / sizeof specs[0];
    for (size_t i = 0; i < n_specs; i++) {
        const char *v = getenv(specs[i].env);
        if (v && set_value(&specs[i], v, specs[i].env, c, err_out))
            return CONFIG_EXIT_USAGE;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(out, &defaults);
            return CONFIG_EXIT_OK;
        }
        if (!strcmp(arg, "--version")) {
            fprintf(out, "bertserve %s\n%s\n", config_version(), config_build_info());
            return CONFIG_EXIT_OK;
        }
        /* A mode, not a setting: no environment variable, or the served container would probe. */
        if (!strcmp(arg, "--healthcheck")) {
            c->healthcheck = true;
            continue;
        }
        /* --flag VALUE and --flag=VALUE */
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const struct option_spec *s = NULL;
        for (size_t k = 0; k < n_specs; k++)
            if (strlen(specs[k].flag) == name_len && !strncmp(specs[k].flag, arg, name_len))
                s = &specs[k];
        if (!s) {
            fprintf(err_out, "bertserve: unknown option %s (see --help)\n", arg);
            return CONFIG_EXIT_USAGE;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value && s->kind == FLAG)
            value = "true";
        if (!value) {
            if (i + 1 >= argc) {
                fprintf(err_out, "bertserve: %s needs a value (see --help)\n", s->flag);
                return CONFIG_EXIT_USAGE;
            }
            value = argv[++i];
        }
        if (set_value(s, value, s->flag, c, err_out))
            return CONFIG_EXIT_USAGE;
    }
    return CONFIG_RUN;
}
