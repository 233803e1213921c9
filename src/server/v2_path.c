#include "server/v2_path.h"

#include <string.h>

const struct v2_template v2_templates[] = {
    {"/v2", ROUTE_V2_SERVER},
    {"/v2/health/live", ROUTE_V2_LIVE},
    {"/v2/health/ready", ROUTE_V2_READY},
    {"/v2/models/{name}", ROUTE_V2_MODEL},
    {"/v2/models/{name}/versions/{version}", ROUTE_V2_MODEL},
    {"/v2/models/{name}/ready", ROUTE_V2_MODEL_READY},
    {"/v2/models/{name}/versions/{version}/ready", ROUTE_V2_MODEL_READY},
    {"/v2/models/{name}/infer", ROUTE_V2_INFER},
    {"/v2/models/{name}/versions/{version}/infer", ROUTE_V2_INFER},
};
const int v2_template_count = (int)(sizeof v2_templates / sizeof v2_templates[0]);

/* Matches url against one template, segment by segment. */
static bool matches(const char *tpl, const char *url, char *name, char *version)
{
    name[0] = version[0] = '\0';
    while (*tpl && *url) {
        if (*tpl != '/' || *url != '/')
            return false;
        tpl++, url++;
        size_t tn = strcspn(tpl, "/"), un = strcspn(url, "/");
        char *param = !strncmp(tpl, "{name}", tn) && tn == 6         ? name
                      : !strncmp(tpl, "{version}", tn) && tn == 9 ? version
                                                                   : NULL;
        if (param) {
            size_t max = param == name ? V2_NAME_MAX : V2_VERSION_MAX;
            if (un == 0 || un > max)
                return false;
            memcpy(param, url, un);
            param[un] = '\0';
        } else if (tn != un || strncmp(tpl, url, tn)) {
            return false;
        }
        tpl += tn, url += un;
    }
    return !*tpl && !*url;
}

enum metrics_route v2_route_of(const char *url, char name[V2_NAME_MAX + 1], char version[V2_VERSION_MAX + 1])
{
    if (strncmp(url, "/v2", 3))
        return ROUTE_OTHER;
    for (int i = 0; i < v2_template_count; i++)
        if (matches(v2_templates[i].path, url, name, version))
            return v2_templates[i].route;
    name[0] = version[0] = '\0';
    return ROUTE_OTHER;
}
