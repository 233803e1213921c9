#include "server/logger.h"

#include "common/buffer.h"
#include "common/clock.h"
#include "text/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Text format: plain words stay bare, anything with spaces, quotes or '=' is JSON-quoted so a
 * line always splits back into its fields. */
static int append_text_value(struct buffer *line, const cJSON *v)
{
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        return buffer_appendf(line, d == floor(d) && fabs(d) < 1e15 ? "%.0f" : "%.3f", d);
    }
    if (cJSON_IsBool(v))
        return buffer_appendf(line, "%s", cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        bool bare = *s != '\0';
        for (const char *c = s; *c && bare; c++)
            bare = (unsigned char)*c > ' ' && *c != '"' && *c != '=' && (unsigned char)*c < 0x7f;
        if (bare)
            return buffer_appendf(line, "%s", s);
    }
    char *json = cJSON_PrintUnformatted(v); /* a quoted string, or an array or object */
    int rc = json ? buffer_appendf(line, "%s", json) : -1;
    free(json);
    return rc;
}

/* The JSON format: one object, the time and the event name first. */
static int append_json(struct buffer *line, const char *ts, const char *event, cJSON *fields)
{
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "time", ts);
    cJSON_AddStringToObject(out, "event", event);
    if (fields) {
        cJSON *f;
        while ((f = fields->child)) {
            const char *name = f->string;
            cJSON_DetachItemViaPointer(fields, f);
            cJSON_AddItemToObject(out, name, f); /* cJSON copies the key */
        }
    }
    char *json = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    int rc = json ? buffer_appendf(line, "%s", json) : -1;
    free(json);
    return rc;
}

static int append_text(struct buffer *line, const char *ts, const char *event, const cJSON *fields)
{
    int rc = buffer_appendf(line, "%s %s", ts, event);
    for (const cJSON *f = fields ? fields->child : NULL; rc == 0 && f; f = f->next) {
        rc = buffer_appendf(line, " %s=", f->string);
        if (rc == 0)
            rc = append_text_value(line, f);
    }
    return rc;
}

/* A text the client sent (with --log-text, one refused for invalid UTF-8 holds any bytes) must
 * not make a line invalid UTF-8, and so invalid JSON: each invalid byte becomes U+FFFD. */
static int make_valid_utf8(struct buffer *line)
{
    if (utf8_validate(line->data, line->len) == line->len)
        return 0;
    struct buffer valid = {0};
    if (buffer_reserve(&valid, 3 * line->len))
        return -1;
    utf8_copy_valid(valid.data, valid.cap, line->data, line->len);
    valid.len = strlen(valid.data);
    buffer_free(line);
    *line = valid;
    return 0;
}

void log_event(bool json, const char *event, cJSON *fields)
{
    char ts[32];
    utc_timestamp(ts);
    struct buffer line = {0};
    int rc = json ? append_json(&line, ts, event, fields) : append_text(&line, ts, event, fields);
    cJSON_Delete(fields);
    /* One write per line, so lines from different threads never interleave; a line that ran
     * out of memory is dropped whole rather than written in part. */
    if (rc == 0 && make_valid_utf8(&line) == 0 && buffer_appendf(&line, "\n") == 0) {
        fwrite(line.data, 1, line.len, stderr);
        fflush(stderr);
    }
    buffer_free(&line);
}
