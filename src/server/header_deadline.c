#include "server/header_deadline.h"

#include "common/bs_error.h"
#include "common/clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>

/* One connection: waiting for headers since `since`, unless a request is being served. */
struct watched {
    struct watched *prev, *next;
    int fd;
    double since;
    bool serving;
};

struct header_deadline {
    double seconds;
    pthread_mutex_t lock; /* guards the list and every entry */
    pthread_cond_t wake;
    bool stopping;
    struct watched *head;
    pthread_t thread;
};

/* Shuts down, under the lock, every connection past its deadline. An entry leaves the list
 * (header_deadline_remove) before libmicrohttpd closes its descriptor, so the descriptor shut
 * down here is always still that connection's, never a reused one. libmicrohttpd then sees the
 * connection end and closes it as if the client had left. */
static void *watchdog(void *arg)
{
    header_deadline *h = arg;
    pthread_mutex_lock(&h->lock);
    while (!h->stopping) {
        double now = monotonic_seconds();
        for (struct watched *w = h->head; w; w = w->next)
            if (!w->serving && now - w->since > h->seconds) {
                shutdown(w->fd, SHUT_RDWR);
                w->serving = true; /* once is enough: it is closing */
            }
        struct timespec until = monotonic_timespec(now + 0.25);
        pthread_cond_timedwait(&h->wake, &h->lock, &until);
    }
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

header_deadline *header_deadline_start(double seconds, char *err)
{
    header_deadline *h = calloc(1, sizeof *h);
    if (!h)
        return bs_fail(err, "out of memory"), NULL;
    h->seconds = seconds;
    pthread_mutex_init(&h->lock, NULL);
    monotonic_cond_init(&h->wake);
    if (pthread_create(&h->thread, NULL, watchdog, h)) {
        pthread_cond_destroy(&h->wake);
        pthread_mutex_destroy(&h->lock);
        free(h);
        return bs_fail(err, "cannot start the header deadline's thread"), NULL;
    }
    return h;
}

void header_deadline_stop(header_deadline *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    pthread_cond_signal(&h->wake);
    pthread_mutex_unlock(&h->lock);
    pthread_join(h->thread, NULL);
    while (h->head) {
        struct watched *w = h->head;
        h->head = w->next;
        free(w);
    }
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

void *header_deadline_add(header_deadline *h, int fd)
{
    struct watched *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = fd;
    w->since = monotonic_seconds();
    pthread_mutex_lock(&h->lock);
    w->next = h->head;
    if (h->head)
        h->head->prev = w;
    h->head = w;
    pthread_mutex_unlock(&h->lock);
    return w;
}

static void set_serving(header_deadline *h, struct watched *w, bool serving)
{
    if (!w)
        return;
    pthread_mutex_lock(&h->lock);
    w->serving = serving;
    w->since = monotonic_seconds();
    pthread_mutex_unlock(&h->lock);
}

void header_deadline_headers_in(header_deadline *h, void *token)
{
    set_serving(h, token, true);
}

void header_deadline_answered(header_deadline *h, void *token)
{
    set_serving(h, token, false);
}

void header_deadline_remove(header_deadline *h, void *token)
{
    struct watched *w = token;
    if (!w)
        return;
    pthread_mutex_lock(&h->lock);
    if (w->prev)
        w->prev->next = w->next;
    else
        h->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&h->lock);
    free(w);
}
