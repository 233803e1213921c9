/* POST /tokenize, as text-embeddings-inference answers it: for each input text, its tokens as
 * {"id", "text", "special", "start", "stop"}. start and stop are the token's bytes [start, stop)
 * in its text (HF tokenizers' byte offsets, as TEI returns them: any_tokenizer_hf_span) and
 * "text" is that part of the input; the [CLS] and [SEP] (<s>, </s>) the template adds are
 * special, with their vocabulary string as "text" and null offsets, and are left out with
 * "add_special_tokens": false. Texts are not truncated (TEI does not truncate here either); a
 * request's tokens are bounded by --max-texts x the token limit, the most a /predict may run.
 * Runs on the calling thread: no model, no batcher. */
#ifndef TOKENIZE_H
#define TOKENIZE_H

#include "server/errors.h"
#include "server/infer.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/* Parses body (len bytes, not NUL-terminated, rewritten in place and not kept), tokenizes
 * every input and returns the answer: a list with one list of tokens per input. NULL with e:
 * ERROR_INVALID_JSON, ERROR_VALIDATION (a bad body, an empty or invalid text),
 * ERROR_TEXT_TOO_LONG (over the token bound), ERROR_INTERNAL. */
cJSON *tokenize_answer(const struct infer_service *s, char *body, size_t len, struct service_error *e);

#endif
