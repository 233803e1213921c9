/* How many CPUs the process may really use. In a container the affinity mask still shows the
 * node's cores, while the CPU limit is a cgroup quota (a pod with `limits.cpu: 1` on a 16-core
 * node gets 16 CPUs in its mask but one CPU-second per second); sizing threads from the mask
 * there makes them fight over the quota and get throttled. */
#ifndef CPU_BUDGET_H
#define CPU_BUDGET_H

struct cpu_budget {
    int cpus;         /* threads worth running: the affinity count, lowered by a cgroup quota */
    int affinity;     /* CPUs in the affinity mask */
    char source[256]; /* how cpus was chosen, e.g. "cgroup cpu.max 100000/100000" */
};

/* Parses a cgroup v2 cpu.max ("max 100000" or "150000 100000"). Returns 1 with *quota and
 * *period for a limit, 0 for "max" (no limit), -1 with err if the text is malformed. */
int cpu_max_parse(const char *text, long *quota, long *period, char *err);

/* Parses cgroup v1 cpu.cfs_quota_us and cpu.cfs_period_us texts. Same returns as cpu_max_parse
 * (a quota of -1 is no limit). */
int cfs_quota_parse(const char *quota_text, const char *period_text, long *quota, long *period, char *err);

/* Fills b from the cgroup files under cgroup_root (normally /sys/fs/cgroup) for the cgroups
 * listed in self_cgroup (normally /proc/self/cgroup) and the given affinity count: the tightest
 * quota on the way from the process's cgroup up to the root, ceil(quota/period), at least 1 and
 * at most affinity. Missing files mean no limit; a malformed one is named in b->source and
 * ignored. */
void cpu_budget_read(const char *cgroup_root, const char *self_cgroup, int affinity, struct cpu_budget *b);

/* CPUs in this process's affinity mask (at least 1). */
int cpu_count_available(void);

/* cpu_budget_read on this process: /sys/fs/cgroup, /proc/self/cgroup, its affinity mask. */
void cpu_budget_detect(struct cpu_budget *b);

#endif
