/* The recent-predictions table (prediction_table.h): lookups by (request id, index), the
 * window's eviction, bad indexes, one feedback per prediction under concurrent claims, and the
 * memory bound: 1,000,000 predictions with a feedback for a tenth leave the table's bytes what
 * they were at creation (128 bytes a prediction, as the README states) and allocate nothing. */
#include "check.h"
#include "server/prediction_table.h"

#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static struct prediction make(const char *id, int index, int n_texts, int predicted)
{
    struct prediction p = {.index = index, .n_texts = n_texts, .predicted = predicted, .confidence = 0.5f,
                           .series = {0, 1}};
    snprintf(p.request_id, sizeof p.request_id, "%s", id);
    return p;
}

static void test_lookup_and_window(void)
{
    prediction_table *t = prediction_table_create(4);
    CHECK(t, "create");
    struct prediction a0 = make("a", 0, 2, 1), a1 = make("a", 1, 2, 2), got;
    prediction_table_record(t, &a0);
    prediction_table_record(t, &a1);
    CHECK(prediction_table_find(t, "a", 1, &got) == PREDICTION_FOUND && got.predicted == 2 && got.actual == -1, "a[1]");
    CHECK(prediction_table_find(t, "a", 2, &got) == PREDICTION_BAD_INDEX && got.n_texts == 2, "a[2]: bad index");
    CHECK(prediction_table_find(t, "b", 0, &got) == PREDICTION_UNKNOWN, "b unknown");
    CHECK(prediction_table_find(t, "a", 0, &got) == PREDICTION_FOUND, "a[0]");
    CHECK(prediction_table_claim(t, &got, 0) && got.actual == 0, "first claim");
    struct prediction again;
    CHECK(prediction_table_find(t, "a", 0, &again) == PREDICTION_FOUND && !prediction_table_claim(t, &again, 2) &&
              again.actual == 0,
          "second claim: the first label stands");
    /* A reused id: the newest record answers. */
    struct prediction a0b = make("a", 0, 1, 2);
    prediction_table_record(t, &a0b);
    CHECK(prediction_table_find(t, "a", 0, &got) == PREDICTION_FOUND && got.predicted == 2 && got.actual == -1,
          "reused id: newest");
    /* Three more push out the first two records (capacity 4: a0b and the three stay). */
    for (int k = 0; k < 3; k++) {
        char id[16];
        snprintf(id, sizeof id, "f%d", k);
        struct prediction f = make(id, 0, 1, 0);
        prediction_table_record(t, &f);
    }
    /* a[1] is gone; "a" now names the newer, one-text request, so index 1 is a bad index. */
    CHECK(prediction_table_find(t, "a", 1, &got) == PREDICTION_BAD_INDEX && got.n_texts == 1, "a[1] evicted");
    CHECK(prediction_table_find(t, "a", 0, &got) == PREDICTION_FOUND && got.n_texts == 1, "the newer a[0] stays");
    CHECK(prediction_table_count(t) == 4, "count %d", prediction_table_count(t));
    /* A record found, then overwritten before its claim: gone, not claimed. */
    CHECK(prediction_table_find(t, "f0", 0, &got) == PREDICTION_FOUND, "f0");
    for (int k = 0; k < 4; k++) {
        struct prediction g = make("g", k, 4, 0);
        prediction_table_record(t, &g);
    }
    CHECK(!prediction_table_claim(t, &got, 1) && got.actual == -1, "claim of an overwritten record");
    prediction_table_free(t);
}

/* Eight threads claim the same prediction: exactly one wins. */
static prediction_table *shared_table;
static int wins;
static pthread_mutex_t wins_lock = PTHREAD_MUTEX_INITIALIZER;
static void *claimer(void *arg)
{
    struct prediction p;
    if (prediction_table_find(shared_table, "x", 0, &p) == PREDICTION_FOUND &&
        prediction_table_claim(shared_table, &p, (int)(long)arg % 3)) {
        pthread_mutex_lock(&wins_lock);
        wins++;
        pthread_mutex_unlock(&wins_lock);
    }
    return NULL;
}

static void test_one_claim_wins(void)
{
    shared_table = prediction_table_create(16);
    struct prediction x = make("x", 0, 1, 0);
    prediction_table_record(shared_table, &x);
    pthread_t th[8];
    for (long i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, claimer, (void *)i);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    CHECK(wins == 1, "%d claims won", wins);
    prediction_table_free(shared_table);
}

/* The default window (100,000) under 1,000,000 predictions, a feedback for every tenth. */
static void test_bound(void)
{
    enum { WINDOW = 100000, N = 1000000 };
    prediction_table *t = prediction_table_create(WINDOW);
    size_t bytes = prediction_table_bytes(t);
    printf("prediction table: %zu bytes for %d predictions (%.1f a prediction)\n", bytes, WINDOW,
           (double)bytes / WINDOW);
    CHECK(bytes <= (size_t)WINDOW * 128 + 4096, "%zu bytes, over the README's 128 a prediction", bytes);
    struct mallinfo2 before = mallinfo2();
    int claimed = 0;
    for (int i = 0; i < N; i++) {
        char id[24];
        snprintf(id, sizeof id, "%016x", (unsigned)i * 2654435761u);
        struct prediction p = make(id, i % 4, 4, i % 3);
        prediction_table_record(t, &p);
        struct prediction got;
        if (i % 10 == 0 && prediction_table_find(t, id, i % 4, &got) == PREDICTION_FOUND)
            claimed += prediction_table_claim(t, &got, (i + 1) % 3);
    }
    struct mallinfo2 after = mallinfo2();
    CHECK(claimed == N / 10, "%d feedbacks claimed", claimed);
    CHECK(after.uordblks == before.uordblks, "the table allocated %zd bytes while recording",
          (ssize_t)(after.uordblks - before.uordblks));
    CHECK(prediction_table_count(t) == WINDOW, "count %d", prediction_table_count(t));
    CHECK(prediction_table_bytes(t) == bytes, "bytes grew");
    /* The last WINDOW are found, the one before them is not. */
    int found = 0;
    for (int i = N - WINDOW - 1; i < N; i++) {
        char id[24];
        snprintf(id, sizeof id, "%016x", (unsigned)i * 2654435761u);
        struct prediction got;
        found += prediction_table_find(t, id, i % 4, &got) == PREDICTION_FOUND;
    }
    CHECK(found == WINDOW, "%d of the last %d found (and not the one before)", found, WINDOW);
    prediction_table_free(t);
}

int main(void)
{
    test_lookup_and_window();
    test_one_claim_wins();
    test_bound();
    return test_finish("test_prediction_table");
}
