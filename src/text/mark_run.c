#include "text/mark_run.h"

void mark_run_end(struct mark_run *r, int32_t *from_at, int32_t *to_at, int max_pos)
{
    int n = r->n, order[MARK_RUN_MAX], kept_pos[MARK_RUN_MAX], n_kept = 0;
    int32_t from0[MARK_RUN_MAX], to0[MARK_RUN_MAX];
    int n_first = 0;
    for (int i = 0; i < n; i++) {
        order[i] = i;
        if (r->piece[i].pos >= 0)
            kept_pos[n_kept++] = r->piece[i].pos; /* increasing: kept pieces fill the word in order */
        if (r->piece[i].first) {
            from0[n_first] = r->piece[i].from;
            to0[n_first++] = r->piece[i].to;
        }
    }
    r->n = 0;
    bool unusable = r->unusable;
    r->unusable = false;
    if (n_kept == 0 || unusable)
        return;
    /* Canonical ordering: a stable sort by class. Kept pieces keep their relative order in it,
     * so the k-th kept piece after sorting is the one the word holds at kept_pos[k]. */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && r->piece[order[j - 1]].ccc > r->piece[order[j]].ccc; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    int32_t from = r->last_from, to = r->last_to;
    int consumed = 0, k = 0;
    for (int i = 0; i < n; i++) {
        const int p = order[i];
        if (r->piece[p].first) { /* consumes the next character; a later piece repeats the last */
            from = from0[consumed];
            to = to0[consumed++];
        }
        if (r->piece[p].pos >= 0 && kept_pos[k] <= max_pos) {
            from_at[kept_pos[k]] = from;
            to_at[kept_pos[k]] = to;
        }
        k += r->piece[p].pos >= 0;
    }
}

void mark_run_feed(struct mark_run *r, const struct nfd_piece *pieces, int n, int32_t from, int32_t to, int pos,
                   int32_t *from_at, int32_t *to_at, int max_pos)
{
    for (int i = 0, kept = 0; i < n; i++) {
        if (pieces[i].ccc == 0) { /* a starter ends the run before it */
            if (r->n)
                mark_run_end(r, from_at, to_at, max_pos);
            if (i == 0) {
                r->last_from = from;
                r->last_to = to;
            }
        } else if (r->n == MARK_RUN_MAX) {
            r->unusable = true;
        } else {
            r->piece[r->n].from = from;
            r->piece[r->n].to = to;
            r->piece[r->n].ccc = pieces[i].ccc;
            r->piece[r->n].first = i == 0;
            r->piece[r->n].pos = pieces[i].kept ? (pos >= 0 ? pos + kept : -2) : -1;
            r->unusable |= pieces[i].kept && pos < 0;
            r->n++;
        }
        kept += pieces[i].kept;
    }
}
