/* fuzz_target.h - the libFuzzer entry points every fuzz_*.c defines (and replay.c calls). */
#ifndef ACMED_FUZZ_TARGET_H
#define ACMED_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: a target that needs set-up defines it (libFuzzer calls it once, before any input). */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
