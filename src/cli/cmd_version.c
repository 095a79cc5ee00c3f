// `megatune version`: what this binary is and what it runs on here. A bug report or a speed
// figure needs the CPU, its vector extensions and the libraries behind the products, and all of
// these are chosen at run time, so only the binary itself can say them.
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "kernels/bf16.h"
#include "kernels/cpu.h"
#include "parallel/parallel.h"

#ifndef MEGATUNE_VERSION
#define MEGATUNE_VERSION "unknown"
#endif

int mt_cmd_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: megatune version\n\nPrints megatune's version, the CPU and vector extensions it detects, the "
               "libraries\nthat run fp32 and bf16 products here, and the MPI library.\n\nexamples:\n"
               "  megatune version\n  MEGATUNE_KERNELS=blas megatune version   # fp32 products on OpenBLAS\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "megatune version: takes no arguments (got '%s')\n", argv[1]);
        return 2;
    }
    char name[192], fam[64], isa[96], fp32[192], bf16[192], mpi[256];
    mt_cpu_name(name, sizeof name);
    mt_cpu_family(fam, sizeof fam);
    mt_cpu_isa(isa, sizeof isa);
    mt_kernels_describe(mt_kernels_default(), fp32, sizeof fp32);
    const char *why = NULL;
    const mt_kernels *b = mt_kernels_bf16();
    if (b) mt_kernels_describe(b, bf16, sizeof bf16);
    else mt_bf16_available(&why);
    mt_parallel_library(mpi, sizeof mpi);
    printf("megatune %s (C11, built with gcc %s)\n", MEGATUNE_VERSION, __VERSION__);
    printf("CPU:            %s\n", name);
    printf("CPU family:     %s\n", fam);
    printf("ISA:            %s\n", isa);
    printf("OpenMP threads: %d (OMP_NUM_THREADS)\n", mt_cpu_threads());
    printf("fp32 products:  %s\n", fp32);
    if (b) printf("bf16 products:  %s (trainer.precision=bf16)\n", bf16);
    else printf("bf16 products:  not here: %s; trainer.precision=bf16 runs fp32\n", why);
    printf("MPI:            %s\n", mpi);
    return 0;
}
