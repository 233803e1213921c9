/* cgroup CPU quota parsing and the walk over fake cgroup trees (v2, v1, hybrid, nested limits,
 * a container's view without a cgroup namespace), built in a temporary directory. */
#define _GNU_SOURCE /* mkdtemp */
#include "check.h"
#include "common/cpu_budget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char root[64];

/* Writes text to root/rel, creating the directories on the way. */
static void put(const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        mkdir(path, 0755);
        *p = '/';
    }
    FILE *f = fopen(path, "w");
    CHECK(f != NULL, "cannot write %s", path);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A fresh tree for each case. */
static void fresh(void)
{
    char cmd[128];
    if (root[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        CHECK(system(cmd) == 0, "cannot remove %s", root);
    }
    strcpy(root, "/tmp/test_cpu_budget.XXXXXX");
    CHECK(mkdtemp(root) != NULL, "mkdtemp failed");
}

static void expect(const char *what, int affinity, int cpus, const char *source_has)
{
    char self[128];
    snprintf(self, sizeof self, "%s/self_cgroup", root);
    struct cpu_budget b;
    cpu_budget_read(root, self, affinity, &b);
    CHECK(b.cpus == cpus, "%s: %d CPUs, expected %d (%s)", what, b.cpus, cpus, b.source);
    CHECK(b.affinity == (affinity < 1 ? 1 : affinity), "%s: affinity %d", what, b.affinity);
    CHECK(strstr(b.source, source_has) != NULL, "%s: source \"%s\" lacks \"%s\"", what, b.source, source_has);
}

int main(void)
{
    long q, p;
    char err[512];
    /* the parsers */
    CHECK(cpu_max_parse("max 100000\n", &q, &p, err) == 0 && p == 100000, "cpu.max max");
    CHECK(cpu_max_parse("150000 100000\n", &q, &p, err) == 1 && q == 150000 && p == 100000, "cpu.max 1.5");
    CHECK(cpu_max_parse("50000 100000", &q, &p, err) == 1 && q == 50000, "cpu.max without newline");
    CHECK(cpu_max_parse("", &q, &p, err) == -1, "empty cpu.max accepted");
    CHECK(cpu_max_parse("100000\n", &q, &p, err) == -1, "cpu.max without period accepted");
    CHECK(cpu_max_parse("-5 100000\n", &q, &p, err) == -1, "negative cpu.max accepted");
    CHECK(cpu_max_parse("100000 0\n", &q, &p, err) == -1, "zero period accepted");
    CHECK(cpu_max_parse("max 100000 junk\n", &q, &p, err) == -1, "trailing junk accepted");
    CHECK(cfs_quota_parse("-1\n", "100000\n", &q, &p, err) == 0, "v1 unlimited");
    CHECK(cfs_quota_parse("200000\n", "100000\n", &q, &p, err) == 1 && q == 200000 && p == 100000, "v1 2 CPUs");
    CHECK(cfs_quota_parse("abc\n", "100000\n", &q, &p, err) == -1, "v1 junk quota accepted");
    CHECK(cfs_quota_parse("100000\n", "0\n", &q, &p, err) == -1, "v1 zero period accepted");
    CHECK(strstr(err, "cpu.cfs_period_us") != NULL, "v1 error does not name the file: %s", err);

    /* cgroup v2, namespaced: the container's cgroup is the mount's root */
    fresh();
    put("self_cgroup", "0::/\n");
    put("cpu.max", "100000 100000\n");
    expect("v2 one CPU", 16, 1, "cgroup cpu.max 100000/100000");
    put("cpu.max", "150000 100000\n");
    expect("v2 1.5 CPUs rounds up", 16, 2, "cgroup cpu.max 150000/100000");
    put("cpu.max", "20000 100000\n");
    expect("v2 a fifth of a CPU is still one thread", 16, 1, "20000/100000");
    put("cpu.max", "800000 100000\n");
    expect("v2 quota above the affinity count", 2, 2, "affinity 2 CPUs (cgroup cpu.max 800000/100000 allows 8)");
    put("cpu.max", "max 100000\n");
    expect("v2 unlimited", 4, 4, "affinity 4 CPUs, no cgroup quota");
    put("cpu.max", "garbage\n");
    expect("v2 malformed is ignored and named", 4, 4, "ignored");

    /* v2 on a host: the tightest limit on the way up counts, the root has no cpu.max */
    fresh();
    put("self_cgroup", "0::/kubepods.slice/pod1/ctr\n");
    put("kubepods.slice/cpu.max", "300000 100000\n");
    put("kubepods.slice/pod1/cpu.max", "max 100000\n");
    put("kubepods.slice/pod1/ctr/cpu.max", "max 100000\n");
    expect("v2 limit on an ancestor", 8, 3, "300000/100000");
    put("kubepods.slice/pod1/ctr/cpu.max", "200000 100000\n");
    expect("v2 tighter limit on the leaf", 8, 2, "200000/100000");

    /* v2 without a cgroup namespace: the host's path does not exist under the container's mount */
    fresh();
    put("self_cgroup", "0::/system.slice/libpod-abc.scope\n");
    put("cpu.max", "100000 100000\n");
    expect("v2 host path absent, mount root used", 2, 1, "cgroup cpu.max 100000/100000");

    /* cgroup v1 (hybrid, as on this CI's VM): cpu and cpuacct co-mounted or apart */
    fresh();
    put("self_cgroup", "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n1:name=systemd:/y\n0::/\n");
    put("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "100000\n");
    put("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    put("cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
    put("cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    put("unified/cgroup.procs", "");
    expect("v1 co-mounted", 2, 1, "cgroup v1 cpu.cfs_quota_us/cpu.cfs_period_us 100000/100000");

    fresh();
    put("self_cgroup", "3:cpuacct:/\n2:cpu:/\n0::/\n");
    put("cpu/cpu.cfs_quota_us", "250000\n");
    put("cpu/cpu.cfs_period_us", "100000\n");
    expect("v1 separate cpu hierarchy", 4, 3, "250000/100000");
    put("cpu/cpu.cfs_quota_us", "-1\n");
    expect("v1 unlimited", 4, 4, "no cgroup quota");

    /* "cpuset" must not pass for the cpu controller */
    fresh();
    put("self_cgroup", "3:cpuset:/\n");
    put("cpuset/cpu.cfs_quota_us", "100000\n");
    put("cpuset/cpu.cfs_period_us", "100000\n");
    expect("cpuset is not cpu", 4, 4, "no cgroup quota");

    /* no /proc/self/cgroup at all (not Linux cgroups): the affinity count */
    fresh();
    expect("no cgroup file", 3, 3, "affinity 3 CPUs");
    expect("affinity below 1 is 1", 0, 1, "affinity 1 CPUs");

    /* this machine: whatever it is, a sane answer */
    struct cpu_budget b;
    cpu_budget_detect(&b);
    CHECK(b.cpus >= 1 && b.cpus <= b.affinity && b.source[0], "detect: %d of %d (%s)", b.cpus, b.affinity, b.source);
    printf("this process: %d CPUs (%s)\n", b.cpus, b.source);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0, "cannot remove %s", root);
    return test_finish("test_cpu_budget");
}
