/* Target for the symbols tests: global and static functions and variables with
 * known names. Prints "NAME 0xADDRESS" for each (as the program itself sees
 * them: ground truth), then "ready", then sleeps until killed.
 * Built three times (tests/targets/CMakeLists.txt): sym_target (PIE),
 * sym_target_nopie (-no-pie) and sym_target_stripped (-s -rdynamic: .dynsym only). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int sym_counter = 42;                       /* .data */
char sym_buffer[4096];                      /* .bss */
const long sym_table[64] = {1, 2, 3};       /* .rodata */
static volatile int sym_static_counter = 7; /* .data, local */

__attribute__((noinline)) int sym_global_func(int x) {
    sym_counter += x;
    return sym_counter * 3;
}

__attribute__((noinline)) static int sym_static_func(int x) {
    sym_static_counter += x;
    return sym_static_counter - 1;
}

/* Called through a pointer so the static function keeps its own body and symbol. */
int (*volatile sym_static_ptr)(int) = sym_static_func;

int main(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* exercises the vdso */
    sym_buffer[0] = (char)sym_global_func(1);
    sym_buffer[1] = (char)sym_static_ptr(2);
    printf("sym_global_func %p\n", (void*)sym_global_func);
    printf("sym_static_func %p\n", (void*)sym_static_ptr);
    printf("sym_counter %p\n", (void*)&sym_counter);
    printf("sym_buffer %p\n", (void*)sym_buffer);
    printf("sym_table %p\n", (void*)sym_table);
    printf("sym_static_counter %p\n", (void*)&sym_static_counter);
    printf("main %p\n", (void*)main);
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
