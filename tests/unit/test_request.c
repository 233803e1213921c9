/* The /predict body parser (request.h) on its own: every shape, the options, the limit, the
 * error kinds, and that a failure leaves nothing allocated. */
#include "check.h"
#include "server/request.h"

#include <stdlib.h>
#include <string.h>

/* Parses a copy of body (not NUL-terminated, as the daemon hands it over). */
static int parse(const char *body, int max_texts, struct predict_request *req, struct service_error *e)
{
    size_t len = strlen(body);
    char *copy = len ? malloc(len) : NULL;
    if (len)
        memcpy(copy, body, len);
    struct predict_limits lim = {.max_texts = max_texts};
    int rc = predict_request_parse(copy, len, &lim, req, e);
    free(copy); /* the texts live in req->root, not in the body */
    return rc;
}

static void expect_error(const char *body, int max_texts, enum error_kind kind, const char *frag)
{
    struct predict_request req;
    struct service_error e;
    int rc = parse(body, max_texts, &req, &e);
    CHECK(rc == -1, "%s: parsed", body);
    if (rc != -1) {
        predict_request_free(&req);
        return;
    }
    CHECK(e.kind == kind, "%s: error kind %d, want %d", body, (int)e.kind, (int)kind);
    CHECK(strstr(e.msg, frag), "%s: message \"%s\" lacks \"%s\"", body, e.msg, frag);
    CHECK(!req.root && !req.texts && !req.pairs && req.n == 0, "%s: a failure left a request", body);
}

int main(void)
{
    struct predict_request req;
    struct service_error e;

    CHECK(parse("{\"text\": \"a\\u0000b\"}", 4, &req, &e) == 0, "text: %s", e.msg);
    CHECK(req.shape == SHAPE_TEXT && req.n == 1 && !req.pairs[0] && req.truncate && !req.raw_scores, "text shape");
    CHECK(!strcmp(req.texts[0], "a\xef\xbf\xbd" "b"), "a \\u0000 escape becomes U+FFFD: %s", req.texts[0]);
    predict_request_free(&req);
    CHECK(!req.root && req.n == 0, "freed");
    predict_request_free(&req); /* twice is fine */

    CHECK(parse("{\"texts\": [\"x\", \"y\"], \"truncate\": false}", 2, &req, &e) == 0, "texts: %s", e.msg);
    CHECK(req.shape == SHAPE_TEXTS && req.n == 2 && !strcmp(req.texts[1], "y") && !req.truncate, "texts shape");
    predict_request_free(&req);

    /* A lone TEI pair is one input, so it passes a limit of 1. */
    CHECK(parse("{\"inputs\": [\"q\", \"d\"], \"raw_scores\": true}", 1, &req, &e) == 0, "pair: %s", e.msg);
    CHECK(req.shape == SHAPE_TEI_ONE && req.n == 1 && !strcmp(req.pairs[0], "d") && req.raw_scores, "pair shape");
    predict_request_free(&req);

    CHECK(parse("{\"inputs\": [[\"a\"], [\"q\", \"d\"], \"t\"], \"truncation_direction\": \"Right\"}", 3, &req, &e) == 0,
          "batch: %s", e.msg);
    CHECK(req.shape == SHAPE_TEI_BATCH && req.n == 3 && !req.pairs[0] && !strcmp(req.pairs[1], "d") &&
              !strcmp(req.texts[2], "t") && req.truncate_side == TRUNCATE_RIGHT,
          "batch shape");
    predict_request_free(&req);

    CHECK(parse("{\"inputs\": \"t\"}", 1, &req, &e) == 0 && req.shape == SHAPE_TEI_ONE && !req.pairs[0], "inputs str");
    predict_request_free(&req);
    CHECK(parse("{\"inputs\": \"t\", \"truncation_direction\": \"left\"}", 1, &req, &e) == 0 &&
              req.truncate_side == TRUNCATE_LEFT,
          "truncation_direction left: %s", e.msg);
    predict_request_free(&req);

    expect_error("", 4, ERROR_INVALID_JSON, "not valid JSON");
    expect_error("{\"text\": \"a\"", 4, ERROR_INVALID_JSON, "not valid JSON");
    expect_error("{\"text\": \"\\ud800\"}", 4, ERROR_VALIDATION, "surrogate");
    expect_error("[1]", 4, ERROR_VALIDATION, "JSON object");
    expect_error("{}", 4, ERROR_VALIDATION, "missing");
    expect_error("{\"text\": \"a\", \"inputs\": \"b\"}", 4, ERROR_VALIDATION, "only one");
    expect_error("{\"text\": 1}", 4, ERROR_VALIDATION, "\"text\" must be a string");
    expect_error("{\"text\": \"a\", \"truncate\": 1}", 4, ERROR_VALIDATION, "truncate");
    expect_error("{\"text\": \"a\", \"raw_scores\": null}", 4, ERROR_VALIDATION, "raw_scores");
    expect_error("{\"text\": \"a\", \"truncation_direction\": \"up\"}", 4, ERROR_VALIDATION, "\"right\" or \"left\"");
    expect_error("{\"texts\": []}", 4, ERROR_VALIDATION, "empty");
    expect_error("{\"texts\": [\"a\", \"b\", \"c\"]}", 2, ERROR_VALIDATION, "3 texts, more than the limit of 2");
    expect_error("{\"texts\": [\"a\", 2]}", 4, ERROR_VALIDATION, "every item");
    expect_error("{\"inputs\": [\"a\", \"b\", \"c\"]}", 2, ERROR_VALIDATION, "3 inputs, more than the limit of 2");
    expect_error("{\"inputs\": [\"a\", [\"b\", \"c\", \"d\"]]}", 4, ERROR_VALIDATION, "inputs[1]");
    expect_error("{\"inputs\": {}}", 4, ERROR_VALIDATION, "\"inputs\" must be");

    /* One JSON value and nothing after it; no raw control character inside a string (RFC 8259). */
    expect_error("{\"text\": \"a\"} xyz", 4, ERROR_INVALID_JSON, "data after the JSON value at byte 14");
    expect_error("{\"text\": \"a\"}{\"text\": \"b\"}", 4, ERROR_INVALID_JSON, "after the JSON value");
    expect_error("{\"text\": \"a\tb\"}", 4, ERROR_INVALID_JSON, "raw control character (0x09) at byte 11");
    expect_error("{\"text\": \"a\x01\"}", 4, ERROR_INVALID_JSON, "(0x01)");
    expect_error("{\"text\":\x02 \"a\"}", 4, ERROR_INVALID_JSON, "(0x02)");
    CHECK(parse("\r\n{\"text\":\t\"a\\\"\\u0009\"}\n ", 4, &req, &e) == 0 && !strcmp(req.texts[0], "a\"\t"),
          "whitespace around the value and escapes inside the string are fine: %s", e.msg);
    predict_request_free(&req);
    {
        static const char nul_inside[] = "{\"text\":\"Profit\0 rose sharply.\"}";
        char body[sizeof nul_inside];
        memcpy(body, nul_inside, sizeof body);
        struct predict_limits lim4 = {.max_texts = 4};
        CHECK(predict_request_parse(body, sizeof body - 1, &lim4, &req, &e) == -1 && e.kind == ERROR_INVALID_JSON &&
                  strstr(e.msg, "(0x00) at byte 15"),
              "a raw NUL inside a string: %s", e.msg);
    }

    struct predict_limits lim = {.max_texts = 4};
    CHECK(predict_request_parse(NULL, 0, &lim, &req, &e) == -1 && e.kind == ERROR_INVALID_JSON, "a NULL empty body");

    /* KServe v2: [n] flat, [n, 1] nested, [n, 2] pairs; "id" and "outputs" kept. */
    struct predict_limits v2 = {.max_texts = 3, .route = REQUEST_V2_INFER};
    char flat[] = "{\"id\": \"7\", \"inputs\": [{\"name\": \"t\", \"shape\": [2], \"datatype\": \"BYTES\", "
                  "\"data\": [\"a\", \"b\"]}]}";
    CHECK(predict_request_parse(flat, strlen(flat), &v2, &req, &e) == 0, "v2 flat: %s", e.msg);
    CHECK(req.shape == SHAPE_V2 && req.n == 2 && !strcmp(req.texts[1], "b") && !req.pairs[0] && !strcmp(req.v2_id, "7") &&
              req.v2_n_outputs == 2 && req.v2_outputs[0] == V2_OUTPUT_LABEL && req.truncate,
          "v2 flat shape");
    predict_request_free(&req);
    char nested[] = "{\"inputs\": [{\"name\": \"t\", \"shape\": [2, 2], \"datatype\": \"BYTES\", "
                    "\"data\": [[\"q1\", \"d1\"], [\"q2\", \"d2\"]]}], \"outputs\": [{\"name\": \"probabilities\"}]}";
    CHECK(predict_request_parse(nested, strlen(nested), &v2, &req, &e) == 0, "v2 pairs: %s", e.msg);
    CHECK(req.n == 2 && !strcmp(req.texts[1], "q2") && !strcmp(req.pairs[1], "d2") && !req.v2_id && req.v2_n_outputs == 1 &&
              req.v2_outputs[0] == V2_OUTPUT_PROBABILITIES,
          "v2 pairs shape");
    predict_request_free(&req);
    static const struct {
        const char *body, *frag;
    } v2_bad[] = {
        {"{\"inputs\": []}", "one tensor"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [1]}]}", "BYTES"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1, 3], \"datatype\": \"BYTES\", \"data\": [\"a\", \"b\", \"c\"]}]}", "shape"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1.5], \"datatype\": \"BYTES\", \"data\": [\"a\"]}]}", "shape"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [0], \"datatype\": \"BYTES\", \"data\": []}]}", "empty"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [4], \"datatype\": \"BYTES\", \"data\": [\"a\", \"b\", \"c\", \"d\"]}]}", "limit of 3"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [2], \"datatype\": \"BYTES\", \"data\": [\"a\"]}]}", "hold 2 strings"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [\"a\", \"b\"]}]}", "hold 1 strings"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [3]}]}", "nothing else"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [\"a\"]}], \"outputs\": "
         "[{\"name\": \"logits\"}]}", "unknown output"},
        {"{\"inputs\": [{\"name\": \"t\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [\"a\"]}], \"id\": 1}", "\"id\""},
    };
    for (size_t i = 0; i < sizeof v2_bad / sizeof v2_bad[0]; i++) {
        char *copy = strdup(v2_bad[i].body);
        int rc = predict_request_parse(copy, strlen(copy), &v2, &req, &e);
        CHECK(rc == -1 && e.kind == ERROR_VALIDATION && strstr(e.msg, v2_bad[i].frag), "v2 %s: %d %s", v2_bad[i].body, rc,
              e.msg);
        CHECK(!req.root && !req.texts && req.n == 0, "v2 %s: a failure left a request", v2_bad[i].body);
        if (rc == 0)
            predict_request_free(&req);
        free(copy);
    }
    return test_finish("test_request");
}
