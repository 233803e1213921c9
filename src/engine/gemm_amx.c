#define _DEFAULT_SOURCE /* syscall() with -D_POSIX_C_SOURCE in ISO C mode */
/* AMX detection and Linux's permission for tile data (gemm_amx.h). */
#include "engine/gemm_amx.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#if defined(__x86_64__) && defined(__linux__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* arch_prctl codes and the XSAVE feature number of the tiles' data (linux/arch/x86 uapi
 * asm/prctl.h and the SDM): not in every libc's headers, so spelled out. */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILECFG 17
#define XFEATURE_XTILEDATA 18
#endif

static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static int detected;           /* GEMM_AMX_* this process may run, once detect() is done */
static const char *why = "not on this CPU";
static char refused[80];       /* why, when the kernel refused (it names errno) */
static atomic_bool forbidden;  /* gemm_amx_allow(false) */

#if defined(__x86_64__) && defined(__linux__)
/* XCR0: which register states the OS saves on a context switch (xgetbv, ecx = 0). Inline
 * assembly rather than _xgetbv, which needs the xsave target on the whole function. */
static uint64_t xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* CPUID rather than __builtin_cpu_supports("amx-tile"): the OS checks below need CPUID anyway,
 * and the bits are the SDM's: leaf 7 EDX bit 24 AMX-TILE, 22 AMX-BF16, 25 AMX-INT8. */
static void detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> 24 & 1))
        return; /* "not on this CPU" */
    int cpu = (d >> 22 & 1 ? GEMM_AMX_BF16 : 0) | (d >> 25 & 1 ? GEMM_AMX_INT8 : 0);
    if (!cpu) {
        why = "tiles without AMX-BF16 or AMX-INT8 on this CPU";
        return;
    }
    /* xgetbv is defined only once the OS has turned XSAVE on (CPUID leaf 1 ECX bit 27). */
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c >> 27 & 1)) {
        why = "not enabled by the OS (no OSXSAVE)";
        return;
    }
    uint64_t tiles = (uint64_t)1 << XFEATURE_XTILECFG | (uint64_t)1 << XFEATURE_XTILEDATA;
    if ((xcr0() & tiles) != tiles) {
        why = "not enabled by the OS (XCR0 lacks the tile state)";
        return;
    }
    /* Process-wide: every thread, those running already included, may then use the tiles. */
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) {
        snprintf(refused, sizeof refused, "the kernel refused XTILEDATA (errno %d)", errno);
        why = refused;
        return;
    }
    detected = cpu;
    why = cpu == (GEMM_AMX_BF16 | GEMM_AMX_INT8) ? "in use (amx-bf16, amx-int8)"
          : cpu == GEMM_AMX_BF16                 ? "in use (amx-bf16 only)"
                                                 : "in use (amx-int8 only)";
}
#else
static void detect(void) { why = "not on this CPU (not x86-64 Linux)"; }
#endif

int gemm_amx_features(void)
{
    pthread_once(&detect_once, detect);
    return atomic_load_explicit(&forbidden, memory_order_relaxed) ? 0 : detected;
}

const char *gemm_amx_status(void)
{
    pthread_once(&detect_once, detect);
    if (detected && atomic_load_explicit(&forbidden, memory_order_relaxed))
        return "turned off (gemm_amx_allow)";
    return why;
}

void gemm_amx_allow(bool allow) { atomic_store(&forbidden, !allow); }
