/* Fuzz target: the request body parser and validator (request.h) on arbitrary bodies, each
 * parsed as every route's (/predict, /batch_predict, /tokenize, the v2 protocol's infer, /feedback). The body is a heap copy of exactly the input's
 * size and not NUL-terminated, as the daemon hands it over, so a read past its end is caught. A small max_texts (8) puts the limit within reach.
 * Checks: success gives 1..max_texts NUL-terminated inputs matching the shape, from a body with
 * no raw control byte in a string and nothing after its JSON value; failure gives one of the
 * parser's error kinds with a message and leaves nothing allocated. */
#include "fuzz_target.h"
#include "common/json_text.h"
#include "server/request.h"

#include <stdint.h>
#include <string.h>

#define MAX_TEXTS 8

/* One parse of the body as the given route's. */
static void parse_as(const uint8_t *data, size_t size, enum request_route route)
{
    char *body = size ? malloc(size) : NULL;
    FUZZ_ASSERT(!size || body, "out of memory");
    if (size)
        memcpy(body, data, size);
    struct predict_limits lim = {.max_texts = MAX_TEXTS, .route = route};
    struct predict_request req;
    struct service_error e;
    if (predict_request_parse(body, size, &lim, &req, &e) != 0) {
        FUZZ_ASSERT(e.kind == ERROR_INVALID_JSON || e.kind == ERROR_VALIDATION || e.kind == ERROR_INTERNAL, "kind %d",
                    (int)e.kind);
        FUZZ_ASSERT(e.msg[0], "error without a message");
        FUZZ_ASSERT(!req.root && !req.texts && !req.pairs && req.n == 0, "a failed parse left a request");
        free(body);
        return;
    }
    FUZZ_ASSERT(route != REQUEST_BATCH_PREDICT || req.shape == SHAPE_TEXTS, "batch_predict shape %d",
                (int)req.shape);
    /* /tokenize takes "inputs" as a text or an array of texts, never a pair. */
    FUZZ_ASSERT(route != REQUEST_TOKENIZE || req.shape == SHAPE_TEI_ONE || req.shape == SHAPE_TEI_BATCH,
                "tokenize shape %d", (int)req.shape);
    for (int i = 0; route == REQUEST_TOKENIZE && i < req.n; i++)
        FUZZ_ASSERT(!req.pairs[i], "a /tokenize pair");
    /* The v2 infer body has its own shape, and only it. */
    FUZZ_ASSERT((route == REQUEST_V2_INFER) == (req.shape == SHAPE_V2), "route %d shape %d", (int)route,
                (int)req.shape);
    FUZZ_ASSERT(req.root && req.n >= 1 && req.n <= MAX_TEXTS, "n %d", req.n);
    /* Raw control bytes (a NUL would cut a text short) are refused, wherever they are. */
    FUZZ_ASSERT(json_raw_control_byte((const char *)data, size) == size, "a raw control byte was accepted");
    /* One value, then only whitespace: the last non-whitespace byte closes it. */
    size_t last = size;
    while (last > 0 && strchr(" \t\r\n", data[last - 1]) && data[last - 1])
        last--;
    FUZZ_ASSERT(last > 0 && (data[last - 1] == '}' || data[last - 1] == ']'), "data after the JSON value");
    switch (req.shape) {
    case SHAPE_TEXT:
        FUZZ_ASSERT(req.n == 1 && !req.pairs[0], "a single text");
        break;
    case SHAPE_TEXTS:
        for (int i = 0; i < req.n; i++)
            FUZZ_ASSERT(!req.pairs[i], "texts hold no pairs");
        break;
    case SHAPE_TEI_ONE:
        FUZZ_ASSERT(req.n == 1, "one TEI input");
        break;
    case SHAPE_TEI_BATCH:
        break;
    case SHAPE_V2: /* [n] or [n, 1] texts, or [n, 2] pairs: all inputs alike; 1-2 distinct outputs */
        for (int i = 1; i < req.n; i++)
            FUZZ_ASSERT(!req.pairs[i] == !req.pairs[0], "a v2 tensor mixes texts and pairs");
        FUZZ_ASSERT(req.v2_n_outputs >= 1 && req.v2_n_outputs <= V2_OUTPUT_COUNT, "%d outputs", req.v2_n_outputs);
        FUZZ_ASSERT(req.v2_n_outputs < 2 || req.v2_outputs[0] != req.v2_outputs[1], "an output twice");
        break;
    default:
        FUZZ_ASSERT(0, "unknown shape %d", (int)req.shape);
    }
    size_t total = 0;
    for (int i = 0; i < req.n; i++) {
        FUZZ_ASSERT(req.texts[i], "texts[%d] is NULL", i);
        total += strlen(req.texts[i]) + (req.pairs[i] ? strlen(req.pairs[i]) : 0);
    }
    /* Every byte of a text came from the body (escapes only shrink). */
    FUZZ_ASSERT(total <= size, "%zu text bytes from a %zu-byte body", total, size);
    predict_request_free(&req);
    FUZZ_ASSERT(!req.root && !req.texts && req.n == 0, "freed request is empty");
    free(body);
}

/* One parse as a POST /feedback body: success gives 1..MAX_TEXTS items (one unless a list),
 * each with a request id of the X-Request-Id alphabet, a non-empty NUL-free label and an index
 * >= 0; failure one of the parser's kinds with a message, nothing allocated. */
static void parse_feedback(const uint8_t *data, size_t size)
{
    char *body = size ? malloc(size) : NULL;
    FUZZ_ASSERT(!size || body, "out of memory");
    if (size)
        memcpy(body, data, size);
    struct feedback_request req;
    struct service_error e;
    if (feedback_request_parse(body, size, MAX_TEXTS, &req, &e) != 0) {
        FUZZ_ASSERT(e.kind == ERROR_INVALID_JSON || e.kind == ERROR_VALIDATION || e.kind == ERROR_INTERNAL, "kind %d",
                    (int)e.kind);
        FUZZ_ASSERT(e.msg[0], "error without a message");
        FUZZ_ASSERT(!req.root && !req.items && req.n == 0, "a failed parse left a request");
        free(body);
        return;
    }
    FUZZ_ASSERT(req.root && req.n >= 1 && req.n <= MAX_TEXTS && (req.is_list || req.n == 1), "n %d", req.n);
    FUZZ_ASSERT(json_raw_control_byte((const char *)data, size) == size, "a raw control byte was accepted");
    for (int i = 0; i < req.n; i++) {
        const struct feedback_item *it = &req.items[i];
        size_t n = strlen(it->request_id);
        FUZZ_ASSERT(n >= 1 && n <= 64 && strspn(it->request_id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                "0123456789-_.:") == n,
                    "request id \"%s\"", it->request_id);
        FUZZ_ASSERT(it->label && it->label[0], "empty label");
        FUZZ_ASSERT(it->index >= 0, "index %d", it->index);
    }
    feedback_request_free(&req);
    FUZZ_ASSERT(!req.root && !req.items && req.n == 0, "freed request is empty");
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_feedback(data, size);
    parse_as(data, size, REQUEST_PREDICT);
    parse_as(data, size, REQUEST_BATCH_PREDICT);
    parse_as(data, size, REQUEST_TOKENIZE);
    parse_as(data, size, REQUEST_V2_INFER);
    return 0;
}
