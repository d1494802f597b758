/* The simplest target: says "ready" on stdout, then sleeps until killed.
 * argv[1], if given, is a number of extra 4 KiB anonymous pages to touch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
    long pages = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    if (pages > 0) {
        char* p =
            mmap(NULL, (size_t)pages * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        memset(p, 0x5a, (size_t)pages * 4096);
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
