#include "server/metrics.h"

#include "common/buffer.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *route_names[ROUTE_COUNT] = {"/predict", "/health",   "/ready",        "/info",
                                               "/metrics", "/tokenize", "/batch_predict", "/admin/reload", "/feedback",
                                               "playground", "/openapi.json", "/v2", "/v2/health/live",
                                               "/v2/health/ready", "/v2/models/{name}", "/v2/models/{name}/ready",
                                               "/v2/models/{name}/infer", "other"};

const char *metrics_route_name(enum metrics_route r)
{
    return route_names[r];
}

static const char *methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "OTHER"};
#define N_METHODS (sizeof methods / sizeof methods[0])
#define MAX_CODES 32 /* distinct status codes per route and method: we only send a dozen */

#define MAX_BUCKETS 20
struct histogram {
    const double *bounds;
    int n_bounds;
    uint64_t counts[MAX_BUCKETS]; /* per bucket, not cumulative; the last is +Inf */
    uint64_t count;
    double sum;
};

static const double seconds_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,   30};
static const double tokens_bounds[] = {4, 8, 16, 32, 64, 128, 256, 384, 512, 1024};
static const double texts_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
static const double batch_tokens_bounds[] = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
/* Shares of [UNK] per text: most texts have none (le="0"); a few in a hundred is ordinary
 * noise (rare symbols), a tenth and beyond means another language or alphabet. */
static const double unk_share_bounds[] = {0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1};
static const double confidence_bounds[] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99};
#define N(a) (int)(sizeof a / sizeof a[0])

struct code_count {
    int code;
    uint64_t n;
};

/* The predictions of one model version, by label. A reload adds one; the series of the versions
 * before it stay (counters never go backwards) up to MAX_MODEL_SERIES, past which the oldest
 * one not current is dropped. gen tells a dropped series' handle (metrics_series) apart. */
#define MAX_MODEL_SERIES 8
struct model_series {
    char *version;
    int n_labels;
    char **labels;
    uint64_t *predictions;
    uint64_t *feedback; /* n_labels x n_labels: [predicted * n_labels + actual] */
    unsigned gen; /* 0: an empty slot */
};

struct metrics {
    pthread_mutex_t lock;
    struct code_count requests[ROUTE_COUNT][N_METHODS][MAX_CODES];
    struct histogram duration[ROUTE_COUNT];
    struct histogram queue, tokenize, inference, tokens, texts, confidence;
    struct histogram unk_share;
    uint64_t truncated_texts;
    uint64_t feedback_unmatched[FEEDBACK_REASON_COUNT];
    uint64_t prediction_log_lines, prediction_log_dropped;
    struct histogram batch_texts, batch_tokens, batch_seconds;
    struct model_series series[MAX_MODEL_SERIES];
    unsigned next_gen;
    int current; /* the series of the model served now */
    uint64_t reloads_ok, reloads_failed;
    struct histogram reload_seconds;
    long in_flight, queue_depth;
    char *version;                            /* bertserve's */
    char *model, *precision, *kernel;         /* the model served now */
    double start_time; /* process start, seconds since the epoch */
};

static void hist_init(struct histogram *h, const double *bounds, int n)
{
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n;
}

static void hist_observe(struct histogram *h, double v)
{
    if (!isfinite(v)) /* a NaN in _sum ("-nan" in the text) makes Prometheus reject every scrape */
        return;
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

/* The fields of /proc/self/stat (see proc(5)) the process metrics use, in clock ticks. */
struct proc_stat {
    unsigned long long utime, stime; /* CPU time in user and in kernel mode (fields 14, 15) */
    unsigned long long start_time;   /* when the process started, after boot (field 22) */
};

static int read_proc_stat(struct proc_stat *s)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Field 2, the command name, may hold spaces and parentheses: field 3 starts after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d %llu",
                     &s->utime, &s->stime, &s->start_time) != 3)
        return -1;
    return 0;
}

/* Process start in seconds since the epoch: its ticks after boot plus the boot time (btime). */
static double process_start_time(void)
{
    struct proc_stat stat;
    if (read_proc_stat(&stat))
        return 0;
    unsigned long long btime = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return 0;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    return (double)btime + (double)stat.start_time / (double)sysconf(_SC_CLK_TCK);
}

metrics *metrics_create(const char *version)
{
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    for (int r = 0; r < ROUTE_COUNT; r++)
        hist_init(&m->duration[r], seconds_bounds, N(seconds_bounds));
    hist_init(&m->queue, seconds_bounds, N(seconds_bounds));
    hist_init(&m->tokenize, seconds_bounds, N(seconds_bounds));
    hist_init(&m->inference, seconds_bounds, N(seconds_bounds));
    hist_init(&m->tokens, tokens_bounds, N(tokens_bounds));
    hist_init(&m->texts, texts_bounds, N(texts_bounds));
    hist_init(&m->confidence, confidence_bounds, N(confidence_bounds));
    hist_init(&m->unk_share, unk_share_bounds, N(unk_share_bounds));
    hist_init(&m->batch_texts, texts_bounds, N(texts_bounds));
    hist_init(&m->batch_tokens, batch_tokens_bounds, N(batch_tokens_bounds));
    hist_init(&m->batch_seconds, seconds_bounds, N(seconds_bounds));
    hist_init(&m->reload_seconds, seconds_bounds, N(seconds_bounds));
    m->current = -1;
    m->start_time = process_start_time();
    if (!(m->version = strdup(version))) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

static void series_free(struct model_series *s)
{
    for (int k = 0; s->labels && k < s->n_labels; k++)
        free(s->labels[k]);
    free(s->labels);
    free(s->predictions);
    free(s->feedback);
    free(s->version);
    memset(s, 0, sizeof *s);
}

/* A new series for version and labels, all counts 0; -1 when out of memory. */
static int series_init(struct model_series *s, const bert_config *labels, const char *version, unsigned gen)
{
    s->n_labels = labels->n_labels;
    s->version = strdup(version);
    s->labels = calloc((size_t)labels->n_labels, sizeof *s->labels);
    s->predictions = calloc((size_t)labels->n_labels, sizeof *s->predictions);
    s->feedback = calloc((size_t)labels->n_labels * (size_t)labels->n_labels, sizeof *s->feedback);
    bool ok = s->version && s->labels && s->predictions && s->feedback;
    for (int k = 0; ok && k < labels->n_labels; k++)
        ok = (s->labels[k] = strdup(labels->labels[k])) != NULL;
    s->gen = gen;
    if (!ok)
        series_free(s);
    return ok ? 0 : -1;
}

/* Under the lock: the slot of the series for version with these labels, or a free slot, or
 * the oldest one not current (dropped). */
static int series_slot(metrics *m, const bert_config *labels, const char *version, bool *found)
{
    int free_slot = -1, oldest = -1;
    for (int i = 0; i < MAX_MODEL_SERIES; i++) {
        struct model_series *s = &m->series[i];
        if (!s->gen) {
            free_slot = free_slot < 0 ? i : free_slot;
            continue;
        }
        bool same = !strcmp(s->version, version) && s->n_labels == labels->n_labels;
        for (int k = 0; same && k < s->n_labels; k++)
            same = !strcmp(s->labels[k], labels->labels[k]);
        if (same) {
            *found = true;
            return i;
        }
        if (i != m->current && (oldest < 0 || s->gen < m->series[oldest].gen))
            oldest = i;
    }
    *found = false;
    return free_slot >= 0 ? free_slot : oldest;
}

int metrics_set_model(metrics *m, const bert_config *labels, const struct metrics_model_facts *facts,
                      struct metrics_series *series)
{
    char *model = strdup(facts->model), *precision = strdup(facts->precision), *kernel = strdup(facts->kernel);
    pthread_mutex_lock(&m->lock);
    bool found = false;
    int slot = series_slot(m, labels, facts->model_version, &found);
    int rc = model && precision && kernel ? 0 : -1;
    if (rc == 0 && !found) {
        series_free(&m->series[slot]);
        rc = series_init(&m->series[slot], labels, facts->model_version, ++m->next_gen);
    }
    if (rc == 0) {
        m->current = slot;
        *series = (struct metrics_series){slot, m->series[slot].gen};
        free(m->model), free(m->precision), free(m->kernel);
        m->model = model, m->precision = precision, m->kernel = kernel;
        model = precision = kernel = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    free(model), free(precision), free(kernel);
    return rc;
}

void metrics_reload(metrics *m, bool ok, double seconds)
{
    pthread_mutex_lock(&m->lock);
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    hist_observe(&m->reload_seconds, seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    for (int i = 0; i < MAX_MODEL_SERIES; i++)
        series_free(&m->series[i]);
    free(m->model);
    free(m->version);
    free(m->precision);
    free(m->kernel);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void metrics_request(metrics *m, enum metrics_route route, const char *method, int code, double seconds)
{
    size_t mi = N_METHODS - 1;
    for (size_t i = 0; i + 1 < N_METHODS; i++)
        if (!strcmp(method, methods[i]))
            mi = i;
    pthread_mutex_lock(&m->lock);
    struct code_count *cc = m->requests[route][mi];
    for (int i = 0; i < MAX_CODES; i++) {
        if (cc[i].code == 0)
            cc[i].code = code;
        if (cc[i].code == code) {
            cc[i].n++;
            break;
        }
    }
    hist_observe(&m->duration[route], seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_in_flight(metrics *m, int delta)
{
    pthread_mutex_lock(&m->lock);
    m->in_flight += delta;
    pthread_mutex_unlock(&m->lock);
}

void metrics_queue_depth(metrics *m, int delta)
{
    pthread_mutex_lock(&m->lock);
    m->queue_depth += delta;
    pthread_mutex_unlock(&m->lock);
}

void metrics_job(metrics *m, double queue_s, double tokenize_s, double inference_s, int n_texts)
{
    pthread_mutex_lock(&m->lock);
    hist_observe(&m->queue, queue_s);
    hist_observe(&m->tokenize, tokenize_s);
    hist_observe(&m->inference, inference_s);
    hist_observe(&m->texts, n_texts);
    pthread_mutex_unlock(&m->lock);
}

void metrics_text(metrics *m, int tokens)
{
    pthread_mutex_lock(&m->lock);
    hist_observe(&m->tokens, tokens);
    pthread_mutex_unlock(&m->lock);
}

void metrics_batch(void *arg, int n_texts, int n_tokens, double seconds)
{
    metrics *m = arg;
    pthread_mutex_lock(&m->lock);
    hist_observe(&m->batch_texts, n_texts);
    hist_observe(&m->batch_tokens, n_tokens);
    hist_observe(&m->batch_seconds, seconds);
    pthread_mutex_unlock(&m->lock);
}

void metrics_prediction(metrics *m, struct metrics_series series, int label, double confidence)
{
    pthread_mutex_lock(&m->lock);
    struct model_series *s = series.slot >= 0 && series.slot < MAX_MODEL_SERIES ? &m->series[series.slot] : NULL;
    if (s && s->gen == series.gen && label >= 0 && label < s->n_labels)
        s->predictions[label]++;
    hist_observe(&m->confidence, confidence);
    pthread_mutex_unlock(&m->lock);
}

void metrics_text_drift(metrics *m, double unk_share, bool truncated)
{
    pthread_mutex_lock(&m->lock);
    hist_observe(&m->unk_share, unk_share);
    m->truncated_texts += truncated;
    pthread_mutex_unlock(&m->lock);
}

void metrics_prediction_log(metrics *m, uint64_t written, uint64_t dropped)
{
    pthread_mutex_lock(&m->lock);
    m->prediction_log_lines += written;
    m->prediction_log_dropped += dropped;
    pthread_mutex_unlock(&m->lock);
}

static const char *feedback_reasons[FEEDBACK_REASON_COUNT] = {"unknown_id", "bad_label", "bad_index", "duplicate"};

const char *metrics_feedback_reason_name(enum feedback_unmatched r)
{
    return feedback_reasons[r];
}

/* Under the lock: the series a handle names, or NULL if it was dropped since. */
static struct model_series *series_of(metrics *m, struct metrics_series series)
{
    if (series.slot < 0 || series.slot >= MAX_MODEL_SERIES)
        return NULL;
    struct model_series *s = &m->series[series.slot];
    return s->gen && s->gen == series.gen ? s : NULL;
}

int metrics_label_index(metrics *m, struct metrics_series series, const char *label, char *labels_out, size_t cap)
{
    pthread_mutex_lock(&m->lock);
    struct model_series *s = series_of(m, series);
    int found = s ? -1 : -2;
    for (int k = 0; s && k < s->n_labels && found < 0; k++)
        if (!strcmp(s->labels[k], label))
            found = k;
    if (found == -1 && labels_out && cap) {
        size_t used = 0;
        labels_out[0] = '\0';
        for (int k = 0; k < s->n_labels && used < cap; k++) {
            int n = snprintf(labels_out + used, cap - used, "%s%s", k ? ", " : "", s->labels[k]);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    pthread_mutex_unlock(&m->lock);
    return found;
}

int metrics_feedback_names(metrics *m, struct metrics_series series, int predicted, int actual, char **version,
                           char **predicted_name, char **actual_name)
{
    *version = *predicted_name = *actual_name = NULL;
    pthread_mutex_lock(&m->lock);
    struct model_series *s = series_of(m, series);
    bool ok = s && predicted >= 0 && predicted < s->n_labels && actual < s->n_labels;
    if (ok) {
        *version = strdup(s->version);
        *predicted_name = strdup(s->labels[predicted]);
        *actual_name = actual >= 0 ? strdup(s->labels[actual]) : NULL;
        ok = *version && *predicted_name && (actual < 0 || *actual_name);
    }
    pthread_mutex_unlock(&m->lock);
    if (!ok) {
        free(*version), free(*predicted_name), free(*actual_name);
        *version = *predicted_name = *actual_name = NULL;
    }
    return ok ? 0 : -1;
}

void metrics_feedback(metrics *m, struct metrics_series series, int predicted, int actual)
{
    pthread_mutex_lock(&m->lock);
    struct model_series *s = series_of(m, series);
    if (s && predicted >= 0 && predicted < s->n_labels && actual >= 0 && actual < s->n_labels)
        s->feedback[predicted * s->n_labels + actual]++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_feedback_unmatched(metrics *m, enum feedback_unmatched reason)
{
    pthread_mutex_lock(&m->lock);
    m->feedback_unmatched[reason]++;
    pthread_mutex_unlock(&m->lock);
}

/* ---- exposition ------------------------------------------------------------------- */

/* The exposition being written. After the first failed put the rest are skipped, and
 * metrics_render returns NULL. */
struct out {
    struct buffer text;
    bool oom;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    o->oom = buffer_vappendf(&o->text, fmt, ap) != 0;
    va_end(ap);
}

/* A label value with \, " and newline escaped as the text format requires. */
static void put_label_value(struct out *o, const char *v)
{
    put(o, "\"");
    for (; *v; v++) {
        if (*v == '\\')
            put(o, "\\\\");
        else if (*v == '"')
            put(o, "\\\"");
        else if (*v == '\n')
            put(o, "\\n");
        else
            put(o, "%c", *v);
    }
    put(o, "\"");
}

static void put_header(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One histogram's series; labels is "" or `route="/predict",` (with the trailing comma). */
static void put_histogram(struct out *o, const char *name, const char *labels, const struct histogram *h)
{
    uint64_t cumulative = 0;
    for (int i = 0; i <= h->n_bounds; i++) {
        cumulative += h->counts[i];
        if (i < h->n_bounds)
            put(o, "%s_bucket{%sle=\"%g\"} %llu\n", name, labels, h->bounds[i], (unsigned long long)cumulative);
        else
            put(o, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cumulative);
    }
    char bare[128] = "";
    size_t n = strlen(labels);
    if (n) /* drop the trailing comma */
        snprintf(bare, sizeof bare, "{%.*s}", (int)(n - 1), labels);
    put(o, "%s_sum%s %.9g\n%s_count%s %llu\n", name, bare, h->sum, name, bare, (unsigned long long)h->count);
}

static void put_process(struct out *o, double start_time)
{
    struct proc_stat stat;
    if (read_proc_stat(&stat) == 0) {
        put_header(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        put(o, "process_cpu_seconds_total %.2f\n", (double)(stat.utime + stat.stime) / (double)sysconf(_SC_CLK_TCK));
    }
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        unsigned long size, resident;
        if (fscanf(f, "%lu %lu", &size, &resident) == 2) {
            double page = (double)sysconf(_SC_PAGESIZE);
            put_header(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
            put(o, "process_resident_memory_bytes %.0f\n", (double)resident * page);
            put_header(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
            put(o, "process_virtual_memory_bytes %.0f\n", (double)size * page);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                n++;
        closedir(d);
        put_header(o, "process_open_fds", "gauge", "Number of open file descriptors.");
        put(o, "process_open_fds %ld\n", n - 1); /* not counting the one opendir holds */
    }
    long max_fds = sysconf(_SC_OPEN_MAX);
    if (max_fds > 0) {
        put_header(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        put(o, "process_max_fds %ld\n", max_fds);
    }
    put_header(o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
    put(o, "process_start_time_seconds %.2f\n", start_time);
}

/* Under the lock: the input drift signals and the feedback series. Every (predicted, actual)
 * pair of every tracked version is present from the start, so that rate() and increase() see
 * a cell's first feedback (a series born at 1 would count 0). */
static void put_drift_and_feedback(struct out *o, const metrics *m)
{
    put_header(o, "bertserve_unk_token_share", "histogram",
               "Share of a text's tokens that are [UNK] ([CLS]/[SEP] left out), per answered text.");
    put_histogram(o, "bertserve_unk_token_share", "", &m->unk_share);
    put_header(o, "bertserve_truncated_texts_total", "counter", "Answered texts cut to the model's token limit.");
    put(o, "bertserve_truncated_texts_total %llu\n", (unsigned long long)m->truncated_texts);
    put_header(o, "bertserve_feedback_total", "counter",
               "Feedbacks matched to a prediction, by predicted label, actual label and model version.");
    for (int i = 0; i < MAX_MODEL_SERIES; i++) {
        const struct model_series *s = &m->series[i];
        for (int p = 0; s->gen && p < s->n_labels; p++)
            for (int a = 0; a < s->n_labels; a++) {
                put(o, "bertserve_feedback_total{predicted=");
                put_label_value(o, s->labels[p]);
                put(o, ",actual=");
                put_label_value(o, s->labels[a]);
                put(o, ",model_version=");
                put_label_value(o, s->version);
                put(o, "} %llu\n", (unsigned long long)s->feedback[p * s->n_labels + a]);
            }
    }
    put_header(o, "bertserve_feedback_unmatched_total", "counter", "Feedbacks not counted, by reason.");
    for (int r = 0; r < FEEDBACK_REASON_COUNT; r++)
        put(o, "bertserve_feedback_unmatched_total{reason=\"%s\"} %llu\n", feedback_reasons[r],
            (unsigned long long)m->feedback_unmatched[r]);
    put_header(o, "bertserve_prediction_log_lines_total", "counter", "Lines written to --prediction-log.");
    put(o, "bertserve_prediction_log_lines_total %llu\n", (unsigned long long)m->prediction_log_lines);
    put_header(o, "bertserve_prediction_log_dropped_total", "counter",
               "Prediction log lines dropped: the buffer was full (the disk slower than the traffic) or a write failed.");
    put(o, "bertserve_prediction_log_dropped_total %llu\n", (unsigned long long)m->prediction_log_dropped);
}

char *metrics_render(metrics *m, size_t *len)
{
    struct out o = {.oom = false};
    pthread_mutex_lock(&m->lock);
    put_header(&o, "bertserve_requests_total", "counter", "HTTP requests answered, by route, method and status code.");
    for (int r = 0; r < ROUTE_COUNT; r++)
        for (size_t mi = 0; mi < N_METHODS; mi++)
            for (int i = 0; i < MAX_CODES && m->requests[r][mi][i].code; i++)
                put(&o, "bertserve_requests_total{route=\"%s\",method=\"%s\",code=\"%d\"} %llu\n", route_names[r],
                    methods[mi], m->requests[r][mi][i].code, (unsigned long long)m->requests[r][mi][i].n);
    put_header(&o, "bertserve_request_duration_seconds", "histogram",
               "Time from a request's arrival to its response being queued, by route.");
    for (int r = 0; r < ROUTE_COUNT; r++) {
        char labels[64];
        snprintf(labels, sizeof labels, "route=\"%s\",", route_names[r]);
        put_histogram(&o, "bertserve_request_duration_seconds", labels, &m->duration[r]);
    }
    put_header(&o, "bertserve_queue_time_seconds", "histogram", "Time a /predict job waited for a compute worker.");
    put_histogram(&o, "bertserve_queue_time_seconds", "", &m->queue);
    put_header(&o, "bertserve_tokenization_time_seconds", "histogram", "Time spent tokenizing a /predict request.");
    put_histogram(&o, "bertserve_tokenization_time_seconds", "", &m->tokenize);
    put_header(&o, "bertserve_inference_time_seconds", "histogram",
               "Time from a /predict job's first text entering a batch to its last one finishing.");
    put_histogram(&o, "bertserve_inference_time_seconds", "", &m->inference);
    put_header(&o, "bertserve_tokens_per_text", "histogram", "Tokens per text after truncation, [CLS]/[SEP] included.");
    put_histogram(&o, "bertserve_tokens_per_text", "", &m->tokens);
    put_header(&o, "bertserve_texts_per_request", "histogram", "Texts (or pairs) per /predict request.");
    put_histogram(&o, "bertserve_texts_per_request", "", &m->texts);
    put_header(&o, "bertserve_batch_texts", "histogram", "Texts per batch run by a compute worker.");
    put_histogram(&o, "bertserve_batch_texts", "", &m->batch_texts);
    put_header(&o, "bertserve_batch_tokens", "histogram", "Tokens per batch run by a compute worker (no padding).");
    put_histogram(&o, "bertserve_batch_tokens", "", &m->batch_tokens);
    put_header(&o, "bertserve_batch_duration_seconds", "histogram", "Time of one batch's forward pass.");
    put_histogram(&o, "bertserve_batch_duration_seconds", "", &m->batch_seconds);
    put_header(&o, "bertserve_predictions_total", "counter", "Predictions returned, by predicted label and model version.");
    for (int i = 0; i < MAX_MODEL_SERIES; i++)
        for (int k = 0; m->series[i].gen && k < m->series[i].n_labels; k++) {
            put(&o, "bertserve_predictions_total{label=");
            put_label_value(&o, m->series[i].labels[k]);
            put(&o, ",model_version=");
            put_label_value(&o, m->series[i].version);
            put(&o, "} %llu\n", (unsigned long long)m->series[i].predictions[k]);
        }
    put_header(&o, "bertserve_prediction_confidence", "histogram",
               "Probability of the predicted label, per returned prediction.");
    put_histogram(&o, "bertserve_prediction_confidence", "", &m->confidence);
    put_drift_and_feedback(&o, m);
    put_header(&o, "bertserve_requests_in_flight", "gauge", "HTTP requests being handled right now.");
    put(&o, "bertserve_requests_in_flight %ld\n", m->in_flight);
    put_header(&o, "bertserve_queue_depth", "gauge", "/predict jobs waiting for or running on a compute worker.");
    put(&o, "bertserve_queue_depth %ld\n", m->queue_depth);
    put_header(&o, "bertserve_model_reloads_total", "counter", "Model reloads, by result.");
    put(&o, "bertserve_model_reloads_total{result=\"success\"} %llu\n", (unsigned long long)m->reloads_ok);
    put(&o, "bertserve_model_reloads_total{result=\"failure\"} %llu\n", (unsigned long long)m->reloads_failed);
    put_header(&o, "bertserve_model_reload_duration_seconds", "histogram",
               "Time to load, check and warm a model on reload, successful or not.");
    put_histogram(&o, "bertserve_model_reload_duration_seconds", "", &m->reload_seconds);
    put_header(&o, "bertserve_model_info", "gauge", "The model being served (always 1).");
    put(&o, "bertserve_model_info{model=");
    put_label_value(&o, m->model);
    put(&o, ",version=");
    put_label_value(&o, m->version);
    put(&o, ",precision=");
    put_label_value(&o, m->precision);
    put(&o, ",kernel=");
    put_label_value(&o, m->kernel);
    put(&o, ",model_version=");
    put_label_value(&o, m->current >= 0 ? m->series[m->current].version : "");
    put(&o, "} 1\n");
    double start = m->start_time;
    pthread_mutex_unlock(&m->lock);
    put_process(&o, start);
    if (o.oom) {
        buffer_free(&o.text);
        return NULL;
    }
    *len = o.text.len;
    return o.text.data;
}
