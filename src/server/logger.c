#include "server/logger.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void timestamp(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Text format: plain words stay bare, anything with spaces, quotes or '=' is JSON-quoted so a
 * line always splits back into its fields. */
static void append_text_value(char **buf, size_t *len, size_t *cap, const cJSON *v);

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t cap2 = need * 2;
    char *b = realloc(*buf, cap2);
    if (!b)
        return -1;
    *buf = b;
    *cap = cap2;
    return 0;
}

static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (grow(buf, cap, *len + n + 1))
        return;
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

static void append_text_value(char **buf, size_t *len, size_t *cap, const cJSON *v)
{
    char num[64];
    if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        bool bare = *s != '\0';
        for (const char *c = s; *c && bare; c++)
            bare = (unsigned char)*c > ' ' && *c != '"' && *c != '=' && (unsigned char)*c < 0x7f;
        if (bare) {
            append(buf, len, cap, s);
            return;
        }
        char *quoted = cJSON_PrintUnformatted(v);
        if (quoted)
            append(buf, len, cap, quoted);
        free(quoted);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == floor(d) && fabs(d) < 1e15)
            snprintf(num, sizeof num, "%.0f", d);
        else
            snprintf(num, sizeof num, "%.3f", d);
        append(buf, len, cap, num);
    } else if (cJSON_IsBool(v)) {
        append(buf, len, cap, cJSON_IsTrue(v) ? "true" : "false");
    } else {
        char *s = cJSON_PrintUnformatted(v);
        if (s)
            append(buf, len, cap, s);
        free(s);
    }
}

void log_event(bool json, const char *event, cJSON *fields)
{
    char ts[32];
    timestamp(ts);
    char *line = NULL;
    size_t len = 0, cap = 0;
    if (json) {
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
        line = cJSON_PrintUnformatted(out);
        cJSON_Delete(out);
        if (line) {
            len = strlen(line);
            cap = len + 1;
        }
    } else {
        append(&line, &len, &cap, ts);
        append(&line, &len, &cap, " ");
        append(&line, &len, &cap, event);
        for (const cJSON *f = fields ? fields->child : NULL; f; f = f->next) {
            append(&line, &len, &cap, " ");
            append(&line, &len, &cap, f->string);
            append(&line, &len, &cap, "=");
            append_text_value(&line, &len, &cap, f);
        }
    }
    cJSON_Delete(fields);
    if (!line)
        return;
    append(&line, &len, &cap, "\n");
    /* One write per line, so lines from different threads never interleave. */
    fwrite(line, 1, len, stderr);
    fflush(stderr);
    free(line);
}
