#define _GNU_SOURCE /* getaddrinfo and friends with -D_POSIX_C_SOURCE in ISO C mode */
#include "server/healthcheck.h"

#include "common/bs_error.h"
#include "common/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Waits for events on fd until deadline (monotonic ms). 0 when ready, -1 on timeout/error. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - (long long)(monotonic_seconds() * 1000.0);
        if (left <= 0)
            return -1;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to one address without blocking past deadline. The socket, or -1 with err. */
static int connect_by(const struct addrinfo *a, long long deadline, char *err)
{
    int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0)
        return bs_fail(err, "socket: %s", strerror(errno));
    int flags = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (connect(fd, a->ai_addr, a->ai_addrlen) && errno != EINPROGRESS) {
        bs_fail(err, "connect: %s", strerror(errno));
        close(fd);
        return -1;
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (wait_fd(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) || so_error) {
        bs_fail(err, "connect: %s", so_error ? strerror(so_error) : "timed out");
        close(fd);
        return -1;
    }
    return fd;
}

int healthcheck(const char *host, int port, int timeout_ms, char *err)
{
    if (port <= 0)
        return bs_fail(err, "--healthcheck needs the daemon's real port, not %d", port);
    /* A daemon listening on every address is reachable on loopback; ask there. */
    if (!strcmp(host, "0.0.0.0") || !*host)
        host = "127.0.0.1";
    else if (!strcmp(host, "::") || !strcmp(host, "[::]"))
        host = "::1";
    long long deadline = (long long)(monotonic_seconds() * 1000.0) + timeout_ms;

    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *addrs = NULL;
    int gai = getaddrinfo(host, port_text, &hints, &addrs);
    if (gai)
        return bs_fail(err, "%s: %s", host, gai_strerror(gai));
    int fd = -1;
    for (const struct addrinfo *a = addrs; a && fd < 0; a = a->ai_next)
        fd = connect_by(a, deadline, err);
    freeaddrinfo(addrs);
    if (fd < 0)
        return -1; /* err says why the last address failed */

    char req[512];
    bool v6 = strchr(host, ':') != NULL;
    int n = snprintf(req, sizeof req, "GET /health HTTP/1.0\r\nHost: %s%s%s:%d\r\nConnection: close\r\n\r\n",
                     v6 ? "[" : "", host, v6 ? "]" : "", port);
    int rc = -1;
    ssize_t sent = 0;
    while (sent < n) {
        if (wait_fd(fd, POLLOUT, deadline)) {
            bs_fail(err, "sending the request timed out");
            goto out;
        }
        ssize_t w = send(fd, req + sent, (size_t)(n - sent), MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            bs_fail(err, "send: %s", strerror(errno));
            goto out;
        }
        if (w > 0)
            sent += w;
    }
    /* Only the status line matters: "HTTP/1.x 200 ...". */
    char resp[64];
    size_t got = 0;
    while (got < sizeof resp - 1 && !memchr(resp, '\n', got)) {
        if (wait_fd(fd, POLLIN, deadline)) {
            bs_fail(err, "no answer within %d ms", timeout_ms);
            goto out;
        }
        ssize_t r = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0 && errno != EAGAIN && errno != EINTR) {
            bs_fail(err, "recv: %s", strerror(errno));
            goto out;
        }
        if (r > 0)
            got += (size_t)r;
    }
    resp[got] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1) {
        bs_fail(err, "not an HTTP answer: \"%.30s\"", resp);
        goto out;
    }
    if (status != 200) {
        bs_fail(err, "/health answered %d", status);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}
