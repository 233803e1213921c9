#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "common/cpu_budget.h"

#include "common/bs_error.h"
#include "common/fileio.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One positive integer field of a cgroup file; *end is past it. */
static bool parse_long(const char *s, long *v, const char **end)
{
    char *e;
    errno = 0;
    long x = strtol(s, &e, 10);
    if (e == s || errno)
        return false;
    *v = x;
    *end = e;
    return true;
}

static bool only_space(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\t')
        s++;
    return !*s;
}

int cpu_max_parse(const char *text, long *quota, long *period, char *err)
{
    const char *p = text;
    bool unlimited = !strncmp(p, "max", 3);
    if (unlimited)
        p += 3;
    else if (!parse_long(p, quota, &p) || *quota <= 0)
        return bs_fail(err, "cpu.max: expected \"max\" or a positive quota, got \"%.40s\"", text);
    if (*p != ' ' || !parse_long(p + 1, period, &p) || *period <= 0 || !only_space(p))
        return bs_fail(err, "cpu.max: expected \"QUOTA PERIOD\", got \"%.40s\"", text);
    return unlimited ? 0 : 1;
}

int cfs_quota_parse(const char *quota_text, const char *period_text, long *quota, long *period, char *err)
{
    const char *p;
    if (!parse_long(quota_text, quota, &p) || !only_space(p) || *quota == 0 || *quota < -1)
        return bs_fail(err, "cpu.cfs_quota_us: expected -1 or a positive number, got \"%.40s\"", quota_text);
    if (!parse_long(period_text, period, &p) || !only_space(p) || *period <= 0)
        return bs_fail(err, "cpu.cfs_period_us: expected a positive number, got \"%.40s\"", period_text);
    return *quota == -1 ? 0 : 1;
}

/* Reads a small file into buf. 1: read; 0: it does not exist (no limit at that level). */
static int read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return 1;
}

struct search {
    int best;           /* fewest CPUs any quota allows so far; 0: no quota seen */
    char best_what[96];
    char problem[128];  /* the first malformed file, reported rather than trusted */
};

static void consider(struct search *s, long quota, long period, const char *what)
{
    long cpus = (quota + period - 1) / period; /* a quota of 1.5 CPUs keeps two threads busy */
    if (cpus < 1)
        cpus = 1;
    if (s->best == 0 || cpus < s->best) {
        s->best = cpus > 1 << 20 ? 1 << 20 : (int)cpus;
        snprintf(s->best_what, sizeof s->best_what, "%s %ld/%ld", what, quota, period);
    }
}

/* The quota files in dir (a cgroup directory), v2 or v1 depending on v2. */
static void check_dir(struct search *s, const char *dir, bool v2)
{
    char path[BS_PATH_LEN], text[128], text2[128], err[BS_ERR_LEN];
    long quota = 0, period = 0;
    int r;
    if (v2) {
        if (path_join(path, dir, "cpu.max", err) || !read_small(path, text, sizeof text))
            return;
        r = cpu_max_parse(text, &quota, &period, err);
    } else {
        if (path_join(path, dir, "cpu.cfs_quota_us", err) || !read_small(path, text, sizeof text) ||
            path_join(path, dir, "cpu.cfs_period_us", err) || !read_small(path, text2, sizeof text2))
            return;
        r = cfs_quota_parse(text, text2, &quota, &period, err);
    }
    if (r < 0 && !s->problem[0])
        snprintf(s->problem, sizeof s->problem, "%.60s: %.60s", dir, err);
    if (r == 1)
        consider(s, quota, period, v2 ? "cgroup cpu.max" : "cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us");
}

/* Checks mount/cgroup_path and each of its ancestors up to mount itself: a limit anywhere above
 * the process applies to it. Without a cgroup namespace the path names the cgroup as the host
 * sees it, which does not exist under a container's own cgroup mount; the walk then ends at the
 * mount, which is the container's cgroup. */
static void walk_up(struct search *s, const char *mount, const char *cgroup_path, bool v2)
{
    char dir[BS_PATH_LEN];
    int n = snprintf(dir, sizeof dir, "%s%s%s", mount, cgroup_path[0] == '/' ? "" : "/", cgroup_path);
    if (n < 0 || (size_t)n >= sizeof dir)
        return;
    size_t mount_len = strlen(mount);
    for (;;) {
        size_t len = strlen(dir);
        while (len > mount_len && dir[len - 1] == '/')
            dir[--len] = '\0';
        check_dir(s, dir, v2);
        if (len <= mount_len)
            break;
        char *slash = strrchr(dir + mount_len, '/');
        if (!slash)
            break;
        *slash = '\0';
    }
}

/* True if the comma-separated controller list names the cpu controller. */
static bool has_cpu_controller(const char *list, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && list[j] != ',')
            j++;
        if (j - i == 3 && !strncmp(list + i, "cpu", 3))
            return true;
        i = j + 1;
    }
    return false;
}

void cpu_budget_read(const char *cgroup_root, const char *self_cgroup, int affinity, struct cpu_budget *b)
{
    struct search s = {0};
    if (affinity < 1)
        affinity = 1;
    size_t len = 0;
    char err[BS_ERR_LEN];
    char *lines = read_whole_file(self_cgroup, 1 << 20, &len, err);
    /* Lines are "ID:CONTROLLERS:PATH"; "0::PATH" is the v2 (unified) hierarchy. */
    for (char *line = lines, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        else
            next = line + strlen(line);
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        const char *controllers = c1 + 1, *path = c2 + 1;
        size_t clen = (size_t)(c2 - controllers);
        char mount[BS_PATH_LEN];
        if (clen == 0) {
            walk_up(&s, cgroup_root, path, true);
        } else if (has_cpu_controller(controllers, clen)) {
            /* v1 mounts a hierarchy at a directory named after its controllers ("cpu,cpuacct"). */
            int n = snprintf(mount, sizeof mount, "%s/%.*s", cgroup_root, (int)clen, controllers);
            if (n > 0 && (size_t)n < sizeof mount)
                walk_up(&s, mount, path, false);
        }
    }
    free(lines);

    b->affinity = affinity;
    const char *note_sep = s.problem[0] ? "; ignored " : "";
    if (s.best == 0) {
        b->cpus = affinity;
        snprintf(b->source, sizeof b->source, "affinity %d CPUs, no cgroup quota%s%.127s", affinity, note_sep,
                 s.problem);
    } else if (s.best >= affinity) {
        b->cpus = affinity;
        snprintf(b->source, sizeof b->source, "affinity %d CPUs (%.95s allows %d)%s%.100s", affinity, s.best_what,
                 s.best, note_sep, s.problem);
    } else {
        b->cpus = s.best;
        snprintf(b->source, sizeof b->source, "%.95s%s%.127s", s.best_what, note_sep, s.problem);
    }
}

void cpu_budget_detect(struct cpu_budget *b)
{
    cpu_budget_read("/sys/fs/cgroup", "/proc/self/cgroup", cpu_count_available(), b);
}

int cpu_count_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}
