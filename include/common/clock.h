/* The one clock of the project: CLOCK_MONOTONIC, for every job, request, deadline and benchmark
 * timing (wall-clock time only ever appears as a timestamp: the log's, when a model was loaded). */
#ifndef CLOCK_H
#define CLOCK_H

#include <pthread.h>
#include <time.h>

/* Seconds since an arbitrary fixed point; never jumps with the wall clock. */
double monotonic_seconds(void);

/* A condition variable whose timed waits are on this clock; 0, or an errno value. */
int monotonic_cond_init(pthread_cond_t *cond);
/* The deadline pthread_cond_timedwait takes on such a condition variable, for the instant
 * `seconds` of monotonic_seconds. */
struct timespec monotonic_timespec(double seconds);

/* Sorts n > 0 timings in place, fastest first, and returns their median (benchmarks). */
double timings_median(double *t, int n);

/* The wall-clock time now as ISO 8601 UTC with milliseconds, "2026-12-04T20:35:34.553Z". */
void utc_timestamp(char out[32]);

#endif
