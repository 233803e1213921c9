/* The one clock of the project: CLOCK_MONOTONIC, for every job, request, deadline and benchmark
 * timing (wall-clock time only ever appears in log timestamps). */
#ifndef CLOCK_H
#define CLOCK_H

/* Seconds since an arbitrary fixed point; never jumps with the wall clock. */
double monotonic_seconds(void);

#endif
