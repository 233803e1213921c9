/* The prediction log (--prediction-log FILE, issue 21): one JSON line per prediction, written
 * off the request path. Callers copy their line into a bounded buffer and return at once; a
 * writer thread writes the buffer to FILE, rotating it by size. When the buffer is full (the
 * disk slower than the traffic) or a write fails, lines are dropped and counted
 * (bertserve_prediction_log_dropped_total): a request never waits on the disk. */
#ifndef PREDICTION_LOG_H
#define PREDICTION_LOG_H

#include "server/metrics.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct prediction_log prediction_log;

/* The daemon's buffer: 4 MiB, about 16,000 lines of finsent-mini (~250 bytes each), so the
 * disk may stall for 5 s at 3,000 predictions/s before a line is dropped; it is held twice
 * (the writer writes one while callers fill the other), and pages never used cost no RSS. */
#define PREDICTION_LOG_BUFFER_BYTES (4u << 20)

struct prediction_log_settings {
    const char *path;
    long max_bytes;      /* rotate before a line would take FILE past this (regular files only) */
    int keep;            /* old files kept: FILE.1 (newest) ... FILE.keep; 0: FILE is truncated */
    size_t buffer_bytes; /* lines waiting for the writer, at most */
    bool log_json;       /* the daemon's --log-format, for the write-failure events */
    metrics *metrics;    /* counts lines written and dropped */
};

/* Opens (creates, appends to) the file and starts the writer. A FIFO with no reader fails
 * rather than blocking startup. NULL with err naming the file. */
prediction_log *prediction_log_open(const struct prediction_log_settings *s, char *err);

/* One prediction, as its line holds it. text (and text_pair, for a sentence pair) are NULL
 * unless --log-text. */
struct prediction_log_entry {
    const char *request_id, *model_version;
    int index;
    char *const *labels;
    const float *scores; /* per label */
    int n_labels, predicted;
    const char *text, *text_pair;
};

/* Formats the entry's line and queues it; never blocks on the writer. -1 if the line was
 * dropped (buffer full, out of memory), and counted. */
int prediction_log_record(prediction_log *l, const struct prediction_log_entry *e);

/* Queues one line (len bytes, ending in '\n'); as prediction_log_record. */
int prediction_log_append(prediction_log *l, const char *line, size_t len);

/* Writes what the buffer holds, stops the writer and closes the file. NULL is fine. */
void prediction_log_close(prediction_log *l);

#endif
