/* A FinBERT-shaped network (FinBERT's config.json: 12 layers x 768, 12 heads, 3072, 512
 * positions, vocab 30522) with seeded random weights from tools/random_model.c, written to a
 * temporary directory: loading at full size, and a packed batch equal to the sequences run
 * one at a time. No golden logits exist for it. */
#include "check.h"
#include "common/bs_error.h"
#include "common/clock.h"
#include "common/fileio.h"
#include "engine/bert.h"
#include "engine/model.h"
#include "random_model.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

enum { VOCAB = 30522, LABELS = 3 }; /* FinBERT's; checked against the loaded config */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng_u32(void)
{
    /* splitmix64: seeded, reproducible token ids. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

int main(void)
{
    char dir[] = "/tmp/bertserve-bertbase-XXXXXX", err[BS_ERR_LEN], path[BS_PATH_LEN];
    CHECK(mkdtemp(dir), "mkdtemp failed");
    CHECK(random_model_write(shared_path("models/finbert/config.json"), dir, 42, err) > 0, "%s", err);

    double t0 = (monotonic_seconds() * 1e3);
    bert_model *m = bert_model_load(dir, err);
    double load_ms = (monotonic_seconds() * 1e3) - t0;
    CHECK(m, "%s", err);
    static const char *files[] = {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        path_join(path, dir, files[i], err);
        unlink(path);
    }
    rmdir(dir);
    if (!m)
        return test_finish("test_model_bertbase");
    printf("loaded 12x768 F32 model in %.0f ms\n", load_ms);
    CHECK(m->cfg.vocab_size == VOCAB && m->cfg.n_labels == LABELS && m->cfg.n_layers == 12 && m->cfg.hidden == 768,
          "not FinBERT's shape");
    /* Short sequences under the sanitizers, which slow the forward pass down a lot. */
    static const int lens_full[] = {128, 1, 7, 512, 64, 33}, lens_san[] = {128, 1, 7, 40};
    const int *lens = SANITIZED ? lens_san : lens_full;
    int n_seqs = SANITIZED ? 4 : 6, total = 0;
    for (int i = 0; i < n_seqs; i++)
        total += lens[i];
    int32_t *ids = malloc((size_t)total * sizeof *ids), *types = malloc((size_t)total * sizeof *types);
    for (int i = 0, off = 0; i < n_seqs; off += lens[i], i++)
        for (int t = 0; t < lens[i]; t++) {
            ids[off + t] = t == 0 ? 101 : (int32_t)(rng_u32() % VOCAB);
            types[off + t] = (i % 2 && t > lens[i] / 2) ? 1 : 0;
        }

    bert_scratch scratch = {0};
    float single[16][LABELS], batched[16][LABELS];
    for (int i = 0, off = 0; i < n_seqs; off += lens[i], i++) {
        bert_batch b = {ids + off, types + off, &lens[i], 1};
        t0 = (monotonic_seconds() * 1e3);
        CHECK(bert_forward(m, &b, single[i], &scratch, err) == 0, "%s", err);
        printf("one sequence of %3d tokens: %.1f ms\n", lens[i], (monotonic_seconds() * 1e3) - t0);
        for (int k = 0; k < LABELS; k++)
            CHECK(isfinite(single[i][k]), "sequence %d: logit %d is not finite", i, k);
    }
    bert_batch b = {ids, types, lens, n_seqs};
    t0 = (monotonic_seconds() * 1e3);
    CHECK(bert_forward(m, &b, &batched[0][0], &scratch, err) == 0, "%s", err);
    printf("packed batch of %d sequences, %d tokens: %.1f ms\n", n_seqs, total, (monotonic_seconds() * 1e3) - t0);

    float max_diff = 0, spread = 0;
    for (int i = 0; i < n_seqs; i++)
        for (int k = 0; k < LABELS; k++) {
            max_diff = fmaxf(max_diff, fabsf(batched[i][k] - single[i][k]));
            spread = fmaxf(spread, fabsf(single[i][k] - single[0][k]));
        }
    printf("max |batched - single| = %.2e (logits spread %.3f)\n", max_diff, spread);
    CHECK(max_diff <= 1e-4f, "batched differs from single by %.3g", max_diff);
    /* Distinct inputs must give distinct logits, or the comparison above proves nothing. */
    CHECK(spread > 1e-3f, "all sequences gave the same logits (spread %.3g)", spread);

    free(ids);
    free(types);
    bert_scratch_free(&scratch);
    bert_model_free(m);
    return test_finish("test_model_bertbase");
}
