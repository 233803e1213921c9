#include "common/json_text.h"

#include <stdlib.h>
#include <string.h>

void json_replace_nul_escapes(char *json, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (json[i] != '\\')
            continue;
        if (json[i + 1] == 'u' && i + 6 <= len && memcmp(json + i + 2, "0000", 4) == 0)
            memcpy(json + i + 2, "FFFD", 4);
        i++; /* skip the escaped character, so "\\" never starts another escape */
    }
}

/* The code unit of a \uXXXX escape at json[i] (json[i] == '\\'), or -1. */
static long escape_unit(const char *json, size_t len, size_t i)
{
    if (i + 6 > len || json[i] != '\\' || json[i + 1] != 'u')
        return -1;
    char hex[5];
    memcpy(hex, json + i + 2, 4);
    hex[4] = '\0';
    char *end;
    long unit = strtol(hex, &end, 16);
    return *end ? -1 : unit;
}

bool json_has_lone_surrogate(const char *json, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (json[i] != '\\')
            continue;
        long unit = escape_unit(json, len, i);
        if (unit >= 0xD800 && unit <= 0xDBFF) { /* a high surrogate needs a low one next */
            long next = escape_unit(json, len, i + 6);
            if (next < 0xDC00 || next > 0xDFFF)
                return true;
            i += 11; /* past both escapes */
            continue;
        }
        if (unit >= 0xDC00 && unit <= 0xDFFF)
            return true;
        i++;
    }
    return false;
}

cJSON *json_add_number_map(cJSON *obj, const char *name, char *const *keys, const float *values, int n)
{
    cJSON *map = cJSON_AddObjectToObject(obj, name);
    for (int k = 0; map && k < n; k++)
        if (!cJSON_AddNumberToObject(map, keys[k], values[k]))
            return NULL;
    return map;
}

size_t json_raw_control_byte(const char *json, size_t len)
{
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)json[i];
        if (c < 0x20 && (in_string || (c != '\t' && c != '\n' && c != '\r')))
            return i;
        if (in_string && c == '\\')
            i++; /* an escaped quote does not end the string; cJSON refuses any escape not in JSON */
        else if (c == '"')
            in_string = !in_string;
    }
    return len;
}
