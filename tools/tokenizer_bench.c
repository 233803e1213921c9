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
#include "text/any_tokenizer.h"
#include "text/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

    char err[BS_ERR_LEN];
    any_tokenizer *tok = any_tokenizer_load(model, err);
    if (!tok) {
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
            if (any_tokenizer_encode(tok, text + starts[i], starts[i + 1] - starts[i], NULL, 0, 512, TRUNCATE_RIGHT,
                                     &e, err)) {
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
           any_tokenizer_family(tok) == TOKENIZER_BPE ? "byte-level BPE" : "WordPiece", n_sent, (double)used / 1e6, passes, elapsed);
    printf("  %.0f sentences/s  %.1f MB/s  %.0f tokens/s  %.2f us/sentence (1 thread)\n",
           (double)sentences / elapsed, (double)used * (double)passes / 1e6 / elapsed,
           (double)tokens / elapsed, elapsed * 1e6 / (double)sentences);
    encoding_free(&e);
    free(text);
    free(starts);
    any_tokenizer_free(tok);
    return 0;
}
