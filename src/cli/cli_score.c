/* bertserve-cli score PREDICTION_LOG FEEDBACK_FILE: the daemon's prediction log (README,
 * Prediction log) joined with the true labels that came later, per model version. Reads both
 * files as JSON lines; knows their format from the README, not from the server's code. */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model version's label set (from its first line's "scores") and its confusion matrix. */
struct version {
    char *name;
    int n_labels;
    char *labels[BERT_MAX_LABELS];
    long *confusion; /* [actual * n_labels + predicted] */
    long total;
};

/* One prediction, keyed "request_id\x1findex"; scored once a feedback matched it. */
struct entry {
    char *key;
    int version, predicted;
    bool scored;
};

struct join {
    struct entry *slots; /* open addressing, linear probing, at most half full */
    size_t cap, n;
    struct version *versions;
    int n_versions;
    long log_lines, log_bad, log_reused;
    long fb_items, fb_bad, fb_matched, fb_unknown, fb_duplicate, fb_bad_label;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot holding key, or the empty slot where it would go. */
static struct entry *slot_of(const struct join *j, const char *key)
{
    size_t i = (size_t)fnv1a(key) & (j->cap - 1);
    while (j->slots[i].key && strcmp(j->slots[i].key, key))
        i = (i + 1) & (j->cap - 1);
    return &j->slots[i];
}

static int grow(struct join *j)
{
    struct join bigger = *j;
    bigger.cap = j->cap ? j->cap * 2 : 1024;
    if (!(bigger.slots = calloc(bigger.cap, sizeof *bigger.slots)))
        return -1;
    for (size_t i = 0; i < j->cap; i++)
        if (j->slots[i].key)
            *slot_of(&bigger, j->slots[i].key) = j->slots[i];
    free(j->slots);
    j->slots = bigger.slots;
    j->cap = bigger.cap;
    return 0;
}

static void make_key(char *out, size_t cap, const char *request_id, int index)
{
    snprintf(out, cap, "%s\x1f%d", request_id, index);
}

static int label_index(const struct version *v, const char *label)
{
    for (int k = 0; k < v->n_labels; k++)
        if (!strcmp(v->labels[k], label))
            return k;
    return -1;
}

/* The version named name, added with the labels of scores (its first line's) if new; -1 if
 * new and scores is not an object of 1..BERT_MAX_LABELS labels, or out of memory. */
static int version_of(struct join *j, const char *name, const cJSON *scores)
{
    for (int i = 0; i < j->n_versions; i++)
        if (!strcmp(j->versions[i].name, name))
            return i;
    int n = cJSON_IsObject(scores) ? cJSON_GetArraySize(scores) : 0;
    struct version *grown = realloc(j->versions, (size_t)(j->n_versions + 1) * sizeof *grown);
    if (n < 1 || n > BERT_MAX_LABELS || !grown)
        return -1;
    j->versions = grown;
    struct version *v = &j->versions[j->n_versions];
    *v = (struct version){.name = strdup(name), .n_labels = n};
    v->confusion = calloc((size_t)n * (size_t)n, sizeof *v->confusion);
    int k = 0;
    for (const cJSON *s = scores->child; s; s = s->next)
        v->labels[k++] = strdup(s->string);
    return j->n_versions++;
}

/* A string member, or NULL. */
static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The "index" member: an integer >= 0, default (absent) 0; -1 if malformed. */
static int index_of(const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "index");
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 2147483647.0 ||
        v->valuedouble != (double)(int)v->valuedouble)
        return -1;
    return (int)v->valuedouble;
}

/* One prediction log line; false if it is not one (counted by the caller). */
static bool add_prediction(struct join *j, const cJSON *o)
{
    const char *id = str_of(o, "request_id"), *version = str_of(o, "model_version"), *label = str_of(o, "label");
    int index = index_of(o);
    if (!id || !version || !label || index < 0)
        return false;
    int v = version_of(j, version, cJSON_GetObjectItemCaseSensitive(o, "scores"));
    int predicted = v >= 0 ? label_index(&j->versions[v], label) : -1;
    if (predicted < 0)
        return false;
    if (2 * (j->n + 1) > j->cap && grow(j))
        return false;
    char key[160];
    make_key(key, sizeof key, id, index);
    struct entry *e = slot_of(j, key);
    if (e->key) { /* a reused X-Request-Id: the newest prediction takes the feedback, as in the daemon */
        j->log_reused++;
    } else if (!(e->key = strdup(key))) {
        return false;
    } else {
        j->n++;
    }
    e->version = v;
    e->predicted = predicted;
    e->scored = false;
    return true;
}

/* One feedback item {"request_id", "index", "label"}; false if malformed. */
static bool add_feedback(struct join *j, const cJSON *o)
{
    const char *id = str_of(o, "request_id"), *label = str_of(o, "label");
    int index = index_of(o);
    if (!cJSON_IsObject(o) || !id || !label || index < 0)
        return false;
    j->fb_items++;
    char key[160];
    make_key(key, sizeof key, id, index);
    struct entry *e = j->cap ? slot_of(j, key) : NULL;
    if (!e || !e->key) {
        j->fb_unknown++;
        return true;
    }
    struct version *v = &j->versions[e->version];
    int actual = label_index(v, label);
    if (actual < 0) {
        j->fb_bad_label++;
    } else if (e->scored) { /* the first feedback stands, as in the daemon */
        j->fb_duplicate++;
    } else {
        e->scored = true;
        v->confusion[actual * v->n_labels + e->predicted]++;
        v->total++;
        j->fb_matched++;
    }
    return true;
}

/* Reads path's JSON lines into the join; blank lines are skipped, a line that is not valid
 * (or not what is_feedback expects) counted in *bad. -1 if the file cannot be read. */
static int read_lines(struct join *j, const char *path, bool is_feedback, long *lines, long *bad)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&buf, &cap, f)) > 0) {
        if (strspn(buf, " \t\r\n") == (size_t)len)
            continue;
        (*lines)++;
        cJSON *o = cJSON_ParseWithLength(buf, (size_t)len);
        bool ok = o != NULL;
        if (ok && is_feedback && cJSON_IsArray(o)) { /* a /feedback list body on one line */
            for (const cJSON *it = o->child; it; it = it->next)
                ok = add_feedback(j, it) && ok;
        } else if (ok) {
            ok = is_feedback ? add_feedback(j, o) : add_prediction(j, o);
        }
        *bad += !ok;
        cJSON_Delete(o);
    }
    free(buf);
    fclose(f);
    return 0;
}

static void print_report(const struct join *j)
{
    printf("prediction log: %ld lines, %ld unreadable, %ld under a reused request id (the newest kept)\n",
           j->log_lines, j->log_bad, j->log_reused);
    printf("feedback: %ld items, %ld matched, %ld matched no prediction, %ld duplicates (the first stands), "
           "%ld with a label the model version lacks, %ld unreadable lines\n",
           j->fb_items, j->fb_matched, j->fb_unknown, j->fb_duplicate, j->fb_bad_label, j->fb_bad);
    long correct = 0, total = 0;
    for (int i = 0; i < j->n_versions; i++) {
        const struct version *v = &j->versions[i];
        for (int k = 0; k < v->n_labels; k++)
            correct += v->confusion[k * v->n_labels + k];
        total += v->total;
    }
    printf("accuracy (all versions): %.4f over %ld\n", total ? (double)correct / (double)total : 0.0, total);
    for (int i = 0; i < j->n_versions; i++) {
        const struct version *v = &j->versions[i];
        printf("\nmodel_version: %s\n", v->name);
        cli_print_eval(v->labels, v->n_labels, v->confusion, v->total);
    }
}

static void free_join(struct join *j)
{
    for (size_t i = 0; i < j->cap; i++)
        free(j->slots[i].key);
    free(j->slots);
    for (int i = 0; i < j->n_versions; i++) {
        free(j->versions[i].name);
        for (int k = 0; k < j->versions[i].n_labels; k++)
            free(j->versions[i].labels[k]);
        free(j->versions[i].confusion);
    }
    free(j->versions);
}

int cli_score(int argc, char **argv)
{
    if (argc != 2 || argv[0][0] == '-' || argv[1][0] == '-') {
        fprintf(argc == 1 && !strcmp(argv[0], "--help") ? stdout : stderr,
                "usage: bertserve-cli score PREDICTION_LOG FEEDBACK_FILE\n"
                "joins the daemon's --prediction-log with a file of feedback JSON lines\n"
                "({\"request_id\": ..., \"index\": i, \"label\": ...}, or a list of them, per line) and prints\n"
                "accuracy, per-class precision/recall/F1 and the confusion matrix per model version\n");
        return argc == 1 && !strcmp(argv[0], "--help") ? 0 : 2;
    }
    struct join j = {0};
    long fb_lines = 0;
    int rc = read_lines(&j, argv[0], false, &j.log_lines, &j.log_bad);
    if (rc == 0)
        rc = read_lines(&j, argv[1], true, &fb_lines, &j.fb_bad);
    if (rc == 0)
        print_report(&j);
    free_join(&j);
    return rc ? 1 : 0;
}
