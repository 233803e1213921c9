/* Tokenizer throughput on every Financial PhraseBank sentence.
 *   build/tokenizer-bench [MODEL_DIR [PHRASEBANK_FILE]]
 * A MODEL_DIR with merges.txt is timed with the byte-level BPE tokenizer (text/bpe.h), any
 * other with WordPiece.
 * Defaults: $BERTSERVE_SHARED/models/finsent-mini and
 *           $BERTSERVE_SHARED/data/financial_phrasebank/Sentences_50Agree.txt
 * ($BERTSERVE_SHARED defaults to ../shared). The file holds latin-1 `sentence@label` lines;
 * they are converted to UTF-8 up front, and only the encode call (max length 512) is timed. */
#include "common/bs_error.h"
#include "common/clock.h"
#include "text/bpe.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One of the two tokenizers, whichever the model directory holds. */
struct any_tokenizer {
    tokenizer *wordpiece;
    bpe_tokenizer *bpe;
};

static int encode(const struct any_tokenizer *t, const char *s, size_t n, encoding *e, char *err)
{
    return t->bpe ? bpe_encode(t->bpe, s, n, NULL, 0, 512, TRUNCATE_RIGHT, e, err)
                  : tokenizer_encode(t->wordpiece, s, n, NULL, 0, 512, e, err);
}

int main(int argc, char **argv)
{
    const char *shared = getenv("BERTSERVE_SHARED");
    if (!shared || !*shared)
        shared = "../shared";
    char model[4096], data[4096];
    snprintf(model, sizeof model, "%s", argc > 1 ? argv[1] : "");
    snprintf(data, sizeof data, "%s", argc > 2 ? argv[2] : "");
    if (argc <= 1)
        snprintf(model, sizeof model, "%s/models/finsent-mini", shared);
    if (argc <= 2)
        snprintf(data, sizeof data, "%s/data/financial_phrasebank/Sentences_50Agree.txt", shared);

    char err[BS_ERR_LEN], merges[4096 + 16];
    snprintf(merges, sizeof merges, "%s/merges.txt", model);
    struct any_tokenizer tok = {0};
    if (access(merges, F_OK) == 0)
        tok.bpe = bpe_load(model, err);
    else
        tok.wordpiece = tokenizer_load(model, err);
    if (!tok.bpe && !tok.wordpiece) {
        fprintf(stderr, "tokenizer-bench: %s\n", err);
        return 1;
    }
    FILE *f = fopen(data, "rb");
    if (!f) {
        fprintf(stderr, "tokenizer-bench: cannot open %s\n", data);
        return 1;
    }
    /* all sentences, UTF-8, back to back; starts[i] .. starts[i+1] is sentence i */
    size_t cap = 1 << 22, used = 0, n_sent = 0, starts_cap = 1 << 14;
    char *text = malloc(cap);
    size_t *starts = malloc(starts_cap * sizeof *starts);
    char line[1 << 14];
    while (text && starts && fgets(line, sizeof line, f)) {
        char *at = strrchr(line, '@');
        if (!at)
            continue;
        if (used + 2 * (size_t)(at - line) >= cap || n_sent + 2 >= starts_cap) {
            fprintf(stderr, "tokenizer-bench: input too large\n");
            return 1;
        }
        starts[n_sent++] = used;
        for (char *p = line; p < at; p++)
            used += (size_t)utf8_encode((unsigned char)*p, text + used); /* latin-1 -> UTF-8 */
    }
    fclose(f);
    if (!text || !starts || n_sent == 0) {
        fprintf(stderr, "tokenizer-bench: no sentences read from %s\n", data);
        return 1;
    }
    starts[n_sent] = used;

    encoding e = {0};
    long tokens = 0, sentences = 0, passes = 0;
    double t0 = monotonic_seconds(), elapsed;
    do { /* whole passes over the corpus for at least 2 seconds */
        for (size_t i = 0; i < n_sent; i++) {
            if (encode(&tok, text + starts[i], starts[i + 1] - starts[i], &e, err)) {
                fprintf(stderr, "tokenizer-bench: sentence %zu: %s\n", i, err);
                return 1;
            }
            tokens += e.n;
        }
        sentences += (long)n_sent;
        passes++;
        elapsed = monotonic_seconds() - t0;
    } while (elapsed < 2.0);

    printf("tokenizer-bench (%s): %zu PhraseBank sentences (%.2f MB UTF-8), %ld passes in %.2f s\n",
           tok.bpe ? "byte-level BPE" : "WordPiece", n_sent, (double)used / 1e6, passes, elapsed);
    printf("  %.0f sentences/s  %.1f MB/s  %.0f tokens/s  %.2f us/sentence (1 thread)\n",
           (double)sentences / elapsed, (double)used * (double)passes / 1e6 / elapsed,
           (double)tokens / elapsed, elapsed * 1e6 / (double)sentences);
    encoding_free(&e);
    free(text);
    free(starts);
    tokenizer_free(tok.wordpiece);
    bpe_free(tok.bpe);
    return 0;
}
