/* `bertserve --healthcheck`: the container's HEALTHCHECK. The runtime image has no curl, so the
 * daemon's own binary asks the running daemon's /health over loopback. */
#ifndef HEALTHCHECK_H
#define HEALTHCHECK_H

/* GETs http://host:port/health (a wildcard host, 0.0.0.0 or ::, is asked on its loopback
 * address) within timeout_ms. Returns 0 if it answered 200, else -1 with the reason in err. */
int healthcheck(const char *host, int port, int timeout_ms, char *err);

#endif
