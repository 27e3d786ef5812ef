/* The floor under any fork start+join on this machine: fork, _exit(0) in the child, waitpid in the parent, one at a time, in a program with almost no memory.
 *
 * What conc's `Process::fork` and Python's `multiprocessing` (fork
 * context) add on top of this is theirs; what this costs is the kernel's
 * and the host's. bench/process_pairs.py builds and runs it beside them.
 *
 *     cc -O2 -o /tmp/fork_floor bench/fork_floor.c && /tmp/fork_floor [N] [REPEATS]
 *
 * Prints the median ms per process over REPEATS (default 3) runs of N
 * (default 2000) processes, in process_costs' format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2000;
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    if (n < 1 || repeats < 1 || repeats > 100) {
        fprintf(stderr, "usage: %s [N >= 1] [REPEATS 1..100]\n", argv[0]);
        return 2;
    }
    double ms[100];
    for (int r = 0; r <= repeats; r++) { /* round 0 warms up */
        double start = now_ms();
        for (int i = 0; i < n; i++) {
            pid_t pid = fork();
            if (pid == 0)
                _exit(0);
            if (pid < 0) {
                perror("fork");
                return 1;
            }
            int status;
            if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)) {
                perror("waitpid");
                return 1;
            }
        }
        if (r > 0)
            ms[r - 1] = (now_ms() - start) / n;
    }
    qsort(ms, repeats, sizeof ms[0], by_value);
    printf("fork floor (C: fork, _exit, waitpid): %.3f ms per process (%d processes, one at a time; min %.3f, max %.3f, %d repeats)\n",
           ms[repeats / 2], n, ms[0], ms[repeats - 1], repeats);
    return 0;
}
