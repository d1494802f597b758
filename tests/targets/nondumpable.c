/* A target that makes itself non-dumpable with prctl(PR_SET_DUMPABLE, 0), then
 * says "ready" on stdout and sleeps until killed. Only CAP_SYS_PTRACE holders
 * may then read its maps or attach to it, whatever its uid. */
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(void) {
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        perror("prctl(PR_SET_DUMPABLE, 0)");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) {
        pause();
    }
}
