#include "server/prediction_table.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A ring slot: the record, and its link in its hash bucket's chain (slot numbers, -1 ends). */
struct slot {
    struct prediction p;
    uint32_t hash;
    int32_t next;
};

struct prediction_table {
    pthread_mutex_t lock;
    struct slot *slots;
    int32_t *buckets; /* chain heads, -1: empty; a power of two >= capacity, so chains average < 1 */
    uint32_t mask;
    int capacity;
    uint64_t recorded; /* predictions recorded so far: the next one goes to slot recorded % capacity */
};

prediction_table *prediction_table_create(int capacity)
{
    if (capacity < 1)
        return NULL;
    prediction_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    uint32_t nb = 1;
    while (nb < (uint32_t)capacity)
        nb <<= 1;
    t->capacity = capacity;
    t->mask = nb - 1;
    t->slots = calloc((size_t)capacity, sizeof *t->slots);
    t->buckets = malloc((size_t)nb * sizeof *t->buckets);
    if (!t->slots || !t->buckets) {
        prediction_table_free(t);
        return NULL;
    }
    memset(t->buckets, 0xff, (size_t)nb * sizeof *t->buckets); /* every head -1 */
    /* Written now, so every page is resident from the start: the window's 12.5 MB shows in RSS
     * at startup rather than creeping up as the ring first fills (which would read as a leak,
     * and reach a pod's memory limit hours after it started). */
    for (int i = 0; i < capacity; i++)
        t->slots[i].next = -1;
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void prediction_table_free(prediction_table *t)
{
    if (!t)
        return;
    if (t->slots && t->buckets)
        pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t->buckets);
    free(t);
}

size_t prediction_table_bytes(const prediction_table *t)
{
    return sizeof *t + (size_t)t->capacity * sizeof *t->slots + ((size_t)t->mask + 1) * sizeof *t->buckets;
}

/* FNV-1a over the id's bytes and the index's. */
static uint32_t key_hash(const char *id, int index)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)id; *s; s++)
        h = (h ^ *s) * 16777619u;
    for (int k = 0; k < 4; k++)
        h = (h ^ (((uint32_t)index >> (8 * k)) & 0xff)) * 16777619u;
    return h;
}

/* Under the lock: removes slot i from its bucket's chain. */
static void unlink_slot(prediction_table *t, int32_t i)
{
    int32_t *link = &t->buckets[t->slots[i].hash & t->mask];
    while (*link >= 0 && *link != i)
        link = &t->slots[*link].next;
    if (*link == i)
        *link = t->slots[i].next;
}

void prediction_table_record(prediction_table *t, const struct prediction *p)
{
    uint32_t h = key_hash(p->request_id, p->index);
    pthread_mutex_lock(&t->lock);
    int32_t i = (int32_t)(t->recorded % (uint64_t)t->capacity);
    if (t->recorded >= (uint64_t)t->capacity) /* the ring is full: the oldest record goes */
        unlink_slot(t, i);
    struct slot *s = &t->slots[i];
    s->p = *p;
    s->p.actual = -1;
    s->p.seq = ++t->recorded;
    s->hash = h;
    int32_t *head = &t->buckets[h & t->mask];
    s->next = *head; /* at the head: the newest record of a key is found first */
    *head = i;
    pthread_mutex_unlock(&t->lock);
}

/* Under the lock: the newest slot holding (id, index), or -1. */
static int32_t find_slot(const prediction_table *t, const char *id, int index)
{
    uint32_t h = key_hash(id, index);
    for (int32_t i = t->buckets[h & t->mask]; i >= 0; i = t->slots[i].next) {
        const struct slot *s = &t->slots[i];
        if (s->hash == h && s->p.index == index && !strcmp(s->p.request_id, id))
            return i;
    }
    return -1;
}

enum prediction_lookup prediction_table_find(prediction_table *t, const char *request_id, int index,
                                             struct prediction *out)
{
    enum prediction_lookup r = PREDICTION_UNKNOWN;
    pthread_mutex_lock(&t->lock);
    int32_t i = find_slot(t, request_id, index);
    if (i >= 0) {
        *out = t->slots[i].p;
        r = PREDICTION_FOUND;
    } else if (index > 0 && (i = find_slot(t, request_id, 0)) >= 0 && index >= t->slots[i].p.n_texts) {
        *out = t->slots[i].p; /* the request's first text: says how many texts it had */
        r = PREDICTION_BAD_INDEX;
    }
    pthread_mutex_unlock(&t->lock);
    return r;
}

bool prediction_table_claim(prediction_table *t, struct prediction *p, int actual)
{
    bool claimed = false;
    pthread_mutex_lock(&t->lock);
    int32_t i = find_slot(t, p->request_id, p->index);
    if (i >= 0 && t->slots[i].p.seq == p->seq) {
        struct prediction *r = &t->slots[i].p;
        if (r->actual < 0) {
            r->actual = actual;
            claimed = true;
        }
        *p = *r;
    }
    pthread_mutex_unlock(&t->lock);
    return claimed;
}

int prediction_table_count(prediction_table *t)
{
    pthread_mutex_lock(&t->lock);
    int n = t->recorded < (uint64_t)t->capacity ? (int)t->recorded : t->capacity;
    pthread_mutex_unlock(&t->lock);
    return n;
}
