/* regs_target: threads with known register contents, blocked where a debugger can read them
 * (tests/integration/xpeek_control_test.cpp compares xpeek's output with gdb's on it).
 *
 * Usage: regs_target
 *
 * Three threads, each blocked in pause(2) issued by an inline `syscall` instruction in this
 * executable (no libc frame on top, so gdb's and xpeek's frames and registers agree):
 *
 *   1  main:  main → main_wait → block_forever
 *   2  vec:   vec_main → vec_load_sse (or vec_load_avx when the CPU has AVX): xmm0-15 (ymm0-15)
 *             hold VEC_DATA, mxcsr is REGS_MXCSR, the x87 stack holds X87_DATA (seven values,
 *             st7 empty), then pause(2) from the same asm statement: nothing touches them.
 *             With AVX-512, vec_main first loads zmm17 with VEC_DATA[0..1] (xmm17 = xmm0,
 *             ymm17 = ymm0, the high half = ymm1) and k3 with 0x5a5a; the VEX loads after it
 *             leave both alone.
 *   3  deep:  deep_main → raise_here (tgkill, SIGUSR2) → <signal handler called> →
 *             deep_handler → deep_level x 11 → block_forever: 18 frames, the signal frame #13.
 *
 * "ready" is printed (flushed) once the vec and deep threads sleep in pause (state S); the
 * main thread blocks right after. Runs until killed. x86-64 only: elsewhere it prints
 * "unsupported" and exits 0. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)

#define CHAIN __attribute__((noinline)) __attribute__((used))

volatile long g_sink;
static volatile int g_never;
static volatile pid_t g_vec_tid;
static volatile pid_t g_deep_tid;

/* mxcsr: every exception masked, IE set (bit 0), DAZ (bit 6), rounding toward -inf (RC = 01,
 * bit 13, which gdb does not print) and FZ (bit 15). */
#define REGS_MXCSR 0xbfc1u

/* 16 registers of 32 bytes: the low 16 bytes are xmmN, all 32 ymmN. */
static unsigned char VEC_DATA[16][32] __attribute__((aligned(32)));

/* Pushed in this order: st0 is the last one, st7 stays empty. */
static const long double X87_DATA[7] = {1.0L, 3.14159265358979323851L, 0.0L, 0.1L, -1.0L / 0.0L, 1e-4940L,
                                        -2.5L};

static void put_float(int reg, int lane, float f) {
    memcpy(&VEC_DATA[reg][lane * 4], &f, 4);
}
static void put_double(int reg, int lane, double d) {
    memcpy(&VEC_DATA[reg][lane * 8], &d, 8);
}
static void put_u16(int reg, int lane, unsigned short v) {
    memcpy(&VEC_DATA[reg][lane * 2], &v, 2);
}
static void put_u64(int reg, int lane, unsigned long v) {
    memcpy(&VEC_DATA[reg][lane * 8], &v, 8);
}

static void fill_vec_data(void) {
    memset(VEC_DATA, 0, sizeof VEC_DATA);
    /* xmm0: floats; ymm0's high half: more floats */
    put_float(0, 0, 1.5f);
    put_float(0, 1, -2.5f);
    put_float(0, 2, 0.1f);
    put_float(0, 3, 1e30f);
    put_float(0, 4, 100.25f);
    put_float(0, 7, -0.0f);
    /* xmm1: doubles */
    put_double(1, 0, 3.141592653589793);
    put_double(1, 1, -0.0);
    /* xmm2: five bytes, then eleven zeros (a run gdb compresses) */
    for (int i = 0; i < 5; ++i) {
        VEC_DATA[2][i] = (unsigned char)(i + 1);
    }
    /* xmm3: five bytes, ten zeros (not compressed), one more */
    for (int i = 0; i < 5; ++i) {
        VEC_DATA[3][i] = (unsigned char)(i + 1);
    }
    VEC_DATA[3][15] = 5;
    /* xmm4: float NaN, -inf, inf, the smallest denormal */
    unsigned int qnan = 0x7fc00001u;
    memcpy(&VEC_DATA[4][0], &qnan, 4);
    put_float(4, 1, -1.0f / 0.0f);
    put_float(4, 2, 1.0f / 0.0f);
    put_float(4, 3, 1e-45f);
    /* xmm5: half floats: 1.5, -2.5, inf, NaN, smallest denormal, -0, max, 1/3 */
    static const unsigned short halves[8] = {0x3e00, 0xc100, 0x7c00, 0x7e01, 0x0001, 0x8000, 0x7bff, 0x3555};
    /* xmm6: bfloat16: 1.5, -2.5, inf, NaN, smallest denormal, -0, max, ~1/3 */
    static const unsigned short bf16[8] = {0x3fc0, 0xc020, 0x7f80, 0x7fc1, 0x0001, 0x8000, 0x7f7f, 0x3eab};
    for (int i = 0; i < 8; ++i) {
        put_u16(5, i, halves[i]);
        put_u16(6, i, bf16[i]);
    }
    /* xmm7: -1 and INT64_MIN */
    put_u64(7, 0, ~0ul);
    put_u64(7, 1, 1ul << 63);
    /* xmm8: all ones */
    memset(VEC_DATA[8], 0xff, 16);
    /* xmm9: 1e300 and the smallest double denormal; xmm10: NaN with a payload, -NaN */
    put_double(9, 0, 1e300);
    put_double(9, 1, 5e-324);
    put_u64(10, 0, 0x7ff8000000000123ul);
    put_u64(10, 1, 0xfff8000000000000ul);
    /* xmm11: ascending bytes; ymm11's high half too */
    for (int i = 0; i < 32; ++i) {
        VEC_DATA[11][i] = (unsigned char)(0x10 + i);
    }
    /* xmm12-15 stay zero but ymm15's high half is all ones */
    memset(&VEC_DATA[15][16], 0xff, 16);
}

/* pause(2) forever from an inline syscall: the frame on top is in this executable. */
CHAIN void block_forever(void) {
    while (!g_never) {
        long r;
        __asm__ volatile("syscall" : "=a"(r) : "0"((long)SYS_pause) : "rcx", "r11", "memory");
        g_sink += r;
    }
}

#define LOAD_X87                                                                  \
    "fninit\n\t"                                                                  \
    "fldt 0(%[x87])\n\tfldt 16(%[x87])\n\tfldt 32(%[x87])\n\tfldt 48(%[x87])\n\t" \
    "fldt 64(%[x87])\n\tfldt 80(%[x87])\n\tfldt 96(%[x87])\n\t"
#define PAUSE_LOOP "1:\n\tmovl $34, %%eax\n\tsyscall\n\tjmp 1b\n\t"
#define VEC_CLOBBERS                                                                                       \
    "rax", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
        "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

CHAIN void vec_load_sse(void) {
    const unsigned int mxcsr = REGS_MXCSR;
    __asm__ volatile(
        "movdqa 0(%[v]), %%xmm0\n\tmovdqa 32(%[v]), %%xmm1\n\tmovdqa 64(%[v]), %%xmm2\n\t"
        "movdqa 96(%[v]), %%xmm3\n\tmovdqa 128(%[v]), %%xmm4\n\tmovdqa 160(%[v]), %%xmm5\n\t"
        "movdqa 192(%[v]), %%xmm6\n\tmovdqa 224(%[v]), %%xmm7\n\tmovdqa 256(%[v]), %%xmm8\n\t"
        "movdqa 288(%[v]), %%xmm9\n\tmovdqa 320(%[v]), %%xmm10\n\tmovdqa 352(%[v]), %%xmm11\n\t"
        "movdqa 384(%[v]), %%xmm12\n\tmovdqa 416(%[v]), %%xmm13\n\tmovdqa 448(%[v]), %%xmm14\n\t"
        "movdqa 480(%[v]), %%xmm15\n\t" LOAD_X87 "ldmxcsr %[m]\n\t" PAUSE_LOOP
        :
        : [v] "r"(VEC_DATA), [x87] "r"(X87_DATA), [m] "m"(mxcsr)
        : VEC_CLOBBERS);
}

__attribute__((target("avx"))) CHAIN void vec_load_avx(void) {
    const unsigned int mxcsr = REGS_MXCSR;
    __asm__ volatile(
        "vmovdqa 0(%[v]), %%ymm0\n\tvmovdqa 32(%[v]), %%ymm1\n\tvmovdqa 64(%[v]), %%ymm2\n\t"
        "vmovdqa 96(%[v]), %%ymm3\n\tvmovdqa 128(%[v]), %%ymm4\n\tvmovdqa 160(%[v]), %%ymm5\n\t"
        "vmovdqa 192(%[v]), %%ymm6\n\tvmovdqa 224(%[v]), %%ymm7\n\tvmovdqa 256(%[v]), %%ymm8\n\t"
        "vmovdqa 288(%[v]), %%ymm9\n\tvmovdqa 320(%[v]), %%ymm10\n\tvmovdqa 352(%[v]), %%ymm11\n\t"
        "vmovdqa 384(%[v]), %%ymm12\n\tvmovdqa 416(%[v]), %%ymm13\n\tvmovdqa 448(%[v]), %%ymm14\n\t"
        "vmovdqa 480(%[v]), %%ymm15\n\t" LOAD_X87 "ldmxcsr %[m]\n\t" PAUSE_LOOP
        :
        : [v] "r"(VEC_DATA), [x87] "r"(X87_DATA), [m] "m"(mxcsr)
        : VEC_CLOBBERS);
}

__attribute__((target("avx512f"))) __attribute__((noinline)) static void load_avx512_marks(void) {
    __asm__ volatile("vmovdqu64 (%[v]), %%zmm17\n\tmovl $0x5a5a, %%eax\n\tkmovw %%eax, %%k3"
                     :
                     : [v] "r"(VEC_DATA)
                     : "rax", "memory");
}

CHAIN void* vec_main(void* arg) {
    (void)arg;
    g_vec_tid = (pid_t)syscall(SYS_gettid);
    if (__builtin_cpu_supports("avx512f")) {
        load_avx512_marks();
    }
    if (__builtin_cpu_supports("avx")) {
        vec_load_avx();
    } else {
        vec_load_sse();
    }
    return NULL;
}

CHAIN long deep_level(long n) {
    if (n > 0) {
        g_sink += deep_level(n - 1);
    } else {
        block_forever();
    }
    return n + g_sink;
}

CHAIN void deep_handler(int sig) {
    g_sink += deep_level(10) + sig;
}

/* tgkill(2) to this thread from an inline syscall: the interrupted frame is here. */
CHAIN void raise_here(void) {
    const long pid = getpid();
    const long tid = syscall(SYS_gettid);
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "0"((long)SYS_tgkill), "D"(pid), "S"(tid), "d"((long)SIGUSR2)
                     : "rcx", "r11", "memory");
    g_sink += r;
}

CHAIN void* deep_main(void* arg) {
    (void)arg;
    g_deep_tid = (pid_t)syscall(SYS_gettid);
    raise_here();
    return NULL;
}

CHAIN void main_wait(void) {
    block_forever();
    g_sink += 1;
}

static char state_of(pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE* f = fopen(path, "r");
    if (f == NULL) {
        return '?';
    }
    char buf[512];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char* close = strrchr(buf, ')');
    return close != NULL && close[1] == ' ' ? close[2] : '?';
}

static void wait_asleep(volatile pid_t* tid) {
    const struct timespec ms = {0, 1000000};
    while (*tid == 0 || state_of(*tid) != 'S') {
        nanosleep(&ms, NULL);
    }
}

int main(void) {
    fill_vec_data();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = deep_handler;
    sigaction(SIGUSR2, &sa, NULL);

    pthread_t vec;
    pthread_t deep;
    if (pthread_create(&vec, NULL, vec_main, NULL) != 0) {
        perror("regs_target: pthread_create");
        return 1;
    }
    wait_asleep(&g_vec_tid);
    if (pthread_create(&deep, NULL, deep_main, NULL) != 0) {
        perror("regs_target: pthread_create");
        return 1;
    }
    wait_asleep(&g_deep_tid);
    printf("ready\n");
    fflush(stdout);
    main_wait();
    return 0;
}

#else

int main(void) {
    printf("unsupported\n");
    return 0;
}

#endif
