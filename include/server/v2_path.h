/* The KServe v2 / Open Inference Protocol routes' paths: templates whose {name} and {version}
 * segments stand for a model's name and version. A function of the URL alone, apart from HTTP. */
#ifndef V2_PATH_H
#define V2_PATH_H

#include "server/metrics.h"

#define V2_NAME_MAX 255
#define V2_VERSION_MAX 64

/* Every template and its route (the metrics label names the route, not the path: the versions
 * forms count with the plain ones). ctest openapi_contract reads this table. */
struct v2_template {
    const char *path;
    enum metrics_route route;
};
extern const struct v2_template v2_templates[];
extern const int v2_template_count;

/* The route of url among the templates, its {name} into name and its {version} into version
 * ("" when the template has none); ROUTE_OTHER when no template matches (a segment of {name} or
 * {version} is 1 to V2_NAME_MAX or V2_VERSION_MAX bytes, any but '/'). */
enum metrics_route v2_route_of(const char *url, char name[V2_NAME_MAX + 1], char version[V2_VERSION_MAX + 1]);

#endif
