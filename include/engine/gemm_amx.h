/* Intel AMX (Advanced Matrix Extensions: Sapphire Rapids and later) for the bf16 and int8
 * products (issue 19): whether this process may run the tile instructions, and if not, why.
 *
 * AMX adds eight tile registers of up to 16 rows x 64 bytes and two instructions the kernels
 * use: tdpbf16ps (C fp32 += A bf16 pairs . B bf16 pairs) and tdpbusd (C int32 += A u8 quads .
 * B s8 quads). Their 8 KB of tile state is too large for Linux to give every thread by default:
 * a process must ask once (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA) before any of its
 * threads touches a tile, or the first tile instruction kills it with SIGILL. gemm_amx_features
 * asks, once per process, when a kernel is first chosen; if the CPU lacks AMX or the kernel
 * refuses, the products run on the AVX-512 (or portable) kernels and gemm_amx_status says why.
 * The engine never prints it: the CLI and daemon may. */
#ifndef GEMM_AMX_H
#define GEMM_AMX_H

#include <stdbool.h>

/* Bits of gemm_amx_features(). */
enum { GEMM_AMX_BF16 = 1, GEMM_AMX_INT8 = 2 };

/* Which AMX products this process may run now: GEMM_AMX_BF16 | GEMM_AMX_INT8, or 0. The first
 * call (from any thread) detects AMX (CPUID, and XCR0 for the OS's tile state) and requests
 * the permission; later calls cost one load. */
int gemm_amx_features(void);

/* Whether AMX runs in this process, and if not why: "in use (amx-bf16, amx-int8)", "not on this
 * CPU", "the kernel refused XTILEDATA (errno 22)", "turned off (gemm_amx_allow)" (/info's amx).
 * A static string; valid for the whole process. */
const char *gemm_amx_status(void);

/* For benchmarks and tests: allow (the default) or forbid the AMX kernels for the products that
 * follow, so that the AVX-512 kernels can be timed on the same machine. Never while a product
 * runs (a product chooses its kernel on every thread it uses). */
void gemm_amx_allow(bool allow);

#endif
