/*
 * Included ahead of every QuickJS source file when the guest is built (see
 * scripts/build-guest.sh, CFLAGS_wasm32_wasip1).
 *
 * QuickJS-ng switches its stack limit off when __wasi__ is defined, so runaway recursion in a
 * machine would overflow the wasm stack and trap instead of throwing a RangeError. With the
 * limit on, the engine sets it (guest/src/engine.rs) well inside the stack the host gives.
 *
 * What __wasi__ decides elsewhere:
 * - wasi-libc's <wasi/api.h> refuses to compile without it: it is included here first, and its
 *   include guard keeps it from being read again;
 * - QuickJS's default stack size (0, unlimited, on WASI): the engine always sets its own;
 * - QuickJS's atomics: already off because the build defines EMSCRIPTEN;
 * - cutils.h picks <malloc.h> and malloc_usable_size (which wasi-libc has) for a list of
 *   platforms that includes WASI and Android. Without malloc_usable_size QuickJS would count
 *   no bytes and its heap limit would never trigger, so the Android name, which nothing else
 *   in QuickJS or wasi-libc looks at, keeps that branch.
 */
#include <wasi/api.h>

#undef __wasi__
#define __ANDROID__ 1
