#define _GNU_SOURCE /* memrchr */
#include "server/prediction_log.h"

#include "common/bs_error.h"
#include "common/clock.h"
#include "common/json_text.h"
#include "server/logger.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Two buffers: callers append to `front` under the lock (a memcpy); the writer swaps it with
 * `back` and writes `back` without the lock, so a slow write() never holds up a caller. */
struct prediction_log {
    struct prediction_log_settings s;
    char *path;
    int fd;          /* -1 after an open failed (e.g. the directory is gone): retried per chunk */
    bool regular;    /* only a regular file is rotated or truncated (never /dev/full or a FIFO) */
    long size;       /* bytes in the current file */
    bool failing;    /* a failure was logged and writes have not succeeded since */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    char *front, *back;
    size_t front_len;
    bool stop;
    double stop_deadline; /* monotonic: a full pipe is waited for until then once stopping */
    pthread_t writer;
};

/* Logs a failure once per run of failures (a full disk fails every write: one line, not one
 * per chunk), and the recovery when a write succeeds again. */
static void note_state(prediction_log *l, bool ok, const char *what, int errnum)
{
    if (ok == !l->failing)
        return;
    l->failing = !ok;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "path", l->path);
    if (!ok) {
        cJSON_AddStringToObject(f, "error", what);
        cJSON_AddStringToObject(f, "reason", strerror(errnum));
        cJSON_AddStringToObject(f, "effect", "prediction log lines are dropped (bertserve_prediction_log_dropped_total)");
    }
    log_event(l->s.log_json, ok ? "prediction_log_recovered" : "prediction_log_failed", f);
}

static int open_file(prediction_log *l, bool truncate)
{
    /* O_NONBLOCK: a FIFO without a reader fails the open (ENXIO) instead of blocking, and a
     * reader that stops reading cannot hold the writer past shutdown (write_all). Regular files
     * ignore it. 0640: with --log-text the lines hold the users' texts; a log shipper reads
     * through the group. */
    int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK | (truncate ? O_TRUNC : 0), 0640);
    struct stat st;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    l->fd = fd;
    l->regular = S_ISREG(st.st_mode);
    l->size = l->regular ? (long)st.st_size : 0;
    return 0;
}

/* write() until n bytes are out; the bytes written, and errno when short. A pipe that is full
 * (its reader slower than the traffic) is waited for, on this thread only, until the log is
 * closing and SHUTDOWN_WAIT_SECONDS have passed. */
#define SHUTDOWN_WAIT_SECONDS 5.0
static size_t write_all(prediction_log *l, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(l->fd, p + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            if (w == 0)
                errno = EIO;
            return done;
        }
        pthread_mutex_lock(&l->mu);
        bool give_up = l->stop && monotonic_seconds() > l->stop_deadline;
        pthread_mutex_unlock(&l->mu);
        if (give_up) {
            errno = ETIMEDOUT;
            return done;
        }
        struct pollfd pfd = {.fd = l->fd, .events = POLLOUT};
        poll(&pfd, 1, 100);
    }
    return done;
}

/* FILE -> FILE.1 -> ... -> FILE.keep (the oldest falls off), then a new FILE. */
static void rotate(prediction_log *l)
{
    close(l->fd);
    l->fd = -1;
    size_t n = strlen(l->path) + 16;
    char *from = malloc(n), *to = malloc(n);
    if (from && to && l->s.keep > 0) {
        for (int i = l->s.keep - 1; i >= 1; i--) {
            snprintf(from, n, "%s.%d", l->path, i);
            snprintf(to, n, "%s.%d", l->path, i + 1);
            rename(from, to); /* ENOENT: fewer old files yet */
        }
        snprintf(to, n, "%s.1", l->path);
        rename(l->path, to);
    }
    free(from);
    free(to);
    if (open_file(l, l->s.keep == 0) < 0)
        note_state(l, false, "cannot open a new file after rotating", errno);
}

static long count_lines(const char *p, size_t n)
{
    long lines = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        lines++;
    return lines;
}

/* Writes n bytes of whole lines; returns the lines that reached the file. On an error, a line
 * cut short is cut off a regular file again, so the file holds whole lines only. */
static long write_lines(prediction_log *l, const char *p, size_t n)
{
    size_t done = write_all(l, p, n);
    if (done < n) {
        int e = errno;
        const char *last_nl = done ? memrchr(p, '\n', done) : NULL;
        size_t whole = last_nl ? (size_t)(last_nl - p) + 1 : 0;
        if (l->regular && whole < done && ftruncate(l->fd, l->size + (long)whole) == 0)
            done = whole;
        l->size += (long)done;
        note_state(l, false, e == ETIMEDOUT ? "the reader stopped reading: given up 5 s into the shutdown" : "cannot write",
                   e);
        return count_lines(p, whole);
    }
    l->size += (long)n;
    note_state(l, true, NULL, 0);
    return count_lines(p, n);
}

/* Writes a chunk of whole lines, rotating before a line that would pass max_bytes (a line
 * longer than max_bytes gets a file of its own). */
static void write_chunk(prediction_log *l, const char *p, size_t n)
{
    long written = 0, total = count_lines(p, n);
    if (l->fd < 0 && open_file(l, false) < 0)
        note_state(l, false, "cannot open", errno);
    size_t start = 0, pos = 0;
    while (l->fd >= 0 && pos < n) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - p) + 1 : n;
        bool full = l->regular && l->size + (long)(end - start) > l->s.max_bytes;
        if (full && l->size + (long)(pos - start) > 0) {
            written += write_lines(l, p + start, pos - start);
            start = pos;
            rotate(l);
            continue; /* this line again, into the new file */
        }
        pos = end;
    }
    if (l->fd >= 0 && start < n)
        written += write_lines(l, p + start, n - start);
    metrics_prediction_log(l->s.metrics, (uint64_t)written, (uint64_t)(total - written));
}

static void *writer_main(void *arg)
{
    prediction_log *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->front_len && !l->stop)
            pthread_cond_wait(&l->wake, &l->mu);
        if (!l->front_len)
            break; /* stopping, everything written */
        char *chunk = l->front;
        size_t n = l->front_len;
        l->front = l->back;
        l->back = chunk;
        l->front_len = 0;
        pthread_mutex_unlock(&l->mu);
        write_chunk(l, chunk, n);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

prediction_log *prediction_log_open(const struct prediction_log_settings *s, char *err)
{
    prediction_log *l = calloc(1, sizeof *l);
    if (!l)
        return bs_fail(err, "out of memory"), NULL;
    l->s = *s;
    l->fd = -1;
    l->path = strdup(s->path);
    l->front = malloc(s->buffer_bytes);
    l->back = malloc(s->buffer_bytes);
    if (!l->path || !l->front || !l->back) {
        bs_fail(err, "out of memory for the prediction log's buffers");
        goto fail;
    }
    if (open_file(l, false) < 0) {
        bs_fail(err, "cannot open --prediction-log %s: %s", s->path, strerror(errno));
        goto fail;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->wake, NULL);
    if (pthread_create(&l->writer, NULL, writer_main, l)) {
        bs_fail(err, "cannot start the prediction log's writer thread");
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->wake);
        close(l->fd);
        goto fail;
    }
    return l;
fail:
    free(l->path);
    free(l->front);
    free(l->back);
    free(l);
    return NULL;
}

int prediction_log_append(prediction_log *l, const char *line, size_t len)
{
    pthread_mutex_lock(&l->mu);
    bool fits = len <= l->s.buffer_bytes - l->front_len;
    if (fits) {
        memcpy(l->front + l->front_len, line, len);
        if (!l->front_len)
            pthread_cond_signal(&l->wake);
        l->front_len += len;
    }
    pthread_mutex_unlock(&l->mu);
    if (!fits)
        metrics_prediction_log(l->s.metrics, 0, 1);
    return fits ? 0 : -1;
}

/* {"time", "request_id", "index", "model_version", "label", "confidence", "scores", ("text")}.
 * With the queueing, 6.5-9.5 us per line on the request's thread (200,000 three-label lines in a
 * loop, machine shared), against milliseconds for a text's forward pass: cJSON is fast enough. */
static char *format_line(const struct prediction_log_entry *e)
{
    char ts[32];
    utc_timestamp(ts);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "time", ts);
    cJSON_AddStringToObject(o, "request_id", e->request_id);
    cJSON_AddNumberToObject(o, "index", e->index);
    cJSON_AddStringToObject(o, "model_version", e->model_version);
    cJSON_AddStringToObject(o, "label", e->labels[e->predicted]);
    cJSON_AddNumberToObject(o, "confidence", e->scores[e->predicted]);
    json_add_number_map(o, "scores", e->labels, e->scores, e->n_labels);
    if (e->text)
        cJSON_AddStringToObject(o, "text", e->text);
    if (e->text_pair)
        cJSON_AddStringToObject(o, "text_pair", e->text_pair);
    char *line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return line;
}

int prediction_log_record(prediction_log *l, const struct prediction_log_entry *e)
{
    char *line = format_line(e);
    if (!line) {
        metrics_prediction_log(l->s.metrics, 0, 1);
        return -1;
    }
    size_t len = strlen(line);
    line[len] = '\n'; /* over the NUL: the line is appended by length */
    int rc = prediction_log_append(l, line, len + 1);
    free(line);
    return rc;
}

void prediction_log_close(prediction_log *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    l->stop_deadline = monotonic_seconds() + SHUTDOWN_WAIT_SECONDS;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->writer, NULL);
    if (l->fd >= 0)
        close(l->fd);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->wake);
    free(l->path);
    free(l->front);
    free(l->back);
    free(l);
}
