/* A deadline for request headers. libmicrohttpd closes a connection only after --timeout-seconds
 * of silence, so a client that sends its request line one byte every half second is never idle
 * and holds its connection slot for good; enough of them and /health cannot get a connection,
 * the liveness probe fails and the pod is restarted. Here a connection whose next request's
 * headers are not complete within the deadline (counted from its opening or from its last
 * answer) is shut down. Knows nothing of HTTP: connections are file descriptors. */
#ifndef HEADER_DEADLINE_H
#define HEADER_DEADLINE_H

typedef struct header_deadline header_deadline;

/* Starts the watchdog thread (it looks every quarter second). NULL with err on failure. */
header_deadline *header_deadline_start(double seconds, char *err);
/* Stops the thread and frees what is left; every connection must have been removed. */
void header_deadline_stop(header_deadline *h);

/* A connection opened on fd; the returned token names it in the calls below (NULL when out of
 * memory: the connection then simply has no deadline). */
void *header_deadline_add(header_deadline *h, int fd);
/* Its request's headers are complete: no deadline while the request is served. */
void header_deadline_headers_in(header_deadline *h, void *token);
/* Its request was answered: the next request's headers are due within the deadline. */
void header_deadline_answered(header_deadline *h, void *token);
/* The connection closed, before its descriptor is (libmicrohttpd notifies first): forget it. */
void header_deadline_remove(header_deadline *h, void *token);

#endif
