/* The batcher (server/batcher.c) on its own, with no sockets, over tiny-bert: FIFO order by
 * text across jobs; a job split over several batches (by the text cap and by the token budget)
 * with the logits each text gets alone; the text cap and the token budget; a text longer than
 * the budget running alone; the wait rule after a batch of several texts; jobs for two models
 * (finsent-mini beside tiny-bert) never sharing a batch; and stop failing the queued work (done
 * exactly once per job, status -1 and a message) with the admission limit.
 *
 * Determinism: a gate in on_batch holds the worker inside a batch while the test queues jobs
 * behind it, so every later batch is taken from a queue whose contents are known, and its
 * texts and tokens can be predicted exactly. Nothing depends on timing except the wait rule,
 * whose time bounds are either guaranteed by the code (a lower bound on how long a batch
 * waited) or ten seconds wide against a wait of twenty. */
#include "check.h"
#include "common/bs_error.h"
#include "common/fileio.h"
#include "engine/bert.h"
#include "engine/model.h"
#include "server/batcher.h"
#include "text/tokenizer.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* test_model_golden's tolerance for tiny-bert (the README says packed batches are in fact
 * bit-identical to single texts; the tolerance only spares the test from relying on it). */
#define LOGIT_TOL 1e-5f
/* How long the test waits for a callback before it calls the batcher hung. */
#define HANG_SECONDS 60.0
/* A wait the code would have to sit through in full if it waited when it should not: long
 * enough that a loaded machine never takes as long to do the work, so an upper bound of
 * SLOW_SECONDS separates "did not wait" from "waited" without flaking. */
#define LONG_WAIT 20.0
#define SLOW_SECONDS 10.0

#define MAX_BATCHES 64

static bert_model *model, *other_model; /* tiny-bert; finsent-mini (the same vocabulary) */
static tokenizer *tok;
static bert_scratch ref_scratch = {.n_threads = 1};
static pthread_t main_thread;

/* Each a single WordPiece token of tiny-bert's (bert-base-uncased) vocabulary, so a text of n
 * words is n + 2 tokens with [CLS] and [SEP] (checked when encoding). */
static const char *WORDS[] = {"the",    "market", "rose", "bank",   "profit", "fell",  "shares",  "company",
                              "sales",  "year",   "growth", "loss", "price",  "stock", "quarter", "net"};
#define N_WORDS (int)(sizeof WORDS / sizeof WORDS[0])

struct tjob {
    struct job job;
    const char *name;
    float *want;          /* each text's logits from a bert_forward of that text alone */
    int done_calls;       /* how many times done ran: must end at exactly 1 */
    int done_rank;        /* position in the order jobs finished */
    bool done_on_main;    /* done ran on the test's own thread (the one that stops the pool) */
    char err_at_done[BS_ERR_LEN];
    int status_at_done;
    void (*hook)(struct tjob *); /* run by done, outside the tracker's lock */
};

/* What the callbacks saw, under one lock: how many jobs finished, and each batch's size. The gate: permits is how many more batches may leave on_batch (-1: any);
 * held counts the workers waiting in it. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n_done;
    int batch_texts[MAX_BATCHES], batch_tokens[MAX_BATCHES];
    int n_batches;
    int permits, held;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER, .permits = -1};

static void fatal(const char *what)
{
    fprintf(stderr, "FAIL: %s\n", what);
    exit(1);
}

static void tracker_reset(void)
{
    pthread_mutex_lock(&T.mu);
    T.n_done = T.n_batches = T.held = 0;
    T.permits = -1;
    pthread_mutex_unlock(&T.mu);
}

/* Under T.mu: waits for pred, failing the whole test on a hang rather than leaving it to the
 * ctest timeout (a job's memory cannot be freed while the pool may still touch it). */
static void wait_for(bool (*pred)(int), int arg, const char *what)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)HANG_SECONDS;
    while (!pred(arg))
        if (pthread_cond_timedwait(&T.cv, &T.mu, &deadline) != 0 && !pred(arg)) {
            fprintf(stderr, "FAIL: no progress in %.0f s waiting for %s (%d done, %d batches)\n",
                    HANG_SECONDS, what, T.n_done, T.n_batches);
            exit(1);
        }
}

static bool done_at_least(int n) { return T.n_done >= n; }
static bool held_at_batch(int n) { return T.n_batches >= n && T.held == 1; }

static void wait_done(int n)
{
    pthread_mutex_lock(&T.mu);
    wait_for(done_at_least, n, "jobs to finish");
    pthread_mutex_unlock(&T.mu);
}

/* Waits until the single worker is held inside its n-th batch. */
static void wait_held(int n)
{
    pthread_mutex_lock(&T.mu);
    wait_for(held_at_batch, n, "a batch to reach the gate");
    pthread_mutex_unlock(&T.mu);
}

static void gate_set(int permits)
{
    pthread_mutex_lock(&T.mu);
    T.permits = permits;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
}

static void on_batch(void *arg, int n_texts, int n_tokens, double seconds)
{
    (void)arg;
    (void)seconds;
    pthread_mutex_lock(&T.mu);
    if (T.n_batches < MAX_BATCHES) {
        T.batch_texts[T.n_batches] = n_texts;
        T.batch_tokens[T.n_batches] = n_tokens;
    }
    T.n_batches++;
    T.held++;
    pthread_cond_broadcast(&T.cv);
    while (T.permits == 0)
        pthread_cond_wait(&T.cv, &T.mu);
    if (T.permits > 0)
        T.permits--;
    T.held--;
    pthread_mutex_unlock(&T.mu);
}

static void on_done(struct job *j, void *arg)
{
    struct tjob *t = arg;
    CHECK(j == &t->job, "%s: done got another job", t->name);
    pthread_mutex_lock(&T.mu);
    t->done_calls++;
    t->done_rank = T.n_done;
    t->done_on_main = pthread_equal(pthread_self(), main_thread);
    t->status_at_done = j->status;
    memcpy(t->err_at_done, j->err, sizeof t->err_at_done);
    T.n_done++;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
    /* Outside the lock: a hook may enqueue, and a job enqueued while stopping is done at once,
     * on this same thread. */
    if (t->hook)
        t->hook(t);
}

/* A job of n texts of lens[i] tokens each for model m. Every text in the test differs (serial),
 * so rows that went back to the wrong place would show in the logits. */
static void job_init_for(struct tjob *t, const bert_model *m, const char *name, int n, const int *lens)
{
    static int serial;
    memset(t, 0, sizeof *t);
    t->name = name;
    t->job.model = m;
    int L = m->cfg.n_labels;
    t->job.n_seqs = n;
    t->job.lens = calloc((size_t)n, sizeof *t->job.lens);
    t->job.logits = calloc((size_t)n * L, sizeof *t->job.logits);
    t->want = calloc((size_t)n * L, sizeof *t->want);
    t->job.done = on_done;
    t->job.arg = t;
    if (!t->job.lens || !t->job.logits || !t->want)
        fatal("out of memory");
    encoding e = {0};
    char text[2048], err[BS_ERR_LEN];
    for (int i = 0; i < n; i++) {
        int s = ++serial;
        size_t used = 0;
        text[0] = '\0';
        for (int w = 0; w < lens[i] - 2; w++)
            used += (size_t)snprintf(text + used, sizeof text - used, "%s%s", w ? " " : "",
                                     WORDS[(s * 5 + w * (s % 7 + 1) + w * w) % N_WORDS]);
        if (tokenizer_encode(tok, text, used, NULL, 0, 0, &e, err))
            fatal(err);
        CHECK(e.n == lens[i], "%s text %d: %d tokens, want %d", name, i, e.n, lens[i]);
        if (packed_tokens_append(&t->job.tokens, &e))
            fatal("out of memory");
        t->job.lens[i] = e.n;
        bert_batch one = {.ids = e.ids, .type_ids = e.type_ids, .lens = &e.n, .n_seqs = 1};
        if (bert_forward(m, &one, t->want + (size_t)i * L, &ref_scratch, err))
            fatal(err);
    }
    encoding_free(&e);
}

static void job_init(struct tjob *t, const char *name, int n, const int *lens)
{
    job_init_for(t, model, name, n, lens);
}

static void job_free(struct tjob *t)
{
    packed_tokens_free(&t->job.tokens);
    free(t->job.lens);
    free(t->job.logits);
    free(t->want);
}

/* The job finished once, with status 0 and every text's logits as if it had run alone. */
static void check_ok(const struct tjob *t)
{
    CHECK(t->done_calls == 1, "%s: done called %d times", t->name, t->done_calls);
    CHECK(t->status_at_done == 0, "%s: status %d (%s)", t->name, t->status_at_done, t->err_at_done);
    int L = t->job.model->cfg.n_labels;
    float worst = 0;
    for (int i = 0; i < t->job.n_seqs * L; i++)
        worst = fmaxf(worst, fabsf(t->job.logits[i] - t->want[i]));
    CHECK(worst <= LOGIT_TOL, "%s: |logit - the text alone| = %.3g", t->name, worst);
    CHECK(t->job.t_queued <= t->job.t_started && t->job.t_started <= t->job.t_finished,
          "%s: queued %.6f, started %.6f, finished %.6f", t->name, t->job.t_queued, t->job.t_started,
          t->job.t_finished);
}

static batcher *start(int workers, int max_jobs, int max_tokens, int max_texts, double wait)
{
    struct batcher_settings s = {.n_workers = workers,
                                 .threads_per_worker = 1,
                                 .max_jobs = max_jobs,
                                 .max_batch_tokens = max_tokens,
                                 .max_batch_texts = max_texts,
                                 .max_wait_seconds = wait,
                                 .on_batch = on_batch};
    char err[BS_ERR_LEN];
    tracker_reset();
    batcher *p = batcher_start(&s, err);
    if (!p)
        fatal(err);
    return p;
}

static void submit(batcher *p, struct tjob *t)
{
    bool ok = batcher_reserve(p);
    CHECK(ok, "%s: no slot", t->name);
    if (ok)
        batcher_enqueue(p, &t->job);
}

/* Submits plug and holds the single worker inside plug's batch (its n-th), so that whatever
 * is submitted next is all queued before the worker takes any of it. */
static void hold_with(batcher *p, struct tjob *plug, int n)
{
    gate_set(0);
    submit(p, plug);
    wait_held(n);
}

/* The batches seen from first on are exactly want (texts, tokens pairs). */
static void check_batches(const char *what, int first, const int (*want)[2], int n_want)
{
    pthread_mutex_lock(&T.mu);
    int n = T.n_batches - first;
    CHECK(n == n_want, "%s: %d batches, want %d", what, n, n_want);
    for (int i = 0; i < n && i < n_want && first + i < MAX_BATCHES; i++)
        CHECK(T.batch_texts[first + i] == want[i][0] && T.batch_tokens[first + i] == want[i][1],
              "%s: batch %d has %d texts of %d tokens, want %d of %d", what, i, T.batch_texts[first + i],
              T.batch_tokens[first + i], want[i][0], want[i][1]);
    pthread_mutex_unlock(&T.mu);
}

static void sleep_seconds(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* 1. FIFO by text across jobs. Behind the plug: A (3 texts of 5, 6, 7 tokens), B (8, 9), C (10,
 * 11), two texts a batch. Taken text by text in arrival order the batches are 5+6, 7+8, 9+10,
 * 11: no other order gives those token counts. Each job then finishes in a batch of its own
 * (jobs finished by the same batch are handed back in no promised order), so they finish in
 * order, and each starts after the one before it. */
static void test_fifo(void)
{
    batcher *p = start(1, 16, 1024, 2, 0);
    struct tjob plug, a, b, c;
    job_init(&plug, "fifo plug", 1, (int[]){5});
    job_init(&a, "A", 3, (int[]){5, 6, 7});
    job_init(&b, "B", 2, (int[]){8, 9});
    job_init(&c, "C", 2, (int[]){10, 11});
    hold_with(p, &plug, 1);
    submit(p, &a);
    submit(p, &b);
    submit(p, &c);
    gate_set(-1);
    wait_done(4);
    batcher_stop(p);

    static const int want[][2] = {{1, 5}, {2, 11}, {2, 15}, {2, 19}, {1, 11}};
    check_batches("fifo", 0, want, 5);
    struct tjob *order[] = {&plug, &a, &b, &c};
    for (int i = 0; i < 4; i++) {
        check_ok(order[i]);
        CHECK(order[i]->done_rank == i, "fifo: %s finished at rank %d, want %d", order[i]->name,
              order[i]->done_rank, i);
    }
    /* One worker: A's first text is taken only once the plug's batch is over, and each job's
     * first text is taken after the previous job's (in a later batch, so strictly later). */
    CHECK(plug.job.t_finished <= a.job.t_started, "fifo: A started before the plug finished");
    CHECK(a.job.t_started < b.job.t_started && b.job.t_started < c.job.t_started,
          "fifo: started A %.6f, B %.6f, C %.6f", a.job.t_started, b.job.t_started, c.job.t_started);
    CHECK(a.job.t_finished < b.job.t_finished && b.job.t_finished < c.job.t_finished,
          "fifo: finished A %.6f, B %.6f, C %.6f", a.job.t_finished, b.job.t_finished, c.job.t_finished);
    for (int i = 0; i < 4; i++)
        job_free(order[i]);
}

/* 2. A job split over several batches finishes once, with each text's own logits. By the text
 * cap: 7 texts, 3 a batch, over two workers (so its rows come back from both); by the token
 * budget: 4 texts of 10 tokens under a budget of 25. */
static void test_split(void)
{
    batcher *p = start(2, 16, 1024, 3, 0);
    struct tjob s;
    job_init(&s, "split by texts", 7, (int[]){5, 6, 7, 8, 9, 10, 11});
    /* Distinct reference rows, so that a row landing in the wrong place cannot go unnoticed. */
    int L = model->cfg.n_labels;
    for (int i = 0; i < 7; i++)
        for (int k = i + 1; k < 7; k++)
            CHECK(memcmp(s.want + (size_t)i * L, s.want + (size_t)k * L, (size_t)L * sizeof *s.want),
                  "split: texts %d and %d have the same logits", i, k);
    submit(p, &s);
    wait_done(1);
    batcher_stop(p);
    check_ok(&s);
    /* The whole job was queued at once (under the lock), so whichever worker takes them the
     * batches hold 3, 3 and 1 texts; their order between the workers is free. */
    int count[4] = {0}, texts = 0, tokens = 0;
    for (int i = 0; i < T.n_batches && i < MAX_BATCHES; i++) {
        if (T.batch_texts[i] >= 1 && T.batch_texts[i] <= 3)
            count[T.batch_texts[i]]++;
        texts += T.batch_texts[i];
        tokens += T.batch_tokens[i];
    }
    CHECK(T.n_batches == 3 && count[3] == 2 && count[1] == 1, "split: %d batches (%d of 3 texts, %d of 1)",
          T.n_batches, count[3], count[1]);
    CHECK(texts == 7 && tokens == 56, "split: %d texts and %d tokens in batches, want 7 and 56", texts, tokens);
    job_free(&s);

    p = start(1, 16, 25, 64, 0);
    job_init(&s, "split by tokens", 4, (int[]){10, 10, 10, 10});
    submit(p, &s);
    wait_done(1);
    batcher_stop(p);
    check_ok(&s);
    static const int want[][2] = {{2, 20}, {2, 20}};
    check_batches("split by tokens", 0, want, 2);
    job_free(&s);
}

/* 3. The text cap and the token budget. Behind the plug, texts of 12 12 12 12 | 30 5 | 20 20 3 |
 * 7 | 35 4 4 tokens under 3 texts and 40 tokens a batch: the cap cuts the first batch, the
 * budget the others (40 itself fits: a batch stops before the next text would pass it). Then
 * with max_batch_texts 1 (--max-batch-requests 1) each text is a batch of its own. */
static void test_budgets(void)
{
    static const int lens[5][4] = {{12, 12, 12, 12}, {30, 5}, {20, 20, 3}, {7}, {35, 4, 4}};
    static const int n_lens[5] = {4, 2, 3, 1, 3};
    static const char *names[5] = {"budget J1", "budget J2", "budget J3", "budget J4", "budget J5"};
    for (int cap = 3; cap >= 1; cap -= 2) {
        batcher *p = start(1, 16, 40, cap, 0);
        struct tjob plug, j[5];
        job_init(&plug, "budget plug", 1, (int[]){6});
        for (int i = 0; i < 5; i++)
            job_init(&j[i], names[i], n_lens[i], lens[i]);
        hold_with(p, &plug, 1);
        for (int i = 0; i < 5; i++)
            submit(p, &j[i]);
        gate_set(-1);
        wait_done(6);
        batcher_stop(p);

        check_ok(&plug);
        for (int i = 0; i < 5; i++)
            check_ok(&j[i]);
        int texts = 0, three = 0, budget_cut = 0;
        for (int i = 0; i < T.n_batches && i < MAX_BATCHES; i++) {
            int n = T.batch_texts[i], t = T.batch_tokens[i];
            CHECK(n >= 1 && n <= cap, "cap %d: batch %d has %d texts", cap, i, n);
            CHECK(t <= 40 || n == 1, "cap %d: batch %d has %d texts of %d tokens > 40", cap, i, n, t);
            texts += n;
            three += n == 3;
            budget_cut += n > 1 && n < cap;
        }
        CHECK(texts == 14, "cap %d: %d texts in batches, want 14", cap, texts);
        if (cap == 3) {
            static const int want[][2] = {{1, 6}, {3, 36}, {1, 12}, {2, 35}, {2, 40}, {2, 10}, {2, 39}, {1, 4}};
            check_batches("cap 3, budget 40", 0, want, 8);
            /* The bounds above were tested against both limits, not vacuously. */
            CHECK(three == 1 && budget_cut == 4, "cap 3: %d full batches, %d cut by the budget", three, budget_cut);
        } else {
            static const int want[][2] = {{1, 6},  {1, 12}, {1, 12}, {1, 12}, {1, 12}, {1, 30}, {1, 5},
                                          {1, 20}, {1, 20}, {1, 3},  {1, 7},  {1, 35}, {1, 4},  {1, 4}};
            check_batches("cap 1", 0, want, 14);
        }
        job_free(&plug);
        for (int i = 0; i < 5; i++)
            job_free(&j[i]);
    }
}

/* 4. A text longer than the token budget runs alone, and correctly: behind the plug, 10 | 100 |
 * 10 10 tokens under a budget of 40. The 100-token text does not fit after the first text, so
 * that one runs alone; it then is the first of its own batch (the first always fits), and the
 * next text would pass the budget. */
static void test_long_text(void)
{
    batcher *p = start(1, 16, 40, 8, 0);
    struct tjob plug, s1, lng, s2;
    job_init(&plug, "long plug", 1, (int[]){5});
    job_init(&s1, "short before", 1, (int[]){10});
    job_init(&lng, "long text", 1, (int[]){100});
    job_init(&s2, "short after", 2, (int[]){10, 10});
    hold_with(p, &plug, 1);
    submit(p, &s1);
    submit(p, &lng);
    submit(p, &s2);
    gate_set(-1);
    wait_done(4);
    batcher_stop(p);
    static const int want[][2] = {{1, 5}, {1, 10}, {1, 100}, {2, 20}};
    check_batches("long text", 0, want, 4);
    check_ok(&plug);
    check_ok(&s1);
    check_ok(&lng);
    check_ok(&s2);
    job_free(&plug);
    job_free(&s1);
    job_free(&lng);
    job_free(&s2);
}

/* Leaves a pool whose last batch held two texts, X and Y, both answered and nothing queued:
 * from then on should_wait expects two texts back. Returns the batches seen so far. */
static int two_text_batch(batcher *p, struct tjob *plug, struct tjob *x, struct tjob *y, int done_before)
{
    job_init(plug, "wait plug", 1, (int[]){5});
    job_init(x, "X", 1, (int[]){6});
    job_init(y, "Y", 1, (int[]){7});
    pthread_mutex_lock(&T.mu);
    int first = T.n_batches;
    pthread_mutex_unlock(&T.mu);
    hold_with(p, plug, first + 1);
    submit(p, x);
    submit(p, y);
    gate_set(-1);
    wait_done(done_before + 3);
    static const int want[][2] = {{1, 5}, {2, 13}};
    check_batches("the two-text batch", first, want, 2);
    check_ok(plug);
    check_ok(x);
    check_ok(y);
    return first + 2;
}

/* 5. The wait rule (should_wait). After a batch of several texts, the next one waits until as
 * many texts are queued as that batch answered, until it is full, or max_wait_seconds after
 * that batch's end and the oldest job's arrival. Lower bounds on a wait are what the code
 * guarantees; "did not wait" is asserted only against a wait of LONG_WAIT seconds. */
static void test_wait_rule(void)
{
    struct tjob plug, x, y, z, z2, lone, a, b;

    /* Nobody to wait for: the first job on an idle pool, and B after a batch of one text
     * (A, cut by the budget of 40 tokens). Without the one-text rule B would wait for A's
     * client: the queue held B when A's batch ended, so two texts back would be expected. */
    batcher *p = start(1, 16, 40, 8, LONG_WAIT);
    job_init(&lone, "first job", 1, (int[]){5});
    submit(p, &lone);
    wait_done(1);
    check_ok(&lone);
    CHECK(lone.job.t_started - lone.job.t_queued < SLOW_SECONDS,
          "wait: the first job on an idle pool waited %.3f s", lone.job.t_started - lone.job.t_queued);
    job_init(&plug, "one-text plug", 1, (int[]){5});
    job_init(&a, "A", 1, (int[]){30});
    job_init(&b, "B", 1, (int[]){30});
    hold_with(p, &plug, 2);
    submit(p, &a);
    submit(p, &b);
    gate_set(-1);
    wait_done(4);
    static const int one_text[][2] = {{1, 5}, {1, 30}, {1, 30}};
    check_batches("after a batch of one text", 1, one_text, 3);
    check_ok(&b);
    CHECK(b.job.t_started - a.job.t_finished < SLOW_SECONDS, "wait: B waited %.3f s after a batch of one text",
          b.job.t_started - a.job.t_finished);
    job_free(&lone);
    job_free(&plug);
    job_free(&a);
    job_free(&b);

    /* Then Z alone after the two-text batch [X, Y]: it waits for the second client, and Z2
     * (50 ms later) joins it. Were the wait broken, Z would usually have run alone by then;
     * the assertion can never fail on a correct batcher unless this thread stalls for
     * LONG_WAIT seconds. */
    int seen = two_text_batch(p, &plug, &x, &y, 4);
    job_init(&z, "Z", 1, (int[]){8});
    job_init(&z2, "Z2", 1, (int[]){9});
    submit(p, &z);
    sleep_seconds(0.05);
    submit(p, &z2);
    wait_done(9);
    static const int together[][2] = {{2, 17}};
    check_batches("Z waits for Z2", seen, together, 1);
    check_ok(&z);
    check_ok(&z2);
    CHECK(z.job.t_started >= z2.job.t_queued, "wait: Z started %.6f before Z2 arrived %.6f", z.job.t_started,
          z2.job.t_queued);
    batcher_stop(p);
    job_free(&plug);
    job_free(&x);
    job_free(&y);
    job_free(&z);
    job_free(&z2);

    /* The wait expires: after X and Y only Z comes back, and late. The wait runs from the later
     * of the batch's end and the oldest job's arrival, so Z cannot start before
     * max_wait_seconds after its own arrival (counted from the batch's end alone, it would
     * start about 0.2 s sooner); then it runs alone. */
    const double w = 0.3;
    p = start(1, 16, 1024, 8, w);
    seen = two_text_batch(p, &plug, &x, &y, 0);
    job_init(&z, "Z alone", 1, (int[]){8});
    sleep_seconds(0.2);
    submit(p, &z);
    wait_done(4);
    static const int alone[][2] = {{1, 8}};
    check_batches("the wait expires", seen, alone, 1);
    check_ok(&z);
    double waited = z.job.t_started - z.job.t_queued;
    CHECK(waited >= w - 1e-6, "wait: Z started %.6f s after it was queued, before the %.1f s wait", waited, w);
    CHECK(waited < w + SLOW_SECONDS, "wait: Z waited %.3f s for a %.1f s wait", waited, w);
    batcher_stop(p);
    job_free(&plug);
    job_free(&x);
    job_free(&y);
    job_free(&z);

    /* max_wait_seconds 0: never waits (were 0 taken for "no limit", Z would hang and the test
     * fail after HANG_SECONDS). */
    p = start(1, 16, 1024, 8, 0);
    seen = two_text_batch(p, &plug, &x, &y, 0);
    job_init(&z, "Z no wait", 1, (int[]){8});
    submit(p, &z);
    wait_done(4);
    check_batches("no wait", seen, alone, 1);
    check_ok(&z);
    CHECK(z.job.t_started - z.job.t_queued < SLOW_SECONDS, "wait 0: Z waited %.3f s",
          z.job.t_started - z.job.t_queued);
    batcher_stop(p);
    job_free(&plug);
    job_free(&x);
    job_free(&y);
    job_free(&z);

    /* The batch is full, by texts or by tokens: X Y V are queued behind the plug, and [X, Y]
     * leaves V queued (by the cap of 2 texts, or because V would pass a budget of 20 tokens),
     * so two texts back would make three. V waits, and starts as soon as X's client is back
     * with a text that fills the batch, instead of waiting for Y's. */
    static const struct {
        const char *what;
        int max_texts, max_tokens, x_again;
    } fills[] = {{"the batch fills its texts", 2, 1024, 9}, {"the batch fills its tokens", 8, 20, 12}};
    for (int f = 0; f < 2; f++) {
        struct tjob v;
        p = start(1, 16, fills[f].max_tokens, fills[f].max_texts, LONG_WAIT);
        job_init(&plug, "full plug", 1, (int[]){5});
        job_init(&x, "X", 1, (int[]){6});
        job_init(&y, "Y", 1, (int[]){7});
        job_init(&v, "V", 1, (int[]){8});
        hold_with(p, &plug, 1);
        submit(p, &x);
        submit(p, &y);
        submit(p, &v);
        gate_set(-1);
        wait_done(3);
        job_init(&z, "X again", 1, (int[]){fills[f].x_again});
        submit(p, &z);
        wait_done(5);
        const int full[][2] = {{1, 5}, {2, 13}, {2, 8 + fills[f].x_again}};
        check_batches(fills[f].what, 0, full, 3);
        check_ok(&v);
        check_ok(&z);
        CHECK(v.job.t_started >= z.job.t_queued, "%s: V started before X came back", fills[f].what);
        CHECK(v.job.t_started - z.job.t_queued < SLOW_SECONDS, "%s: a full batch still waited %.3f s",
              fills[f].what, v.job.t_started - z.job.t_queued);
        batcher_stop(p);
        job_free(&plug);
        job_free(&x);
        job_free(&y);
        job_free(&v);
        job_free(&z);
    }

    /* A lone client whose job is split over batches: the first batch holds several texts, but
     * they were answered to nobody (the job is still running), so nobody is coming back and the
     * rest of the job must not wait for them. */
    p = start(1, 16, 1024, 3, LONG_WAIT);
    job_init(&lone, "lone split job", 5, (int[]){5, 6, 7, 8, 9});
    submit(p, &lone);
    wait_done(1);
    static const int split[][2] = {{3, 18}, {2, 17}};
    check_batches("lone split job", 0, split, 2);
    check_ok(&lone);
    CHECK(lone.job.t_finished - lone.job.t_queued < SLOW_SECONDS,
          "wait: a lone client's split job took %.3f s: its second batch waited for its own first",
          lone.job.t_finished - lone.job.t_queued);
    batcher_stop(p);
    job_free(&lone);
}

/* 6. Stop, and admission. One worker is held in a batch holding J (1 text) and the first of
 * P's 5 texts; Q1-Q3 are queued; R has a slot but is not yet enqueued, and the pool is full.
 * batcher_stop must fail P's untaken texts and Q1-Q3 (status -1, a message, done on the
 * stopping thread), let J finish, finish P once its running text is done, and answer R -1 if
 * it is enqueued while stopping. Every done runs exactly once. */
/* 6. Two models. Behind the plug: A (tiny-bert, 5 and 6 tokens), B (finsent-mini, 7), C
 * (tiny-bert, 8), D (finsent-mini, 9, 10), any number of texts a batch. A batch stops at a text
 * for another model, even with room: 5+6, 7, 8, 9+10; and every text's logits are its own
 * model's, alone. */
static void test_two_models(void)
{
    batcher *p = start(1, 16, 1024, 64, 0);
    struct tjob plug, a, b, c, d;
    job_init(&plug, "models plug", 1, (int[]){5});
    job_init_for(&a, model, "A (tiny-bert)", 2, (int[]){5, 6});
    job_init_for(&b, other_model, "B (finsent-mini)", 1, (int[]){7});
    job_init_for(&c, model, "C (tiny-bert)", 1, (int[]){8});
    job_init_for(&d, other_model, "D (finsent-mini)", 2, (int[]){9, 10});
    hold_with(p, &plug, 1);
    submit(p, &a);
    submit(p, &b);
    submit(p, &c);
    submit(p, &d);
    gate_set(-1);
    wait_done(5);
    check_batches("two models", 1, (const int[][2]){{2, 11}, {1, 7}, {1, 8}, {2, 19}}, 4);
    struct tjob *all[] = {&plug, &a, &b, &c, &d};
    for (int i = 0; i < 5; i++)
        check_ok(all[i]);
    batcher_stop(p);
    for (int i = 0; i < 5; i++)
        job_free(all[i]);
}

static batcher *stop_pool;
static struct tjob stop_r;
static bool stop_hook_ran;

/* Run by the first cancelled job's done, on the thread inside batcher_stop: the pool is
 * stopping but not yet freed, the one moment reserve and enqueue can be seen to refuse. */
static void stop_hook(struct tjob *t)
{
    (void)t;
    pthread_mutex_lock(&T.mu);
    bool first = !stop_hook_ran;
    stop_hook_ran = true;
    pthread_mutex_unlock(&T.mu);
    if (!first)
        return;
    CHECK(!batcher_reserve(stop_pool), "stop: a slot was reserved while stopping");
    /* R reserved its slot before the stop: enqueued now, it is done at once with status -1. */
    batcher_enqueue(stop_pool, &stop_r.job);
    CHECK(stop_r.done_calls == 1, "stop: R enqueued while stopping: done called %d times", stop_r.done_calls);
    gate_set(-1); /* let the running batch end so that the stop can join the worker */
}

/* If stop never fails the queued jobs the hook never opens the gate, and the stop would wait
 * for the held worker for ever: after HANG_SECONDS this opens it, so the test fails instead. */
static void *stop_watchdog(void *arg)
{
    (void)arg;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)HANG_SECONDS;
    pthread_mutex_lock(&T.mu);
    while (!stop_hook_ran && pthread_cond_timedwait(&T.cv, &T.mu, &deadline) == 0)
        ;
    bool ran = stop_hook_ran;
    T.permits = -1;
    pthread_cond_broadcast(&T.cv);
    pthread_mutex_unlock(&T.mu);
    CHECK(ran, "stop: no queued job was failed within %.0f s", HANG_SECONDS);
    return NULL;
}

static void test_stop(void)
{
    batcher *p = start(1, 6, 1024, 2, 0);
    stop_pool = p;
    struct tjob plug, j, pj, q[3];
    job_init(&plug, "stop plug", 1, (int[]){5});
    job_init(&j, "J", 1, (int[]){6});
    job_init(&pj, "P", 5, (int[]){7, 8, 9, 10, 11});
    job_init(&q[0], "Q1", 1, (int[]){12});
    job_init(&q[1], "Q2", 2, (int[]){13, 14});
    job_init(&q[2], "Q3", 1, (int[]){15});
    job_init(&stop_r, "R", 1, (int[]){16});
    for (int i = 0; i < 3; i++)
        q[i].hook = stop_hook;

    hold_with(p, &plug, 1);
    submit(p, &j);
    submit(p, &pj);
    gate_set(1); /* the plug's batch may end; the next one, [J, P0], is held */
    wait_held(2);
    static const int want[][2] = {{1, 5}, {2, 13}};
    check_batches("stop: held batch", 0, want, 2);
    check_ok(&plug);

    /* Admission: the plug's slot came back when it finished. J, P, Q1-Q3 and R fill the 6. */
    for (int i = 0; i < 3; i++)
        submit(p, &q[i]);
    CHECK(batcher_reserve(p), "stop: no slot for R with 5 of 6 admitted");
    CHECK(!batcher_reserve(p), "stop: a seventh job was admitted with max_jobs 6");

    pthread_t watchdog;
    if (pthread_create(&watchdog, NULL, stop_watchdog, NULL))
        fatal("cannot start the watchdog thread");
    batcher_stop(p);
    pthread_join(watchdog, NULL);
    stop_pool = NULL;

    check_ok(&j);
    CHECK(!j.done_on_main, "stop: J, running, was finished on the stopping thread");
    struct tjob *failed[] = {&pj, &q[0], &q[1], &q[2], &stop_r};
    for (int i = 0; i < 5; i++) {
        struct tjob *t = failed[i];
        CHECK(t->done_calls == 1, "stop: %s: done called %d times", t->name, t->done_calls);
        CHECK(t->status_at_done == -1 && t->job.status == -1, "stop: %s: status %d", t->name, t->status_at_done);
        CHECK(t->err_at_done[0] != '\0', "stop: %s: no message", t->name);
        /* Queued jobs are failed by the stopping thread itself; P finishes with its running text. */
        CHECK(t->done_on_main == (t != &pj), "stop: %s: done on the %s thread", t->name,
              t->done_on_main ? "stopping" : "worker");
    }
    /* P's running text still got its logits; its untaken texts got none. */
    int L = model->cfg.n_labels;
    float d = 0;
    for (int i = 0; i < L; i++)
        d = fmaxf(d, fabsf(pj.job.logits[i] - pj.want[i]));
    CHECK(d <= LOGIT_TOL, "stop: P's running text: |logit - alone| = %.3g", d);
    CHECK(T.n_done == 7 && T.n_batches == 2, "stop: %d dones, %d batches; want 7 and 2", T.n_done, T.n_batches);

    job_free(&plug);
    job_free(&j);
    job_free(&pj);
    job_free(&stop_r);
    for (int i = 0; i < 3; i++)
        job_free(&q[i]);
}

int main(void)
{
    main_thread = pthread_self();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* wait_for measures from CLOCK_MONOTONIC */
    pthread_cond_init(&T.cv, &ca);
    pthread_condattr_destroy(&ca);

    char dir[BS_PATH_LEN], err[BS_ERR_LEN];
    snprintf(dir, sizeof dir, "%s", shared_path("models/tiny-bert"));
    model = bert_model_load(dir, err);
    tok = model ? tokenizer_load(dir, err) : NULL;
    if (!model || !tok)
        fatal(err);
    snprintf(dir, sizeof dir, "%s", shared_path("models/finsent-mini"));
    if (!(other_model = bert_model_load(dir, err)))
        fatal(err);

    test_fifo();
    test_split();
    test_budgets();
    test_long_text();
    test_wait_rule();
    test_two_models();
    test_stop();

    bert_scratch_free(&ref_scratch);
    tokenizer_free(tok);
    bert_model_free(model);
    bert_model_free(other_model);
    pthread_cond_destroy(&T.cv);
    return test_finish("test_batcher");
}
