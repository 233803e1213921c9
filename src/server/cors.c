#include "server/cors.h"

#include <string.h>

/* The next comma-separated entry of *p, trimmed of spaces: its start and length; *p moves past
 * it. False at the end of the list. */
static bool next_entry(const char **p, const char **start, size_t *len)
{
    const char *s = *p;
    if (!*s)
        return false;
    const char *comma = strchr(s, ',');
    const char *end = comma ? comma : s + strlen(s);
    *p = comma ? comma + 1 : end;
    while (s < end && *s == ' ')
        s++;
    while (end > s && end[-1] == ' ')
        end--;
    *start = s;
    *len = (size_t)(end - s);
    return true;
}

int cors_check_list(const char *list, char *err)
{
    const char *p = list, *entry;
    size_t len;
    int n = 0;
    while (next_entry(&p, &entry, &len)) {
        n++;
        if (len == 1 && *entry == '*')
            continue;
        const char *sep = len > 3 ? strstr(entry, "://") : NULL;
        bool ok = sep && sep < entry + len && sep > entry && sep + 3 < entry + len;
        /* scheme://host[:port]: nothing after the authority (browsers send no path or slash) */
        for (const char *c = sep ? sep + 3 : entry; ok && c < entry + len; c++)
            ok = *c != '/' && *c != ' ' && *c != '?' && *c != '#';
        if (!ok)
            return bs_fail(err, "--cors-allow-origin: \"%.*s\" is not an origin (scheme://host[:port], or *)",
                           (int)len, entry);
    }
    if (n == 0)
        return bs_fail(err, "--cors-allow-origin: no origin given");
    return 0;
}

const char *cors_allow_origin(const char *list, const char *origin)
{
    if (!list || !origin || !*origin)
        return NULL;
    const char *p = list, *entry;
    size_t len;
    while (next_entry(&p, &entry, &len)) {
        if (len == 1 && *entry == '*')
            return "*";
        if (len == strlen(origin) && !strncmp(entry, origin, len))
            return origin;
    }
    return NULL;
}
