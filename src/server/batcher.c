#include "server/batcher.h"

#include "common/bs_error.h"
#include "common/buffer.h"
#include "common/clock.h"
#include "engine/bert.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct batcher {
    struct batcher_settings set;
    pthread_mutex_t lock;
    pthread_cond_t work; /* a job was queued, or stopping */
    struct job *head, *tail;
    long queued_texts, queued_tokens; /* not yet taken into a batch */
    int admitted;
    int running;          /* workers inside a forward pass */
    int last_batch_texts; /* texts in the batch started last: more than 1 means concurrent clients */
    double last_batch_end;  /* when the last batch's answers went back */
    long expected_texts;    /* what the queue holds once those clients are back: see should_wait */
    double last_progress; /* a batch started or finished, or work arrived at an idle pool */
    bool stopping;
    pthread_cond_t warmed; /* a worker finished its warm-up */
    int n_warm;            /* workers done with their warm-up */
    int warm_status;       /* 0, or -1 with warm_err */
    char warm_err[BS_ERR_LEN];
    int n_threads;
    pthread_t *threads;
};

/* One text of a batch: where it came from, so its logits can go back. */
struct batch_item {
    struct job *job;
    int seq;
};

/* A worker's own buffers: the batch being run, its logits and its forward-pass state. Each
 * array's cap counts the elements it has room for. */
struct worker_state {
    struct batch_item *items;
    int *lens;
    float *logits;
    int32_t *ids, *type_ids;
    size_t cap_items, cap_lens, cap_logits, cap_ids, cap_type_ids;
    bert_scratch scratch;
};

/* Makes room for n_items texts and n_tokens tokens. Called under the pool lock for every text
 * taken, so capacities double (grow_array) rather than grow by one. */
static int grow(struct worker_state *w, int n_items, size_t n_tokens, int n_labels)
{
    size_t items = (size_t)n_items;
    if (grow_array(&w->items, &w->cap_items, items, sizeof *w->items) ||
        grow_array(&w->lens, &w->cap_lens, items, sizeof *w->lens) ||
        grow_array(&w->logits, &w->cap_logits, items * (size_t)n_labels, sizeof *w->logits) ||
        grow_array(&w->ids, &w->cap_ids, n_tokens, sizeof *w->ids) ||
        grow_array(&w->type_ids, &w->cap_type_ids, n_tokens, sizeof *w->type_ids))
        return -1;
    return 0;
}

static void worker_state_free(struct worker_state *w)
{
    free(w->items);
    free(w->ids);
    free(w->type_ids);
    free(w->lens);
    free(w->logits);
    bert_scratch_free(&w->scratch);
}

/* Under the lock: whether the worker should wait for more work before taking a batch. With
 * many closed-loop clients, the answers of one batch come back as new requests over the next
 * millisecond or so; a batch taken at the first of them would split the clients into cohorts
 * that then alternate for good (a batch's answers always return while the other cohort's batch
 * runs). So after a batch of more than one text (a lone client never waits) the worker waits
 * until the queue holds what it held when that batch ended plus that batch's texts of the jobs
 * it finished (everyone is back; the rest of a split job waits for nobody), or until the batch
 * is full, for at most max_wait_seconds after both the batch's end and the oldest job's
 * arrival. deadline receives when to look again. */
static bool should_wait(const batcher *p, struct timespec *deadline)
{
    if (p->set.max_wait_seconds <= 0 || p->stopping || p->last_batch_texts <= 1 ||
        p->queued_texts >= p->expected_texts || p->queued_texts >= p->set.max_batch_texts ||
        p->queued_tokens >= p->set.max_batch_tokens)
        return false;
    double since = p->head->t_queued > p->last_batch_end ? p->head->t_queued : p->last_batch_end;
    double until = since + p->set.max_wait_seconds;
    if (monotonic_seconds() >= until)
        return false;
    *deadline = monotonic_timespec(until); /* the condition variable waits on that clock */
    return true;
}

/* Under the lock: takes texts from the head of the queue, in order, while they fit the
 * budgets (the first always fits, so a text longer than the token budget runs alone) and are
 * for the first one's model. FIFO by text: a long text, or another model's, is never skipped
 * for the texts behind it. Returns the item count; -1 when out of memory. */
static int take_batch(batcher *p, struct worker_state *w, size_t *n_tokens)
{
    int n = 0;
    size_t tokens = 0;
    double now = monotonic_seconds();
    while (p->head && n < p->set.max_batch_texts) {
        struct job *j = p->head;
        int len = j->lens[j->next_seq];
        if (n > 0 && (tokens + (size_t)len > (size_t)p->set.max_batch_tokens || j->model != w->items[0].job->model))
            break;
        if (grow(w, n + 1, tokens + (size_t)len, j->model->cfg.n_labels))
            return n > 0 ? n : -1; /* run what fits; a lone text that cannot be held fails */
        memcpy(w->ids + tokens, j->tokens.ids + j->next_tok, (size_t)len * sizeof *w->ids);
        memcpy(w->type_ids + tokens, j->tokens.type_ids + j->next_tok, (size_t)len * sizeof *w->type_ids);
        w->lens[n] = len;
        w->items[n++] = (struct batch_item){.job = j, .seq = j->next_seq};
        if (j->next_seq == 0)
            j->t_started = now;
        tokens += (size_t)len;
        j->next_tok += (size_t)len;
        p->queued_texts--;
        p->queued_tokens -= len;
        if (++j->next_seq == j->n_seqs) {
            p->head = j->next;
            if (!p->head)
                p->tail = NULL;
        }
    }
    *n_tokens = tokens;
    return n;
}

/* Under the lock: counts n more of j's texts as done; once all are, the job's slot is freed
 * and it is linked into *finished for the caller to hand back outside the lock. */
static void count_done(batcher *p, struct job *j, int n, struct job **finished)
{
    j->seqs_done += n;
    if (j->seqs_done == j->n_seqs) {
        j->t_finished = monotonic_seconds();
        p->admitted--;
        j->next = *finished;
        *finished = j;
    }
}

/* Under the lock: fails the head job's texts that no batch has taken yet and takes it off the
 * queue. It finishes now if none of its texts are running, else with its last running one. */
static void fail_untaken(batcher *p, const char *why, struct job **finished)
{
    struct job *j = p->head;
    p->head = j->next;
    if (!p->head)
        p->tail = NULL;
    j->status = bs_fail(j->err, "%s", why);
    if (j->next_seq == 0)
        j->t_started = monotonic_seconds();
    int untaken = j->n_seqs - j->next_seq;
    for (; j->next_seq < j->n_seqs; j->next_seq++) {
        p->queued_texts--;
        p->queued_tokens -= j->lens[j->next_seq];
    }
    count_done(p, j, untaken, finished);
}

static void hand_back(struct job *finished)
{
    while (finished) {
        struct job *j = finished;
        finished = j->next;
        j->done(j, j->arg);
    }
}

/* The warm-up pass (batcher_settings.warm_model), on this worker's own buffers and threads. */
static int warm_up(const batcher *p, struct worker_state *w, char *err)
{
    const struct batcher_settings *s = &p->set;
    int n = s->warm_texts, len = s->warm_len;
    size_t tokens = (size_t)n * (size_t)len;
    if (grow(w, n, tokens, s->warm_model->cfg.n_labels))
        return bs_fail(err, "out of memory for the warm-up batch");
    for (size_t t = 0; t < tokens; t++)
        w->ids[t] = w->type_ids[t] = 0; /* any id: the work does not depend on the values */
    for (int i = 0; i < n; i++)
        w->lens[i] = len;
    bert_batch b = {.ids = w->ids, .type_ids = w->type_ids, .lens = w->lens, .n_seqs = n};
    return bert_forward(s->warm_model, &b, w->logits, &w->scratch, err);
}

static void *worker_main(void *arg)
{
    batcher *p = arg;
    /* Each worker owns its buffers and forward-pass threads: no locking in the hot path. */
    struct worker_state w = {.scratch = {.n_threads = p->set.threads_per_worker}};
    char err[BS_ERR_LEN];
    int warm = p->set.warm_model ? warm_up(p, &w, err) : 0;
    pthread_mutex_lock(&p->lock);
    if (warm && !p->warm_status) {
        p->warm_status = -1;
        memcpy(p->warm_err, err, sizeof err);
    }
    p->n_warm++;
    pthread_cond_broadcast(&p->warmed);
    for (;;) {
        struct timespec deadline;
        /* Before waiting for concurrent clients, the forward-pass threads stop spinning: the
         * HTTP threads need the CPUs to answer the last batch and read the next requests
         * (measured at 16 clients: fuller batches, p99 400-410 ms against 620-910). A lone
         * client's next request finds them still spinning, as in a benchmark loop. */
        if (!p->head && !p->stopping) {
            if (p->last_batch_texts > 1)
                bert_scratch_rest(&w.scratch);
            pthread_cond_wait(&p->work, &p->lock);
            continue;
        }
        if (!p->head) /* stopping and nothing left */
            break;
        if (should_wait(p, &deadline)) {
            bert_scratch_rest(&w.scratch);
            pthread_cond_timedwait(&p->work, &p->lock, &deadline);
            continue;
        }
        size_t n_tokens = 0;
        int n = take_batch(p, &w, &n_tokens);
        if (n < 0) { /* not even one text fits in memory */
            struct job *finished = NULL;
            fail_untaken(p, "out of memory for a batch", &finished);
            pthread_mutex_unlock(&p->lock);
            hand_back(finished);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        if (p->head) /* work left for another worker */
            pthread_cond_signal(&p->work);
        p->running++;
        p->last_batch_texts = n;
        p->last_progress = monotonic_seconds();
        pthread_mutex_unlock(&p->lock);

        char err[BS_ERR_LEN];
        double t0 = monotonic_seconds();
        const bert_model *model = w.items[0].job->model;
        const int n_labels = model->cfg.n_labels;
        bert_batch b = {.ids = w.ids, .type_ids = w.type_ids, .lens = w.lens, .n_seqs = n};
        int status = bert_forward(model, &b, w.logits, &w.scratch, err);
        double seconds = monotonic_seconds() - t0;
        if (p->set.on_batch)
            p->set.on_batch(p->set.on_batch_arg, n, (int)n_tokens, seconds);
        /* Each text's logits go back to its job's own row: no lock needed, and no job is
         * finished (so freed) before count_done below. */
        for (int i = 0; status == 0 && i < n; i++)
            memcpy(w.items[i].job->logits + (size_t)w.items[i].seq * (size_t)n_labels,
                   w.logits + (size_t)i * (size_t)n_labels, (size_t)n_labels * sizeof *w.logits);

        struct job *finished = NULL;
        pthread_mutex_lock(&p->lock);
        p->running--;
        p->last_progress = p->last_batch_end = monotonic_seconds();
        for (int i = 0; i < n; i++) {
            struct job *j = w.items[i].job;
            if (status) {
                j->status = -1;
                memcpy(j->err, err, sizeof err);
            }
            count_done(p, j, 1, &finished);
        }
        /* Only the texts of jobs this batch finished go back to clients who may send more: a
         * job split over batches is still running, and its client is not coming back. */
        long answered = 0;
        for (int i = 0; i < n; i++)
            answered += w.items[i].job->seqs_done == w.items[i].job->n_seqs;
        p->expected_texts = p->queued_texts + answered;
        /* Hand back outside the lock: a callback may resume a connection whose next request
         * must find its slot free. */
        pthread_mutex_unlock(&p->lock);
        hand_back(finished);
        pthread_mutex_lock(&p->lock);
    }
    pthread_mutex_unlock(&p->lock);
    worker_state_free(&w);
    return NULL;
}

batcher *batcher_start(const struct batcher_settings *s, char *err)
{
    if (s->n_workers < 1 || s->threads_per_worker < 1 || s->max_jobs < 1 || s->max_batch_tokens < 1 ||
        s->max_batch_texts < 1 || s->max_wait_seconds < 0) {
        bs_fail(err, "invalid worker settings");
        return NULL;
    }
    batcher *p = calloc(1, sizeof *p);
    if (!p || !(p->threads = calloc((size_t)s->n_workers, sizeof *p->threads))) {
        free(p);
        bs_fail(err, "out of memory starting %d workers", s->n_workers);
        return NULL;
    }
    p->set = *s;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->warmed, NULL);
    monotonic_cond_init(&p->work); /* timed waits measure from the clock of every job timestamp */
    p->last_progress = monotonic_seconds();
    for (int i = 0; i < s->n_workers; i++) {
        int rc = pthread_create(&p->threads[i], NULL, worker_main, p);
        if (rc) {
            bs_fail(err, "cannot start compute worker %d: %s", i + 1, strerror(rc));
            batcher_stop(p);
            return NULL;
        }
        p->n_threads++;
    }
    return p;
}

bool batcher_reserve(batcher *p)
{
    pthread_mutex_lock(&p->lock);
    bool ok = !p->stopping && p->admitted < p->set.max_jobs;
    if (ok)
        p->admitted++;
    pthread_mutex_unlock(&p->lock);
    return ok;
}

void batcher_enqueue(batcher *p, struct job *j)
{
    j->next = NULL;
    j->status = 0;
    j->next_seq = 0;
    j->next_tok = 0;
    j->seqs_done = 0;
    j->t_queued = j->t_started = j->t_finished = monotonic_seconds();
    long tokens = 0;
    for (int i = 0; i < j->n_seqs; i++)
        tokens += j->lens[i];
    struct job *finished = NULL;
    pthread_mutex_lock(&p->lock);
    if (!p->head && p->running == 0)
        p->last_progress = j->t_queued; /* an idle pool is not a stalled one */
    if (p->stopping || j->n_seqs == 0) {
        j->status = bs_fail(j->err, "%s", p->stopping ? "the server is shutting down" : "a job without texts");
        count_done(p, j, j->n_seqs, &finished);
    } else {
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        p->queued_texts += j->n_seqs;
        p->queued_tokens += tokens;
        pthread_cond_signal(&p->work);
    }
    pthread_mutex_unlock(&p->lock);
    hand_back(finished);
}

int batcher_wait_warm(batcher *p, char *err)
{
    pthread_mutex_lock(&p->lock);
    while (p->n_warm < p->n_threads)
        pthread_cond_wait(&p->warmed, &p->lock);
    int rc = p->warm_status;
    if (rc)
        bs_fail(err, "warm-up: %s", p->warm_err);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

double batcher_stalled_seconds(batcher *p)
{
    pthread_mutex_lock(&p->lock);
    double stalled = p->head || p->running ? monotonic_seconds() - p->last_progress : 0;
    pthread_mutex_unlock(&p->lock);
    return stalled;
}

void batcher_stop(batcher *p)
{
    if (!p)
        return;
    struct job *finished = NULL;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    /* Texts already in a batch finish; the rest are answered "shutting down". */
    while (p->head)
        fail_untaken(p, "the server is shutting down", &finished);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    hand_back(finished);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->warmed);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
}
