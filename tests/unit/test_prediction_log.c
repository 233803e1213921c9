/* The prediction log's writer (server/prediction_log.c), without a daemon:
 *  - a reader slower than the traffic (a FIFO nobody reads, 64 KiB of pipe) fills the bounded
 *    buffer: appends past it are refused and counted as dropped, and no append waits on the
 *    writer (each well under 50 ms while the writer is blocked); once the reader reads, every
 *    accepted line arrives whole, in order, by the close, and lines_total + dropped_total
 *    account for every line;
 *  - rotation: with max_bytes 250 and keep 2, FILE, FILE.1 and FILE.2 hold the newest lines, two
 *    100-byte lines each, FILE.3 never exists; a line longer than max_bytes gets a file of its own;
 *    keep 0 empties FILE instead. */
#include "check.h"
#include "common/bs_error.h"
#include "common/clock.h"
#include "server/metrics.h"
#include "server/prediction_log.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE 100

static void make_line(char *out, int n)
{
    memset(out, 'x', LINE);
    int k = snprintf(out, LINE, "line %06d ", n);
    out[k] = 'x';
    out[LINE - 1] = '\n';
}

/* counter's value in the exposition, -1 if absent. */
static double counter(metrics *m, const char *name)
{
    size_t len;
    char *text = metrics_render(m, &len);
    double v = -1;
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = text ? strstr(text, key) : NULL;
    if (p)
        v = strtod(p + strlen(key), NULL);
    free(text);
    return v;
}

/* Metrics render with a model set (bertserve_model_info names it). */
static metrics *new_metrics(void)
{
    bert_config labels = {.n_labels = 2, .labels = {"up", "down"}};
    struct metrics_model_facts facts = {"models/x", "f32", "generic-f32", "v1"};
    struct metrics_series series;
    metrics *m = metrics_create("0");
    CHECK(m && metrics_set_model(m, &labels, &facts, &series) == 0, "metrics");
    return m;
}

struct reader {
    int fd;
    int lines, bad, last;
};

/* Reads the FIFO to EOF, checking each line is whole and follows the one before. */
static void *read_fifo(void *arg)
{
    struct reader *r = arg;
    fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) & ~O_NONBLOCK);
    char buf[LINE * 64], line[LINE];
    size_t have = 0;
    ssize_t n;
    r->last = -1;
    while ((n = read(r->fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            line[have++] = buf[i];
            if (have == LINE) {
                int num = -1;
                bool ok = line[LINE - 1] == '\n' && sscanf(line, "line %d ", &num) == 1 && num > r->last;
                r->bad += !ok;
                r->last = num;
                r->lines++;
                have = 0;
            }
        }
    }
    r->bad += have != 0;
    return NULL;
}

static void test_slow_reader(const char *dir)
{
    char fifo[512];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    struct reader r = {.fd = open(fifo, O_RDONLY | O_NONBLOCK)};
    metrics *m = new_metrics();
    char err[BS_ERR_LEN];
    struct prediction_log_settings s = {fifo, 1 << 20, 1, 4096, false, m};
    prediction_log *l = prediction_log_open(&s, err);
    CHECK(l != NULL, "open: %s", err);
    if (!l)
        return;
    /* 2000 lines of 100 bytes: three times what the pipe (64 KiB) and both buffers hold. */
    int accepted = 0, refused = 0;
    double worst = 0;
    for (int i = 0; i < 2000; i++) {
        char line[LINE];
        make_line(line, i);
        double t0 = monotonic_seconds();
        int rc = prediction_log_append(l, line, LINE);
        double dt = monotonic_seconds() - t0;
        worst = dt > worst ? dt : worst;
        accepted += rc == 0;
        refused += rc != 0;
    }
    CHECK(refused > 0, "a full buffer refuses lines (accepted %d)", accepted);
    CHECK(worst < 0.05, "an append never waits on the writer: the slowest took %.3f s", worst);
    CHECK(counter(m, "bertserve_prediction_log_dropped_total") == refused, "every refused line counted: %.0f of %d",
          counter(m, "bertserve_prediction_log_dropped_total"), refused);
    pthread_t t;
    pthread_create(&t, NULL, read_fifo, &r);
    prediction_log_close(l); /* writes the rest as the reader reads, then closes: EOF */
    pthread_join(t, NULL);
    close(r.fd);
    CHECK(r.lines == accepted && r.bad == 0, "every accepted line arrived whole and in order: %d of %d, %d bad",
          r.lines, accepted, r.bad);
    CHECK(counter(m, "bertserve_prediction_log_lines_total") == accepted, "lines_total %.0f, accepted %d",
          counter(m, "bertserve_prediction_log_lines_total"), accepted);
    metrics_free(m);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* The first line's number in path, -1 if none. */
static int first_line(const char *path)
{
    FILE *f = fopen(path, "r");
    int n = -1;
    if (f && fscanf(f, "line %d", &n) != 1)
        n = -1;
    if (f)
        fclose(f);
    return n;
}

static void test_rotation(const char *dir, int keep)
{
    char path[512], old[600];
    snprintf(path, sizeof path, "%s/rot%d.log", dir, keep);
    metrics *m = new_metrics();
    char err[BS_ERR_LEN];
    struct prediction_log_settings s = {path, 250, keep, 1 << 16, false, m};
    prediction_log *l = prediction_log_open(&s, err);
    CHECK(l != NULL, "open: %s", err);
    if (!l)
        return;
    for (int i = 0; i < 10; i++) {
        char line[LINE];
        make_line(line, i);
        CHECK(prediction_log_append(l, line, LINE) == 0, "append %d", i);
    }
    prediction_log_close(l);
    CHECK(counter(m, "bertserve_prediction_log_lines_total") == 10, "10 lines written");
    metrics_free(m);
    CHECK(file_size(path) == 2 * LINE && first_line(path) == 8, "FILE holds lines 8 and 9: %ld bytes from %d",
          file_size(path), first_line(path));
    for (int k = 1; k <= keep; k++) {
        snprintf(old, sizeof old, "%s.%d", path, k);
        CHECK(file_size(old) == 2 * LINE && first_line(old) == 8 - 2 * k, "%s: %ld bytes from line %d", old,
              file_size(old), first_line(old));
    }
    snprintf(old, sizeof old, "%s.%d", path, keep + 1);
    CHECK(file_size(old) == -1, "%s does not exist", old);
}

static void test_long_line(const char *dir)
{
    char path[512], old[600];
    snprintf(path, sizeof path, "%s/long.log", dir);
    metrics *m = new_metrics();
    char err[BS_ERR_LEN];
    struct prediction_log_settings s = {path, 250, 3, 1 << 16, false, m};
    prediction_log *l = prediction_log_open(&s, err);
    CHECK(l != NULL, "open: %s", err);
    if (!l)
        return;
    char line[LINE], big[400];
    make_line(line, 0);
    prediction_log_append(l, line, LINE);
    memset(big, 'y', sizeof big);
    big[sizeof big - 1] = '\n';
    prediction_log_append(l, big, sizeof big);
    make_line(line, 2);
    prediction_log_append(l, line, LINE);
    prediction_log_close(l);
    metrics_free(m);
    snprintf(old, sizeof old, "%s.1", path);
    CHECK(file_size(old) == (long)sizeof big, "the long line alone in FILE.1: %ld", file_size(old));
    CHECK(file_size(path) == LINE && first_line(path) == 2, "the next line in a new FILE");
}

int main(void)
{
    char dir[] = "/tmp/test_prediction_log_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    test_slow_reader(dir);
    test_rotation(dir, 2);
    test_rotation(dir, 0);
    test_long_line(dir);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "rm -rf %s", dir);
    return test_finish("test_prediction_log");
}
