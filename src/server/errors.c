#include "server/errors.h"

#include <stdarg.h>
#include <stdio.h>

int service_fail(struct service_error *e, enum error_kind kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->kind = kind;
    return -1;
}
