/* Fuzz target: config.json's parser (bert_config_parse_json) on arbitrary bytes. On success
 * the sizes must be inside the bounds the forward pass relies on; on failure a message. */
#include "common/bs_error.h"
#include "engine/model.h"
#include "fuzz_target.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *json = size ? malloc(size) : NULL; /* exact size, not NUL-terminated */
    FUZZ_ASSERT(!size || json, "out of memory");
    if (size)
        memcpy(json, data, size);
    bert_config c;
    char err[BS_ERR_LEN] = "";
    if (bert_config_parse_json(json, size, "config.json", &c, err) != 0) {
        FUZZ_ASSERT(!strncmp(err, "config.json: ", 13), "the message names the file: %s", err);
        FUZZ_ASSERT(c.n_labels == 0, "a failed parse keeps no labels");
    } else {
        FUZZ_ASSERT(c.hidden >= 1 && c.n_heads >= 1 && c.hidden % c.n_heads == 0, "hidden %d heads %d", c.hidden,
                    c.n_heads);
        FUZZ_ASSERT(c.n_layers >= 1 && c.intermediate >= 1 && c.max_positions >= 1 &&
                        c.vocab_size >= 1 && c.max_tokens >= 1 && c.max_tokens <= c.max_positions,
                    "sizes");
        /* Only DistilBERT has no token types; the others need at least one. */
        FUZZ_ASSERT((c.type_vocab_size == 0) == (c.family == BERT_FAMILY_DISTILBERT), "type_vocab_size %d",
                    c.type_vocab_size);
        FUZZ_ASSERT(c.position_pad_id < 0 || (c.position_pad_id < c.vocab_size &&
                                              c.position_offset == c.position_pad_id + 1),
                    "pad %d offset %d", c.position_pad_id, c.position_offset);
        FUZZ_ASSERT(c.layer_norm_eps > 0 && c.layer_norm_eps < 1, "eps %g", (double)c.layer_norm_eps);
        FUZZ_ASSERT(c.n_labels >= 1 && c.n_labels <= BERT_MAX_LABELS, "n_labels %d", c.n_labels);
        for (int i = 0; i < c.n_labels; i++)
            FUZZ_ASSERT(c.labels[i], "label %d is NULL", i);
        bert_config_free(&c);
    }
    free(json);
    return 0;
}
