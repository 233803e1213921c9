#include "json_text.h"

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
