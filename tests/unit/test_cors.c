/* The CORS origin list (server/cors.h): which lists are accepted and which Origin headers
 * each allows, without sockets (tests/daemon/cors_test.py covers the headers on the wire). */
#include "check.h"
#include "server/cors.h"

#include <string.h>

static void expect_list(const char *list, bool ok)
{
    char err[BS_ERR_LEN] = "";
    int rc = cors_check_list(list, err);
    CHECK((rc == 0) == ok, "\"%s\": %s (%s)", list, rc == 0 ? "accepted" : "refused", err);
    CHECK(ok || strstr(err, "--cors-allow-origin"), "\"%s\": the message \"%s\" names no flag", list, err);
}

static void expect_allow(const char *list, const char *origin, const char *want)
{
    const char *got = cors_allow_origin(list, origin);
    CHECK(want ? got && !strcmp(got, want) : !got, "list \"%s\", Origin \"%s\": \"%s\", want \"%s\"",
          list ? list : "(none)", origin ? origin : "(none)", got ? got : "(none)", want ? want : "(none)");
}

int main(void)
{
    expect_list("*", true);
    expect_list("http://a.example", true);
    expect_list("http://a.example, https://b.example:8443", true);
    expect_list(" http://a.example ,http://localhost:3000 ", true);
    expect_list("", false);
    expect_list(",", false);
    expect_list("http://a.example,,http://b.example", false);
    expect_list("a.example", false);
    expect_list("http://a.example/", false);
    expect_list("http://a.example/path", false);
    expect_list("http://", false);
    expect_list("://a.example", false);
    expect_list("http://a.example?x", false);

    const char *list = "http://a.example, https://b.example:8443";
    expect_allow(list, "http://a.example", "http://a.example");
    expect_allow(list, "https://b.example:8443", "https://b.example:8443");
    expect_allow(list, "https://b.example", NULL);
    expect_allow(list, "http://a.example.evil", NULL);
    expect_allow(list, "http://a.exampl", NULL);
    expect_allow(list, "", NULL);
    expect_allow(list, NULL, NULL);
    expect_allow(NULL, "http://a.example", NULL); /* CORS off */
    expect_allow("*", "http://anything.example", "*");
    expect_allow("http://a.example,*", "http://x.example", "*");
    expect_allow("*", NULL, NULL); /* not a cross-origin request: no headers */
    return test_finish("test_cors");
}
